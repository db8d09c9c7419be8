"""A study → content-addressed work, planned by each registered job kind in turn.

Every key hashes everything that determines the job's output (model content hash, task content
hashes, settings, seed, code versions), never names or paths, so a finished job is found again
after any change that does not affect it, and redone after any change that does. Each kind
declares its own key inputs (``jobs/train.py``: one training per source and seed;
``jobs/evaluate.py``: one unit per model state and target cell, grouped into jobs per
(model, seed)), so adding a language, task or seed only adds work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transferlab.config import EvaluationSettings, Study
from transferlab.grid import BASE, Cell
from transferlab.jobs import KINDS
from transferlab.jobs.base import ModelRef, PlanContext, content_key
from transferlab.jobs.evaluate import EvalJob, EvalUnit, evaluation_jobs
from transferlab.jobs.train import TrainJob
from transferlab.versions import code_versions

__all__ = [
    "BASE",
    "EvalJob",
    "EvalUnit",
    "ModelRef",
    "Plan",
    "TrainJob",
    "content_key",
    "evaluation_jobs",
    "plan_study",
]


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
    work: dict[str, list[Any]]  # kind name → what that kind planned
    versions: dict[str, str]
    task_refs: tuple[tuple[str, str], ...]
    sweeps: list[dict[str, Any]] = field(default_factory=list)  # mixtures.csv: one row per point
    trust_task_code: bool = False  # the study's opt-in for lm-eval `!function` task code

    @property
    def train_jobs(self) -> list[TrainJob]:
        """Return the trainings, one per (model, seed, source)."""
        return self.work["train"]

    @property
    def units(self) -> list[EvalUnit]:
        """Return the evaluation units, one per (model state, target cell)."""
        return self.work["evaluate"]

    @property
    def align_jobs(self) -> list[Any]:
        """Return the alignment jobs (``jobs.align.AlignJob``), one per model state; none
        without an ``alignment:`` section."""
        return self.work.get("align", [])

    def trainings_of(self, model: str, seed: int) -> list[TrainJob]:
        """Return the training jobs of one (model, seed) group."""
        return [j for j in self.train_jobs if j.model.name == model and j.seed == seed]


def plan_study(study: Study) -> Plan:
    """Return the work every registered kind plans for ``study`` (models resolved and hashed).

    Planning reads and hashes models but never converts one: a preset not prepared yet raises
    ``NotPrepared`` (``transferlab run`` prepares its models before planning).
    """
    from transferlab.models import model_info

    task_hashes = {
        cell: study.task_specs[cell.task].content_hash(cell.language) for cell in study.cells
    }
    models = []
    for spec in study.models:
        info = model_info(spec.ref, convert=False)
        models.append(
            ModelRef(
                spec.display_name,
                spec.ref,
                spec.trust_remote_code,
                info.model_hash,
                info.family,
                info.n_params / 1e9,  # unrounded: a tiny model is not 0B
            )
        )
    versions = code_versions()
    work: dict[str, list[Any]] = {}
    for name, kind in KINDS.items():  # registration order: a kind sees the kinds before it
        work[name] = kind.plan(PlanContext(study, models, task_hashes, versions, dict(work)))
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
        work,
        versions,
        tuple(study.task_refs.items()),
        [point.row() for point in study.sweep_points],
        study.trust_task_code,
    )
