"""What a job does, wherever it runs: train one adapter, or score model states on target cells.

Job functions take a planned job and local paths and return a picklable result; they never touch
the store, so the driver alone commits (the Ray executor runs them in workers unchanged).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.errors import RunError
from transferlab.grid import Cell
from transferlab.plan import BASE, EvalJob, TrainJob
from transferlab.store import UnitScore, pack_items

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """A finished adapter folder with its content hash and training metadata."""

    adapter_dir: Path
    adapter_hash: str
    metadata: dict[str, Any]


@dataclass
class EvalResult:
    """Scores of every unit of an evaluation job, with their per-item results packed."""

    scores: list[UnitScore]
    items: dict[str, bytes]  # unit key → pack_items payload


@dataclass
class JobInputs:
    """Local paths a job needs: where training writes, or which adapters evaluation reads."""

    adapter_dir: Path | None = None  # training: the folder to write the adapter into
    adapters: dict[str, tuple[Path, str]] = field(default_factory=dict)  # key → (folder, hash)


JobOutcome = TrainResult | EvalResult


def execute(
    job: TrainJob | EvalJob, inputs: JobInputs, progress: bool = True, threads: int | None = None
) -> JobOutcome:
    """Run one job with ``threads`` torch threads (None: unchanged) and return its result."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if isinstance(job, TrainJob):
            if inputs.adapter_dir is None:
                raise ValueError("a training job needs inputs.adapter_dir")
            return run_training(job, inputs.adapter_dir, progress)
        return run_evaluation(job, inputs.adapters, progress)
    finally:
        torch.set_num_threads(previous)


def _load(job: TrainJob | EvalJob, dtype: str, device: str) -> Any:
    from transferlab.models import load_model

    loaded = load_model(job.model.ref, dtype, device, job.model.trust_remote_code)
    if loaded.model_hash != job.model.model_hash:
        raise RunError(
            f"model {job.model.ref} changed since the study was planned "
            f"({job.model.model_hash} → {loaded.model_hash}); run again to replan"
        )
    return loaded


def run_training(job: TrainJob, adapter_dir: Path, progress: bool = True) -> TrainResult:
    """Train ``job``'s adapter into ``adapter_dir`` and return it."""
    from transferlab.tasks import get_task
    from transferlab.training import TrainSettings, train_adapter

    refs = dict(job.task_refs)
    train, validation = [], []
    for cell, _weight in job.source.parts:  # config admits single cells only, for now
        task = get_task(refs[cell.task])
        train += task.train_examples(cell.language, "train")[: job.items_per_source]
        validation += task.train_examples(cell.language, "validation")[: job.validation_items]
    loaded = _load(job, "float32", job.device)
    outcome = train_adapter(
        loaded,
        train,
        validation,
        adapter_dir,
        TrainSettings(**job.settings),
        job.seed,
        job.provenance,
        progress=progress,
    )
    return TrainResult(Path(outcome.adapter_dir), outcome.adapter_hash, outcome.metadata)


def run_evaluation(
    job: EvalJob, adapters: dict[str, tuple[Path, str]], progress: bool = True
) -> EvalResult:
    """Score ``job``'s units; ``adapters`` maps training keys to (folder, expected hash)."""
    from transferlab.scoring import ModelState, adapter_hash, score
    from transferlab.tasks import get_task

    settings = job.evaluation
    for folder, expected in adapters.values():
        found = adapter_hash(folder)
        if found != expected:  # never score an adapter other than the one that was committed
            raise RunError(f"adapter {folder} has hash {found}, the store recorded {expected}")
    refs = dict(job.task_refs)
    cells = sorted({u.cell for u in job.units})
    items = {
        cell: get_task(refs[cell.task]).items(cell.language, settings["split"])[
            : settings["items_per_target"]
        ]
        for cell in cells
    }
    # Adapters that need the same targets are scored in one call (one pass over the items).
    targets_of: dict[str, set[Cell]] = defaultdict(set)
    for unit in job.units:
        targets_of[unit.state].add(unit.cell)
    calls: dict[frozenset[Cell], list[str]] = defaultdict(list)
    for state, targets in sorted(targets_of.items()):
        calls[frozenset(targets)].append(state)
    loaded = _load(job, settings["dtype"], settings["device"])
    key_of = {job.state_names.get(s, s): s for s in targets_of}
    by_unit: dict[tuple[str, Cell], list[Any]] = defaultdict(list)
    for targets, states in calls.items():
        model_states = [
            ModelState(job.state_names.get(s, s), None if s == BASE else adapters[s][0])
            for s in sorted(states)
        ]
        chosen = {cell: items[cell] for cell in sorted(targets)}
        for result in score(loaded, model_states, chosen, settings["batch_size"], progress):
            state = key_of[result.model_state]
            by_unit[(state, Cell(result.task, result.language))].append(result)
    return _collect(job, adapters, by_unit)


def _collect(
    job: EvalJob, adapters: dict[str, tuple[Path, str]], by_unit: dict[tuple[str, Cell], list]
) -> EvalResult:
    scores, packed = [], {}
    for unit in job.units:
        results = by_unit.get((unit.state, unit.cell))
        if not results:
            raise RunError(f"the scorer returned nothing for {unit.state} on {unit.cell}")
        n = len(results)
        provenance = {
            **job.provenance,
            "model_hash": job.model.model_hash,
            "adapter_hash": None if unit.state == BASE else adapters[unit.state][1],
            "task_hash": unit.task_hash,
        }
        scores.append(
            UnitScore(
                unit.key,
                unit.model,
                unit.state,
                unit.cell.task,
                unit.cell.language,
                n,
                sum(r.acc for r in results) / n,
                sum(r.acc_norm for r in results) / n,
                provenance,
            )
        )
        packed[unit.key] = pack_items(
            {
                "doc_id": [r.doc_id for r in results],
                "gold": [r.gold for r in results],
                "acc": [int(r.acc) for r in results],
                "acc_norm": [int(r.acc_norm) for r in results],
                "loglikelihoods": [list(r.loglikelihoods) for r in results],
            }
        )
    return EvalResult(scores, packed)
