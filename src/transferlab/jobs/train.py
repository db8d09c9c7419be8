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
from transferlab.mixtures import draw_items
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
    trust_task_code: bool = False  # the study's opt-in for lm-eval `!function` task code
    recipe: str = ""  # the training axes' values (``lora_r=8``); empty without axes
    items: tuple[tuple[Cell, tuple[str, ...]], ...] = ()  # a drawn source's item IDs per part

    @property
    def label(self) -> str:
        """Return a one-line description for progress and status."""
        recipe = f" ({self.recipe})" if self.recipe else ""
        return f"train {self.model.name}{recipe} on {self.source} seed {self.seed}"

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
    variant: tuple[str, TrainSettings] | None = None,
) -> TrainJob:
    """Return the training of ``source`` with ``seed``, keyed by all that shapes its adapter.

    The key covers the model's content hash, each part's task hash and weight, the training
    settings (``variant``: a training axes' recipe and its settings) and data sizes, the seed,
    the device, the code versions less the scoring code and, for a drawn source, the exact
    item IDs drawn.
    """
    recipe, typed = variant or ("", study.training)
    settings = typed.model_dump(mode="json")  # the key's and the record's form
    data = study.train_data.model_dump()
    # scoring and generation code do not shape an adapter
    versions = versions_without(versions, "scoring", "generation")
    parts = [(str(c), task_hashes[c], w) for c, w in source.parts]
    device = study.evaluation.device
    items = drawn_items(study, source, seed)
    # A drawn source's exact item IDs are part of its key; a plain source's key is unchanged.
    drawn = [[source.label, [(str(c), ids) for c, ids in items]]] if source.drawn else []
    key = content_key(
        "train", model.model_hash, parts, settings, data, seed, device, versions, *drawn
    )
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
    if source.drawn:
        provenance["items"] = {str(c): list(ids) for c, ids in items}
    if recipe:
        provenance["recipe"] = recipe
    return TrainJob(
        key,
        model,
        source,
        seed,
        tuple(study.task_refs.items()),
        typed.model_copy(),
        data["items_per_source"],
        data["validation_items"],
        device,
        f"{_slug(model.name)}/{_slug(str(source))}.seed{seed}.{key[:10]}",
        provenance,
        trust_task_code=study.trust_task_code,
        recipe=recipe,
        items=items,
    )


def drawn_items(
    study: Study, source: Source, seed: int
) -> tuple[tuple[Cell, tuple[str, ...]], ...]:
    """Return the item IDs a drawn source's parts train on with ``seed`` (nothing for a plain one)."""
    if not source.drawn:
        return ()
    pools = {c: study.task_specs[c.task].split_ids("train") for c, _ in source.parts}
    return tuple((c, tuple(ids)) for c, ids in draw_items(source, pools, seed).items())


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
    drawn = dict(job.items)
    train, validation, parts = [], [], []
    for cell, _weight in job.source.parts:
        task = get_task(refs[cell.task], job.trust_task_code)
        pool = task.train_examples(cell.language, "train")
        if job.source.drawn:  # the planned IDs, in pool order
            ids = set(drawn[cell])
            train += [e for e in pool if e.doc_id in ids]
        else:
            train += pool[: job.items_per_source]
        held_out = task.train_examples(cell.language, "validation")[: job.validation_items]
        validation += held_out
        parts += [str(cell)] * len(held_out)
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
        # One part is the single-cell case: its validation loss is the overall one.
        validation_parts=parts if len(job.source.parts) > 1 else None,
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
            plan_training(
                study, model, source, seed, context.task_hashes, context.versions, variant
            )
            for model in context.models
            for seed in study.seeds
            for variant in study.training_variants
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
