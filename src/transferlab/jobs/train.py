"""The train kind: fine-tune one adapter of a model on one source with one seed."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transferlab.grid import Cell, Source
from transferlab.jobs.base import (
    JobInputs,
    KindStatus,
    ModelRef,
    PlanContext,
    content_key,
    load_planned_model,
    versions_without,
)
from transferlab.store import JobRecord, Store
from transferlab.training.settings import TrainSettings

if TYPE_CHECKING:
    from transferlab.config import Study
    from transferlab.plan import Plan


@dataclass(frozen=True)
class TrainJob:
    """Fine-tune one adapter of ``model`` on ``source`` with ``seed``."""

    key: str
    model: ModelRef
    source: Source
    seed: int
    task_refs: tuple[tuple[str, str], ...]  # (task name, reference get_task resolves)
    settings: TrainSettings
    items_per_source: int | None
    validation_items: int | None
    device: str
    adapter_name: str  # folder under the store's adapters/
    provenance: dict[str, Any] = field(compare=False)
    kind: str = "train"

    @property
    def label(self) -> str:
        """Return a one-line description for progress and status."""
        return f"train {self.model.name} on {self.source} seed {self.seed}"

    @property
    def priority(self) -> int:
        """Return 1: after the baselines, before the evaluations that need the adapter."""
        return 1

    @property
    def unit_keys(self) -> tuple[str, ...]:
        """Return no units: a training commits an adapter."""
        return ()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def plan_training(
    study: Study,
    model: ModelRef,
    source: Source,
    seed: int,
    task_hashes: dict[Cell, str],
    versions: dict[str, str],
) -> TrainJob:
    """Return the training of ``source`` with ``seed``, keyed by all that shapes its adapter.

    The key covers the model's content hash, each part's task hash and weight, the training
    settings and data sizes, the seed, the device and the code versions less the scoring code.
    """
    settings = study.training.model_dump(mode="json")  # the key's and the record's form
    data = study.train_data.model_dump()
    versions = versions_without(versions, "scoring")  # scoring code does not shape an adapter
    parts = [(str(c), task_hashes[c], w) for c, w in source.parts]
    device = study.evaluation.device
    key = content_key("train", model.model_hash, parts, settings, data, seed, device, versions)
    provenance = {
        "model": model.name,
        "model_ref": model.ref,
        "model_hash": model.model_hash,
        "source": str(source),
        "task_hashes": {c: h for c, h, _ in parts},
        "seed": seed,
        "settings": settings,
        "train_data": data,
        "versions": versions,
    }
    return TrainJob(
        key,
        model,
        source,
        seed,
        tuple(study.task_refs.items()),
        study.training.model_copy(),
        data["items_per_source"],
        data["validation_items"],
        device,
        f"{_slug(model.name)}/{_slug(str(source))}.seed{seed}.{key[:10]}",
        provenance,
    )


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
        task = get_task(refs[cell.task])
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

    def plan(self, context: PlanContext) -> list[TrainJob]:
        """Return one training per (model, seed, source), in that order."""
        study = context.study
        return [
            plan_training(study, model, source, seed, context.task_hashes, context.versions)
            for model in context.models
            for seed in study.seeds
            for source in study.source_list
        ]

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
