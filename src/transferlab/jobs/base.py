"""The job protocol: a kind says what a job needs, how it runs anywhere and how it is committed.

A planned job is plain data with a ``key`` (content hash), a ``kind`` (the name of a registered
``JobKind``) and a ``label``. The driver, the executors, the timings and ``status`` only ever go
through the kind: adding a kind is one module (see ``train.py``) and one ``register`` line in
``jobs/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from transferlab.errors import RunError

if TYPE_CHECKING:
    from transferlab.plan import ModelRef, Plan
    from transferlab.store import JobRecord, Store


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
