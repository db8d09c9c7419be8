"""Comparisons between mixtures: seen vs unseen languages, and single-task vs multi-task sources.

Both take the item bootstrap of `bootstrap.cell_bootstrap`, so a gap or a difference gets a 95% CI from the
test items, with the two sides of a difference on one target paired item by item.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from transferlab.analysis.bootstrap import CellBootstrap
from transferlab.grid import Source, is_mixture_label

SEEN_COLUMNS = [
    "model",
    "mixture",
    "per_language",
    "target_task",
    "seen_mean",
    "unseen_mean",
    "gap",
    "gap_low",
    "gap_high",
    "n_seen",
    "n_unseen",
]
CORRELATION_COLUMNS = ["model", "mixture", "spearman", "p_value", "n_points"]
MULTITASK_COLUMNS = [
    "model",
    "multi_task_source",
    "single_task_source",
    "target_task",
    "target_language",
    "delta_multi",
    "delta_single",
    "difference",
    "ci_low",
    "ci_high",
]
MULTITASK_SUMMARY_COLUMNS = [
    "model",
    "multi_task_source",
    "single_task_source",
    "target_task",
    "n_targets",
    "difference",
    "ci_low",
    "ci_high",
]


def seen_unseen(curves: pd.DataFrame, cells: pd.DataFrame, boot: CellBootstrap) -> pd.DataFrame:
    """Return per (model, sweep, k, target task) the mean Δ on seen and on unseen target
    languages and their gap (seen − unseen) with its 95% item-bootstrap CI (on-task targets)."""
    languages = dict(zip(cells["source_task"], cells["source_language"], strict=False))
    rows = []
    on_task = curves[curves["on_task"]]
    groups = on_task.groupby(["model", "mixture", "per_language", "target_task"], sort=True)
    for (model, mixture, k, task), block in groups:
        seen, unseen = block[block["seen"]], block[~block["seen"]]
        weights = {}
        for side, sign in ((seen, 1.0), (unseen, -1.0)):
            for r in side.itertuples(index=False):
                key = (model, r.source, languages[r.source], task, r.target_language)
                weights[key] = sign / len(side)
        gap = float(seen["delta"].mean() - unseen["delta"].mean())
        _, low, high = boot.combine(weights) if len(seen) and len(unseen) else (np.nan,) * 3
        rows.append(
            (model, mixture, int(k), task, float(seen["delta"].mean()),
             float(unseen["delta"].mean()), gap, low, high, len(seen), len(unseen))
        )  # fmt: skip
    return pd.DataFrame(rows, columns=SEEN_COLUMNS)


def seen_unseen_correlation(table: pd.DataFrame) -> pd.DataFrame:
    """Return per (model, sweep) Spearman's ρ between the seen and the unseen mean Δ across the
    sweep's points (k × target task): does unseen-language transfer track seen-language gains?"""
    rows = []
    for (model, mixture), block in table.groupby(["model", "mixture"], sort=True):
        block = block.dropna(subset=["seen_mean", "unseen_mean"])
        if (
            len(block) >= 3
            and block["seen_mean"].nunique() > 1
            and block["unseen_mean"].nunique() > 1
        ):
            rho, p = stats.spearmanr(block["seen_mean"], block["unseen_mean"])
        else:
            rho, p = np.nan, np.nan
        rows.append((model, mixture, float(rho), float(p), len(block)))
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def _single_task_counterparts(sources: list[str]) -> dict[tuple[str, str], str]:
    """Return {(multi-task source, task): the source holding exactly its parts of that task}."""
    parsed = {label: Source.parse(label) for label in sources if is_mixture_label(label)}
    by_parts = {(s.parts, s.disjoint_ids): label for label, s in parsed.items()}
    pairs = {}
    for label, source in parsed.items():
        if len(source.tasks) < 2:
            continue
        for task in source.tasks:
            own = tuple((c, n) for c, n in source.parts if c.task == task)
            match = by_parts.get((own, source.disjoint_ids))
            if match is not None:
                pairs[(label, task)] = match
    return pairs


def multitask_vs_single(
    cells: pd.DataFrame, metric: str, boot: CellBootstrap
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return per target and per (model, multi-task source, task) Δ(multi) − Δ(single).

    The single-task source is the mixture with exactly the multi-task source's parts of that
    task (the same items per task, drawn alike), compared on that task's targets: a positive
    difference is synergy from the other tasks, a negative one interference.
    """
    pairs = _single_task_counterparts(sorted(set(cells["source_task"])))
    indexed = cells.set_index(["model", "source_task", "target_task", "target_language"])
    rows, summary = [], []
    for (multi, task), single in sorted(pairs.items()):
        for model in sorted(cells["model"].unique()):
            targets = cells[
                (cells["model"] == model) & (cells["source_task"] == multi)
                & (cells["target_task"] == task)
            ]  # fmt: skip
            weights_all = {}
            for r in targets.itertuples(index=False):
                at = (model, single, task, r.target_language)
                if at not in indexed.index:
                    continue
                other = indexed.loc[at]
                key_multi = (model, multi, r.source_language, task, r.target_language)
                key_single = (model, single, other["source_language"], task, r.target_language)
                _, low, high = boot.combine({key_multi: 1.0, key_single: -1.0})
                delta_multi, delta_single = float(getattr(r, metric)), float(other[metric])
                rows.append(
                    (model, multi, single, task, r.target_language, delta_multi, delta_single,
                     delta_multi - delta_single, low, high)
                )  # fmt: skip
                weights_all[key_multi] = 1.0
                weights_all[key_single] = -1.0
            n = len(weights_all) // 2
            if n:
                mean = float(np.mean([row[7] for row in rows[-n:]]))
                scaled = {key: w / n for key, w in weights_all.items()}
                _, low, high = boot.combine(scaled)
                summary.append((model, multi, single, task, n, mean, low, high))
    return (
        pd.DataFrame(rows, columns=MULTITASK_COLUMNS),
        pd.DataFrame(summary, columns=MULTITASK_SUMMARY_COLUMNS),
    )
