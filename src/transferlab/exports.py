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
from transferlab.analysis.columns import VARIANT_KEYS, metric_columns
from transferlab.fileio import replaced
from transferlab.grid import BASE, Source, source_regime
from transferlab.mixtures import SWEEP_COLUMNS
from transferlab.plan import Plan
from transferlab.runinfo import RunInfo
from transferlab.store import Store, UnitScore
from transferlab.store_alignment import alignment_rows

# The table layouts are the analysis module's contract: one definition, read and written alike.
PER_SEED_COLUMNS = list(PER_SEED_SCHEMA)
ITEM_COLUMNS = list(ITEM_SCHEMA)


def training_variants(plan: Plan) -> dict[str, dict[str, Any]]:
    """Return per training key its values of the variant columns the plan varies (method,
    lora_r; a full fine-tune has no rank): empty dicts when every training is alike.

    The columns exist only where they tell rows apart, so the tables of a study that does not
    vary its training keep their layout byte for byte.
    """
    values = {
        job.key: {
            "method": job.settings.method,
            "lora_r": job.settings.lora_r if job.settings.method == "lora" else None,
        }
        for job in plan.train_jobs
    }
    varied = [c for c in VARIANT_KEYS if len({v[c] for v in values.values()}) > 1]
    return {key: {c: v[c] for c in varied} for key, v in values.items()}


def _variant_columns(variants: dict[str, dict[str, Any]]) -> list[str]:
    return list(next(iter(variants.values()), {}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    if "lora_r" in frame.columns:  # whole numbers, blank for a full fine-tune
        frame["lora_r"] = frame["lora_r"].astype("Int64")
    return frame


def per_seed_table(plan: Plan, scores: dict[str, UnitScore]) -> pd.DataFrame:
    """Return one row per (model, source, seed, target[, variant]) whose adapter and base are scored."""
    trainings = {job.key: job for job in plan.train_jobs}
    variants = training_variants(plan)
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
                **variants[unit.state],
                **_further_metrics(tuned, untuned, {primary, metric}),
            }
        )
    further = sorted({c for row in rows for c in row} - set(PER_SEED_COLUMNS) - set(VARIANT_KEYS))
    columns = PER_SEED_COLUMNS + _variant_columns(variants) + further
    return _typed(pd.DataFrame(rows, columns=columns))


def _further_metrics(tuned: UnitScore, untuned: UnitScore, shown: set[str]) -> dict[str, float]:
    """Return the columns of every metric of a unit that ``score`` / ``score_norm`` do not show.

    Blank for targets without the metric, so ``--metric`` reaches e.g. chrF of a generative
    target, or acc_norm of a task whose headline is acc.
    """
    out = {}
    for name in sorted(set(tuned.metrics) & set(untuned.metrics) - shown):
        value, base, delta = metric_columns(name)
        out[value], out[base] = tuned.metrics[name], untuned.metrics[name]
        out[delta] = 100 * (tuned.metrics[name] - untuned.metrics[name])
    return out


def _source_keys(source: Source) -> tuple[str, str]:
    """Return the paper's (fine_tuned_dataset, fine_tuned_language) of a source.

    One cell fills them as the paper does; a mixture has its label as the dataset (so each
    mixture is a source of its own) and its languages joined with '+'.
    """
    if source.is_single:
        return source.cell.task, source.cell.language
    return source.label, "+".join(source.languages)


def item_frames(plan: Plan, store: Store) -> Iterator[pd.DataFrame]:
    """Yield the per-item correctness of every scored unit of the plan, one frame per unit.

    ``correct`` / ``correct_norm`` are the per-item values of the primary / headline metric (for
    a generative task both are its headline: exact match, ROUGE-L or constraints met, in 0–1).
    """
    trainings = {job.key: job for job in plan.train_jobs}
    units = {u.key: u for u in plan.units}
    variants = training_variants(plan)
    blank = dict.fromkeys(_variant_columns(variants))
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
        frame = pd.DataFrame(
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
                **variants.get(unit.state, blank),
            }
        )
        yield _typed(frame)


def sweep_table(plan: Plan) -> pd.DataFrame:
    """Return mixtures.csv: one row per point of the study's sweeps (``SWEEP_COLUMNS``)."""
    return pd.DataFrame(plan.sweeps, columns=list(SWEEP_COLUMNS))


def write_items(frames: Iterable[pd.DataFrame], file: Path) -> int:
    """Write per-item frames to ``file`` (gzip CSV) via a temporary file; return the rows."""
    n = 0
    # Written frame by frame: a stream of frames need not be held at once.
    with replaced(file) as tmp, gzip.open(tmp, "wt", encoding="utf-8", newline="") as out:
        header = False
        for frame in frames:
            if not header:  # the frames' columns: the item schema, plus any variant columns
                pd.DataFrame(columns=frame.columns).to_csv(out, index=False)
                header = True
            frame.to_csv(out, index=False, header=False)
            n += len(frame)
        if not header:
            pd.DataFrame(columns=ITEM_COLUMNS).to_csv(out, index=False)
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


# alignment.csv of a run: the columns of `transferlab align`, then which model and source each
# state is (what relating alignment to the measured transfer joins on)
ALIGNMENT_EXTRA_COLUMNS = ["model_name", "seed", "fine_tuned_dataset", "fine_tuned_language"]


def alignment_table(plan: Plan, store: Store) -> pd.DataFrame:
    """Return the committed alignment rows of the plan's model states, in plan order."""
    from transferlab.alignment.table import COLUMNS

    found = store.read(lambda db: alignment_rows(db, [j.key for j in plan.align_jobs]))
    rows = []
    for job in plan.align_jobs:
        task, language = _source_keys(job.source) if job.source is not None else ("", "")
        extra = {"model_name": job.model.name, "seed": "" if job.seed is None else job.seed,
                 "fine_tuned_dataset": task, "fine_tuned_language": language}  # fmt: skip
        rows += [{"model_state": job.state_name} | row | extra for row in found.get(job.key, [])]
    return pd.DataFrame(rows, columns=[*COLUMNS, *ALIGNMENT_EXTRA_COLUMNS])
