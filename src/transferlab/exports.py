"""A run directory's tables from the store: per-seed results, per-item correctness, run_info.json.

Only units of the current plan are exported, so a store that also holds results of an earlier
version of the study (a language since removed, other settings) exports exactly this study.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from transferlab.analysis.bootstrap import ITEM_COLUMNS as ITEM_SCHEMA
from transferlab.analysis.columns import PER_SEED_COLUMNS as PER_SEED_SCHEMA
from transferlab.fileio import replaced
from transferlab.grid import BASE, Source, source_regime
from transferlab.plan import Plan
from transferlab.runinfo import RunInfo
from transferlab.store import Store, UnitScore

# The table layouts are the analysis module's contract: one definition, read and written alike.
PER_SEED_COLUMNS = list(PER_SEED_SCHEMA)
ITEM_COLUMNS = list(ITEM_SCHEMA)


def per_seed_table(plan: Plan, scores: dict[str, UnitScore]) -> pd.DataFrame:
    """Return one row per (model, source, seed, target) whose adapter and base are scored."""
    trainings = {job.key: job for job in plan.train_jobs}
    models = {m.name: m for m in plan.models}
    base = {
        (u.model, u.cell): scores[u.key] for u in plan.units if u.state == BASE and u.key in scores
    }
    versions = json.dumps(plan.versions, sort_keys=True)
    rows = []
    for unit in plan.units:
        if unit.state == BASE or unit.key not in scores or (unit.model, unit.cell) not in base:
            continue
        tuned, untuned = scores[unit.key], base[(unit.model, unit.cell)]
        source = trainings[unit.state].source
        source_task, source_language = _source_keys(source)
        model = models[unit.model]
        metric, primary = plan.headline[unit.cell.task], plan.primary[unit.cell.task]
        score, score_base = tuned.metrics[primary], untuned.metrics[primary]
        score_norm, score_norm_base = tuned.metrics[metric], untuned.metrics[metric]
        delta, delta_norm = 100 * (score - score_base), 100 * (score_norm - score_norm_base)
        rows.append(
            {
                "model_name": model.name,
                # Fixed-point: readers of the paper schema take "1.5" or "135M", not "9e-05".
                "model_size": f"{model.size_b:.9f}".rstrip("0").rstrip("."),
                "model_family": model.family,
                "fine_tuned_dataset": source_task,
                "fine_tuned_language": source_language,
                "eval_dataset": unit.cell.task,
                "eval_language": unit.cell.language,
                "regime": source_regime(source, unit.cell).value,
                "seed": unit.seed,
                "score": score,
                "score_base": score_base,
                "score_norm": score_norm,
                "score_norm_base": score_norm_base,
                "delta_score": delta,
                "delta_score_norm": delta_norm,
                "n_items": tuned.n,
                "headline_metric": metric,
                "model_hash": model.model_hash,
                "adapter_hash": tuned.provenance["adapter_hash"],
                "task_hash": unit.task_hash,
                "dtype": plan.evaluation.dtype,
                "batch_size": plan.evaluation.batch_size,
                "versions": versions,
                "source": source.label,
                "source_parts": source.parts_text(),
            }
        )
    return pd.DataFrame(rows, columns=PER_SEED_COLUMNS)


def _source_keys(source: Source) -> tuple[str, str]:
    """Return the paper's (fine_tuned_dataset, fine_tuned_language) of a source.

    One cell fills them as the paper does; a mixture names its tasks and its languages, each
    joined with '+' (its full identity is in the ``source`` and ``source_parts`` columns).
    """
    if source.is_single:
        return source.cell.task, source.cell.language
    return "+".join(source.tasks), "+".join(source.languages)


def item_frames(plan: Plan, store: Store) -> Iterator[pd.DataFrame]:
    """Yield the per-item correctness of every scored unit of the plan, one frame per unit.

    ``correct`` / ``correct_norm`` are the per-item values of the primary / headline metric (for
    a generative task both are its headline: exact match, ROUGE-L or constraints met, in 0–1).
    """
    trainings = {job.key: job for job in plan.train_jobs}
    units = {u.key: u for u in plan.units}
    for key, items in store.items(u.key for u in plan.units):
        unit = units[key]
        if unit.state == BASE:
            seed, task, language = "", "", ""
        else:
            task, language = _source_keys(trainings[unit.state].source)
            seed = unit.seed
        metrics = items["metrics"]
        primary, headline = plan.primary[unit.cell.task], plan.headline[unit.cell.task]
        if primary not in metrics or headline not in metrics:
            continue  # a corpus-level headline (chrF, BLEU) has no per-item value to resample
        yield pd.DataFrame(
            {
                "model_name": unit.model,
                "seed": seed,
                "fine_tuned_dataset": task,
                "fine_tuned_language": language,
                "eval_dataset": unit.cell.task,
                "eval_language": unit.cell.language,
                "doc_id": items["doc_id"],
                "correct": metrics[primary],
                "correct_norm": metrics[headline],
            }
        )


def write_items(frames: Iterable[pd.DataFrame], file: Path) -> int:
    """Write per-item frames to ``file`` (gzip CSV) via a temporary file; return the rows."""
    n = 0
    # Written frame by frame: a stream of frames need not be held at once.
    with replaced(file) as tmp, gzip.open(tmp, "wt", encoding="utf-8", newline="") as out:
        pd.DataFrame(columns=ITEM_COLUMNS).to_csv(out, index=False)
        for frame in frames:
            frame.to_csv(out, index=False, header=False)
            n += len(frame)
    return n


def run_info(plan: Plan, jobs: dict[str, Any], **run: Any) -> RunInfo:
    """Return the run's RunInfo: the plan's facts, ``jobs`` counts and this run's ``run`` facts."""
    return RunInfo(
        study=plan.name,
        config=plan.config,
        models=[
            {
                "name": m.name,
                "ref": m.ref,
                "model_hash": m.model_hash,
                "size_b": m.size_b,
                "family": m.family,
            }
            for m in plan.models
        ],
        tasks=[
            {"name": c.task, "language": c.language, "task_hash": h}
            for c, h in plan.task_hashes.items()
        ],
        languages=list(plan.languages),
        seeds=list(plan.seeds),
        versions=plan.versions,
        jobs=jobs,
        **run,
    )
