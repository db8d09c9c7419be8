"""The evaluate kind: score several states of one model on their target cells in one process."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transferlab.config import EvaluationSettings
from transferlab.errors import RunError
from transferlab.grid import BASE, Cell
from transferlab.jobs.base import (
    JobInputs,
    KindStatus,
    ModelRef,
    PlanContext,
    content_key,
    load_planned_model,
    versions_without,
)
from transferlab.store import JobRecord, Store, UnitScore, pack_items

if TYPE_CHECKING:
    from transferlab.config import Study
    from transferlab.plan import Plan


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


def plan_units(
    study: Study,
    model: ModelRef,
    state: str,
    seed: int | None,
    task_hashes: dict[Cell, str],
    versions: dict[str, str],
) -> list[EvalUnit]:
    """Return ``state`` of ``model`` on every target cell, each keyed by what its score depends on.

    The key covers the model's content hash, the state (an adapter's training key, which already
    covers the training code), the cell's task hash, the evaluation settings and the code
    versions less the training code.
    """
    versions = versions_without(versions, "training")
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
    return versions if output_type == "generate" else versions_without(versions, "generation")


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
    names = {
        j.key: f"{j.source}{f'[{j.recipe}]' if j.recipe else ''}.seed{j.seed}"
        for j in plan.train_jobs
    }
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


@dataclass
class EvalResult:
    """Scores of every unit of an evaluation job, with their per-item results packed."""

    scores: list[UnitScore]
    items: dict[str, bytes]  # unit key → pack_items payload


def run_evaluation(
    job: EvalJob, adapters: dict[str, tuple[Path, str]], progress: bool = True
) -> EvalResult:
    """Score ``job``'s units; ``adapters`` maps training keys to (folder, expected hash).

    Multiple-choice targets go to the scorer, generative ones to the generation engine; both
    keep the base model loaded once and swap the adapters in.
    """
    from transferlab.generation.results import evaluate_generative
    from transferlab.scoring import ModelState, adapter_hash, score
    from transferlab.tasks import get_task

    settings = job.evaluation
    for folder, expected in adapters.values():
        found = adapter_hash(folder)
        if found != expected:  # never score an adapter other than the one that was committed
            raise RunError(f"adapter {folder} has hash {found}, the store recorded {expected}")
    refs = dict(job.task_refs)
    cells = sorted({u.cell for u in job.units})
    specs = {c.task: get_task(refs[c.task], job.trust_task_code) for c in cells}
    items = {
        cell: specs[cell.task].items(cell.language, settings.split)[: settings.items_per_target]
        for cell in cells
    }
    # Adapters that need the same targets are scored in one call (one pass over the items).
    targets_of: dict[str, set[Cell]] = defaultdict(set)
    for unit in job.units:
        targets_of[unit.state].add(unit.cell)
    calls: dict[frozenset[Cell], list[str]] = defaultdict(list)
    for state, targets in sorted(targets_of.items()):
        calls[frozenset(targets)].append(state)
    loaded = load_planned_model(job.model, settings.dtype, settings.device)
    name_of = _state_names(job, targets_of)
    key_of = {name: s for s, name in name_of.items()}
    by_unit: dict[tuple[str, Cell], list[Any]] = defaultdict(list)
    generated: dict[tuple[str, Cell], dict[str, float]] = {}
    for targets, states in calls.items():
        model_states = [
            ModelState(name_of[s], None if s == BASE else adapters[s][0]) for s in sorted(states)
        ]
        chosen = {cell: items[cell] for cell in sorted(targets)}
        choice = {c: v for c, v in chosen.items() if specs[c.task].generation is None}
        generative = {c: v for c, v in chosen.items() if c not in choice}
        if choice:
            for result in score(loaded, model_states, choice, settings.batch_size, progress):
                state = key_of[result.model_state]
                by_unit[(state, Cell(result.task, result.language))].append(result)
        if generative:
            lines, rows = evaluate_generative(
                loaded, model_states, generative,
                {c: specs[c.task].generation for c in generative}, settings.batch_size, progress,
            )  # fmt: skip
            for line in lines:
                by_unit[(key_of[line["model_state"]], Cell(line["task"], line["language"]))].append(
                    line
                )
            for row in rows:
                values = {k: v for k, v in row.items() if k not in _ROW_KEYS}
                generated[(key_of[row["model_state"]], Cell(row["task"], row["language"]))] = values
    return _collect(job, adapters, by_unit, generated)


_ROW_KEYS = ("model_state", "task", "language", "n")  # the rest of a generative row: metrics


def _generated_columns(lines: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Return a generative unit's per-item columns: the text, the answer, item-level metrics."""
    return {
        "doc_id": [line["doc_id"] for line in lines],
        "generation": [line["generation"] for line in lines],
        "extracted": [line["extracted"] for line in lines],
        "metrics": {m: [line[m] for line in lines] for m in names if m in lines[0]},
    }


def _state_names(job: EvalJob, states: Iterable[str]) -> dict[str, str]:
    """Return a distinct readable name per state (its key added where two trainings of one
    source and seed differ only in their recipe, e.g. LoRA rank or method)."""
    names = {s: job.state_names.get(s, s) for s in states}
    counts = Counter(names.values())
    return {s: n if counts[n] == 1 else f"{n}.{s[:8]}" for s, n in names.items()}


def _collect(
    job: EvalJob,
    adapters: dict[str, tuple[Path, str]],
    by_unit: dict[tuple[str, Cell], list],
    generated: dict[tuple[str, Cell], dict[str, float]],
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
        if (unit.state, unit.cell) in generated:
            # every metric of the cell, corpus-level ones (chrF, BLEU) included
            metrics = generated[(unit.state, unit.cell)]
            columns = _generated_columns(results, list(metrics))
        else:
            names = list(results[0].metrics)
            metrics = {m: sum(r.metrics[m] for r in results) / n for m in names}
            columns = {
                "doc_id": [r.doc_id for r in results],
                "gold": [r.gold for r in results],
                "loglikelihoods": [list(r.loglikelihoods) for r in results],
                "metrics": {m: [r.metrics[m] for r in results] for m in names},
            }
        scores.append(
            UnitScore(
                unit.key,
                unit.model,
                unit.state,
                unit.cell.task,
                unit.cell.language,
                n,
                metrics,
                provenance,
            )  # fmt: skip
        )
        packed[unit.key] = pack_items(columns)
    return EvalResult(scores, packed)


class EvalKind:
    """Evaluation jobs: the units still to do, grouped per (model, seed); done per unit."""

    name = "evaluate"
    title = "evaluation"

    def plan(self, context: PlanContext) -> list[EvalUnit]:
        """Return the units: each model's base, then each of its trainings, on every cell."""
        study, hashes, versions = context.study, context.task_hashes, context.versions
        units = []
        for model in context.models:
            units += plan_units(study, model, BASE, None, hashes, versions)
            for job in context.planned["train"]:
                if job.model.name == model.name:
                    units += plan_units(study, model, job.key, job.seed, hashes, versions)
        return units

    def todo(self, plan: Plan, store: Store, exhausted: set[str]) -> list[EvalJob]:
        """Return the groups whose adapters are settled (committed, or out of retries)."""
        adapters = store.adapters()
        settled = set(adapters) | exhausted
        jobs = evaluation_jobs(plan, store.scores(), adapters, settled)
        return [j for j in jobs if j.key not in exhausted]

    def outstanding(self, plan: Plan, store: Store | None) -> int:
        """Return how many evaluation jobs the units not scored yet make."""
        return len(evaluation_jobs(plan, store.unit_jobs() if store is not None else {}))

    def inputs(self, job: EvalJob, store: Store) -> JobInputs:
        """Return the committed adapters the job scores, with their recorded hashes."""
        adapters = store.adapters()
        states = {u.state for u in job.units if u.state != BASE}
        return JobInputs(adapters={k: adapters[k][:2] for k in states})

    def run(self, job: EvalJob, inputs: JobInputs, progress: bool) -> EvalResult:
        """Score the job's units."""
        return run_evaluation(job, inputs.adapters, progress)

    def relocated(self, result: EvalResult, output_dir: Path) -> EvalResult:
        """Return the result unchanged: an evaluation writes no folder."""
        return result

    def commit(self, job: EvalJob, result: EvalResult, store: Store) -> bool:
        """Store the unit scores and items and mark the job done, in one transaction."""
        return store.commit_scores(job.key, result.scores, result.items)

    def status(self, plan: Plan, store: Store) -> KindStatus:
        """Return how many units are scored, in how many jobs, and how many jobs are left."""
        job_of = store.unit_jobs()
        scored = sum(u.key in job_of for u in plan.units)
        done = len({job_of[u.key] for u in plan.units if u.key in job_of})
        pending = self.outstanding(plan, store)
        line = (
            f"{self.title}: {scored} of {len(plan.units)} (model state, cell) scores done in "
            f"{done} job(s); {pending} job(s) to go"
        )
        return KindStatus(line, done, pending, scored == len(plan.units))

    def relevant(self, record: JobRecord, plan: Plan, store: Store) -> bool:
        """Return whether the record was to commit units of the plan still unscored."""
        job_of = store.unit_jobs()
        return bool({u.key for u in plan.units if u.key not in job_of}.intersection(record.units))
