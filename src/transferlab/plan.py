"""A study → content-addressed jobs: baseline and adapter evaluations, one training per source.

Every key hashes everything that determines the job's output (model content hash, task content
hashes, settings, seed, code versions), never names or paths, so a finished job is found again
after any change that does not affect it, and redone after any change that does.
The unit of evaluation is one model state on one target cell; evaluation jobs group the units
still to do per (model, seed), so adding a language, task or seed only adds work.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from transferlab.config import EvaluationSettings, Study
from transferlab.grid import BASE, Cell, Source
from transferlab.training.settings import TrainSettings
from transferlab.versions import code_versions


def content_key(*parts: Any) -> str:
    """Return a 20-hex-digit hash of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


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


@dataclass(frozen=True)
class EvalUnit:
    """One model state (base, or the adapter of a training job) scored on one target cell."""

    key: str
    model: str
    state: str  # BASE or the training job's key
    seed: int | None
    cell: Cell
    task_hash: str


@dataclass(frozen=True)
class EvalJob:
    """Score several states of one model on their target cells in one process."""

    key: str
    model: ModelRef
    seed: int | None  # None for the baseline
    units: tuple[EvalUnit, ...]
    task_refs: tuple[tuple[str, str], ...]
    evaluation: EvaluationSettings
    provenance: dict[str, Any] = field(compare=False)
    state_names: dict[str, str] = field(default_factory=dict, compare=False)  # key → readable
    kind: str = "evaluate"
    trust_task_code: bool = False

    @property
    def label(self) -> str:
        """Return a one-line description for progress and status."""
        states = {u.state for u in self.units}
        what = "base" if states == {BASE} else f"{len(states)} adapter(s) seed {self.seed}"
        cells = len({u.cell for u in self.units})
        return f"evaluate {self.model.name} {what} on {cells} cell(s)"

    @property
    def priority(self) -> int:
        """Return 0 for a baseline (it waits for nothing), else 2 (after the trainings)."""
        return 0 if self.seed is None else 2

    @property
    def unit_keys(self) -> tuple[str, ...]:
        """Return the keys of the units the job commits."""
        return tuple(u.key for u in self.units)


@dataclass
class Plan:
    """Everything a study asks for, before looking at what is done (the study is not kept)."""

    name: str
    config: dict[str, Any]  # the resolved study config, as run_info.json records it
    languages: list[str]
    seeds: list[int]
    evaluation: EvaluationSettings
    models: list[ModelRef]
    task_hashes: dict[Cell, str]
    headline: dict[str, str]  # task → its headline metric (the paper's score_norm)
    primary: dict[str, str]  # task → its acc-like metric (the paper's score)
    train_jobs: list[TrainJob]
    units: list[EvalUnit]
    versions: dict[str, str]
    task_refs: tuple[tuple[str, str], ...]
    trust_task_code: bool = False

    def trainings_of(self, model: str, seed: int) -> list[TrainJob]:
        """Return the training jobs of one (model, seed) group."""
        return [j for j in self.train_jobs if j.model.name == model and j.seed == seed]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _without(versions: dict[str, str], *parts: str) -> dict[str, str]:
    drop = {f"transferlab.{part}" for part in parts}
    return {k: v for k, v in versions.items() if k not in drop}


def _train_job(
    study: Study, model: ModelRef, source: Source, seed: int, task_hashes: dict[Cell, str]
) -> TrainJob:
    settings = study.training.model_dump(mode="json")  # the key's and the record's form
    data = study.train_data.model_dump()
    # scoring and generation code do not shape an adapter
    versions = _without(code_versions(), "scoring", "generation")
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
        trust_task_code=study.trust_task_code,
    )


def _units(
    study: Study, model: ModelRef, state: str, seed: int | None, task_hashes: dict[Cell, str]
) -> list[EvalUnit]:
    # An adapter's state is its training key, which already covers the training code.
    versions = _without(code_versions(), "training")
    code = {t: _unit_versions(versions, s.output_type) for t, s in study.task_specs.items()}
    evaluation = study.evaluation.model_dump()
    return [
        EvalUnit(
            content_key("score", model.model_hash, state, task_hashes[c], evaluation, code[c.task]),
            model.name,
            state,
            seed,
            c,
            task_hashes[c],
        )
        for c in study.cells
    ]


def _unit_versions(versions: dict[str, str], output_type: str) -> dict[str, str]:
    # generation code makes no multiple-choice score (and MC keys stay as they were without it)
    return versions if output_type == "generate" else _without(versions, "generation")


def plan_study(study: Study) -> Plan:
    """Return the study's training jobs and evaluation units (models resolved and hashed).

    Planning reads and hashes models but never converts one: a preset not prepared yet raises
    ``NotPrepared`` (``transferlab run`` prepares its models before planning).
    """
    from transferlab.models import model_info

    task_hashes = {
        cell: study.task_specs[cell.task].content_hash(cell.language) for cell in study.cells
    }
    models, train_jobs, units = [], [], []
    for spec in study.models:
        info = model_info(spec.ref, convert=False)
        model = ModelRef(
            spec.display_name,
            spec.ref,
            spec.trust_remote_code,
            info.model_hash,
            info.family,
            info.n_params / 1e9,  # unrounded: a tiny model is not 0B
        )
        models.append(model)
        units += _units(study, model, BASE, None, task_hashes)
        for seed in study.seeds:
            for source in study.source_list:
                job = _train_job(study, model, source, seed, task_hashes)
                train_jobs.append(job)
                units += _units(study, model, job.key, seed, task_hashes)
    headline = {name: spec.metric for name, spec in study.task_specs.items()}
    primary = {name: spec.primary_metric for name, spec in study.task_specs.items()}
    return Plan(
        study.name,
        study.model_dump(mode="json"),
        list(study.languages),
        list(study.seeds),
        study.evaluation.model_copy(),
        models,
        task_hashes,
        headline,
        primary,
        train_jobs,
        units,
        code_versions(),
        tuple(study.task_refs.items()),
        study.trust_task_code,
    )


def evaluation_jobs(
    plan: Plan,
    done_units: Iterable[str],
    ready: Iterable[str] | None = None,
    settled: Iterable[str] | None = None,
) -> list[EvalJob]:
    """Return evaluation jobs for the units not done, one per (model, seed).

    ``ready`` are the training keys whose adapters are committed and ``settled`` those whose
    training will not change any more in this run (done or out of retries): a seed's group is
    formed once all its trainings are settled, from the units whose adapter is ready. With
    ``ready=None`` every adapter counts as ready (what ``status`` shows as still to do).
    """
    done = set(done_units)
    ready_set = set(ready) if ready is not None else None
    settled_set = set(settled) if settled is not None else None
    groups: dict[tuple[str, int | None], list[EvalUnit]] = defaultdict(list)
    for unit in plan.units:
        if unit.key in done:
            continue
        if unit.state != BASE and ready_set is not None:
            trainings = plan.trainings_of(unit.model, unit.seed)
            if settled_set is not None and any(j.key not in settled_set for j in trainings):
                continue
            if unit.state not in ready_set:
                continue
        groups[(unit.model, unit.seed)].append(unit)
    by_name = {m.name: m for m in plan.models}
    names = {j.key: f"{j.source}.seed{j.seed}" for j in plan.train_jobs}
    evaluation = plan.evaluation.model_dump()
    jobs = []
    for (model, seed), units in groups.items():
        key = content_key("evaluate", sorted(u.key for u in units))
        provenance = {"versions": plan.versions, "evaluation": evaluation}
        states = {u.state: names.get(u.state, BASE) for u in units}
        jobs.append(
            EvalJob(
                key,
                by_name[model],
                seed,
                tuple(units),
                plan.task_refs,
                plan.evaluation,
                provenance,
                states,
                trust_task_code=plan.trust_task_code,
            )
        )
    return jobs
