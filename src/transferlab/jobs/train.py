"""The train kind: fine-tune one adapter of a model on one source with one seed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.jobs.base import JobInputs, KindStatus, load_planned_model
from transferlab.plan import Plan, TrainJob
from transferlab.store import JobRecord, Store


@dataclass
class TrainResult:
    """A finished adapter folder with its content hash and training metadata."""

    adapter_dir: Path
    adapter_hash: str
    metadata: dict[str, Any]


def run_training(job: TrainJob, adapter_dir: Path, progress: bool = True) -> TrainResult:
    """Train ``job``'s adapter into ``adapter_dir`` and return it."""
    from transferlab.tasks import get_task
    from transferlab.training import train_adapter

    refs = dict(job.task_refs)
    train, validation = [], []
    for cell, _weight in job.source.parts:  # config admits single cells only, for now
        task = get_task(refs[cell.task], job.trust_task_code)
        train += task.train_examples(cell.language, "train")[: job.items_per_source]
        validation += task.train_examples(cell.language, "validation")[: job.validation_items]
    loaded = load_planned_model(job.model, "float32", job.device)
    outcome = train_adapter(
        loaded,
        train,
        validation,
        adapter_dir,
        job.settings,
        job.seed,
        job.provenance,
        progress=progress,
    )
    return TrainResult(Path(outcome.adapter_dir), outcome.adapter_hash, outcome.metadata)


class TrainKind:
    """Training jobs: one per (model, source, seed); done once its adapter is committed."""

    name = "train"
    title = "training"

    def todo(self, plan: Plan, store: Store, exhausted: set[str]) -> list[TrainJob]:
        """Return the trainings whose adapter is missing and which may still be attempted."""
        adapters = store.adapters()
        return [j for j in plan.train_jobs if j.key not in adapters and j.key not in exhausted]

    def outstanding(self, plan: Plan, store: Store | None) -> int:
        """Return how many trainings have no committed adapter."""
        done = store.adapters() if store is not None else {}
        return sum(j.key not in done for j in plan.train_jobs)

    def inputs(self, job: TrainJob, store: Store) -> JobInputs:
        """Return the staging folder the adapter is built in (checkpoints survive a kill)."""
        return JobInputs(output_dir=store.staging_dir(job.key) / "adapter")

    def run(self, job: TrainJob, inputs: JobInputs, progress: bool) -> TrainResult:
        """Train the adapter into ``inputs.output_dir``."""
        if inputs.output_dir is None:
            raise ValueError("a training job needs inputs.output_dir")
        return run_training(job, inputs.output_dir, progress)

    def relocated(self, result: TrainResult, output_dir: Path) -> TrainResult:
        """Return the result with its adapter folder at ``output_dir``."""
        return TrainResult(output_dir, result.adapter_hash, result.metadata)

    def commit(self, job: TrainJob, result: TrainResult, store: Store) -> bool:
        """Install the adapter and mark the training done, in one transaction."""
        return store.commit_adapter(
            job.key, result.adapter_dir, job.adapter_name, result.adapter_hash, result.metadata
        )

    def status(self, plan: Plan, store: Store) -> KindStatus:
        """Return done / running / failed / pending counts of the plan's trainings."""
        records, adapters = store.jobs(), store.adapters()
        counts: Counter[str] = Counter()
        for job in plan.train_jobs:
            record = records.get(job.key)
            counts["done" if job.key in adapters else record.status if record else "pending"] += 1
        n = len(plan.train_jobs)
        line = (
            f"{self.title}:   {counts['done']} done, {counts['running']} running, "
            f"{counts['failed']} failed, {counts['pending']} pending (of {n})"
        )
        return KindStatus(line, counts["done"], n - counts["done"], counts["done"] == n)

    def relevant(self, record: JobRecord, plan: Plan, store: Store) -> bool:
        """Return whether the record is a training of the plan still without an adapter."""
        keys = {j.key for j in plan.train_jobs}
        return record.key in keys and record.key not in store.adapters()
