"""RunInfo: what a run did and what determined it, handed to the report and saved as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunInfo:
    """The content of ``run_info.json`` (docs/architecture.md lists the keys), in its order."""

    study: str
    config: dict[str, Any]  # the resolved study config
    models: list[dict[str, Any]]  # {name, ref, model_hash, size_b, family}
    tasks: list[dict[str, Any]]  # {name, language, task_hash}
    languages: list[str]
    seeds: list[int]
    versions: dict[str, str]
    jobs: dict[str, Any]  # {"done": n, "pending": n, "failed": [{key, kind, error}]}
    started_at: str
    finished_at: str
    wall_time_s: float
    executor: str
    timings: dict[str, float] = field(default_factory=dict)  # this run's seconds
    job_time_s: dict[str, float] = field(default_factory=dict)  # every done job, all runs

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON object of ``run_info.json``."""
        return asdict(self)
