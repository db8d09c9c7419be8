"""The job protocol: a kind plans its jobs, says what they need, runs them anywhere, commits them.

A planned job is plain data with a ``key`` (content hash), a ``kind`` (the name of a registered
``JobKind``) and a ``label``. Planning, the driver, the executors, the timings and ``status`` only
ever go through the kind: adding a kind is one module (see ``train.py``) and one ``register``
line in ``jobs/__init__.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from transferlab.errors import RunError

if TYPE_CHECKING:
    from transferlab.config import Study
    from transferlab.grid import Cell
    from transferlab.plan import Plan
    from transferlab.store import JobRecord, Store


def content_key(*parts: Any) -> str:
    """Return a 20-hex-digit hash of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def versions_without(versions: dict[str, str], *parts: str) -> dict[str, str]:
    """Return the code versions less ``transferlab.<part>`` (code that cannot change the output)."""
    drop = {f"transferlab.{part}" for part in parts}
    return {k: v for k, v in versions.items() if k not in drop}


@dataclass(frozen=True)
class ModelRef:
    """What a job needs to load a model, and how results name it."""

    name: str
    ref: str
    trust_remote_code: bool
    model_hash: str
    family: str
    size_b: float


@dataclass(frozen=True)
class PlanContext:
    """What a kind plans its jobs from: the study, its resolved models and the earlier kinds' work.

    ``planned`` maps the name of each kind registered before this one to what it planned, so a
    kind that works on trained states (evaluation, alignment) reads the trainings from it.
    """

    study: Study
    models: list[ModelRef]
    task_hashes: dict[Cell, str]
    versions: dict[str, str]  # code versions every key covers (less the parts a kind ignores)
    planned: dict[str, list[Any]]


class Job(Protocol):
    """What the driver and the executors know of any planned job."""

    key: str
    kind: str

    @property
    def label(self) -> str:
        """Return a one-line description for progress and status."""

    @property
    def unit_keys(self) -> tuple[str, ...]:
        """Return the result units the job commits (recorded with its claim)."""

    @property
    def priority(self) -> int:
        """Return when the job runs among those ready: lower first."""


@dataclass
class JobInputs:
    """Local folders of one job: the adapters it reads and the folder it writes, if any."""

    output_dir: Path | None = None  # the job writes its artifact here (it travels back from Ray)
    adapters: dict[str, tuple[Path, str]] = field(default_factory=dict)  # key → (folder, hash)


@dataclass
class KindStatus:
    """Where one kind's jobs of a plan stand: the line ``status`` prints and the counts."""

    line: str
    done: int
    pending: int
    complete: bool


class JobKind(Protocol):
    """One kind of job: planning hands its jobs over, the driver runs them through this."""

    name: str  # the ``kind`` of its jobs, the key of its timings ("train" → ``train_s``)
    title: str  # its name in ``status`` ("training")

    def plan(self, context: PlanContext) -> list[Any]:
        """Return this kind's planned work for a study, each item keyed by what determines it."""

    def todo(self, plan: Plan, store: Store, exhausted: set[str]) -> list[Job]:
        """Return the jobs that can run now (``exhausted``: keys out of retries this run)."""

    def outstanding(self, plan: Plan, store: Store) -> int:
        """Return how many of the plan's jobs of this kind are still to do."""

    def inputs(self, job: Any, store: Store) -> JobInputs:
        """Return the local folders the job needs from the store."""

    def run(self, job: Any, inputs: JobInputs, progress: bool) -> Any:
        """Execute the job anywhere (no store access) and return its picklable result."""

    def relocated(self, result: Any, output_dir: Path) -> Any:
        """Return the result with its output folder moved to ``output_dir``."""

    def commit(self, job: Any, result: Any, store: Store) -> bool:
        """Commit the result with the job's done mark; False if another run took the job."""

    def status(self, plan: Plan, store: Store) -> KindStatus:
        """Return where the plan's jobs of this kind stand in the store."""

    def relevant(self, record: JobRecord, plan: Plan, store: Store) -> bool:
        """Return whether a job record (failed, running) still matters to the plan."""


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Add ``kind`` to the registry (its jobs carry ``kind.name``) and return it."""
    KINDS[kind.name] = kind
    return kind


def kind_of(job: Job) -> JobKind:
    """Return the registered kind of ``job``."""
    return KINDS[job.kind]


def execute(job: Job, inputs: JobInputs, progress: bool = True, threads: int | None = None) -> Any:
    """Run one job with ``threads`` torch threads (None: unchanged) and return its result."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return kind_of(job).run(job, inputs, progress)
    finally:
        torch.set_num_threads(previous)


def load_planned_model(model: ModelRef, dtype: str, device: str) -> Any:
    """Return ``model`` loaded in ``dtype`` on ``device`` (RunError if its hash changed)."""
    from transferlab.models import load_model

    loaded = load_model(model.ref, dtype, device, model.trust_remote_code)
    if loaded.model_hash != model.model_hash:
        raise RunError(
            f"model {model.ref} changed since the study was planned "
            f"({model.model_hash} → {loaded.model_hash}); run again to replan"
        )
    return loaded
