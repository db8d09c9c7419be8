"""Item-level paired bootstrap: a 95% CI for each cell's Δ from per-item correctness."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferlab.analysis.columns import PAPER_KEYS, VARIANT_KEYS
from transferlab.errors import UserError

ITEM_COLUMNS = (
    "model_name",
    "seed",
    "fine_tuned_dataset",
    "fine_tuned_language",
    "eval_dataset",
    "eval_language",
    "doc_id",
    "correct",
    "correct_norm",
)
CI_COLUMNS = [*PAPER_KEYS.values(), "delta", "ci_low", "ci_high", "contains_zero", "n_items"]
_TARGET = ["model", "target_task", "target_language", "doc_id"]


def items_from_frame(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Return validated per-item rows with internal key names (base rows have no source)."""
    missing = [c for c in ITEM_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            where, f"missing column(s) {', '.join(missing)}", "write the items table in full"
        )
    # the variant columns (method, lora_r) come along where a study varies its training
    kept = [*ITEM_COLUMNS, *(c for c in VARIANT_KEYS if c in frame.columns)]
    items = frame[kept].rename(columns={v: k for k, v in PAPER_KEYS.items()})
    for column in ("model", "source_task", "source_language", "target_task", "target_language"):
        items[column] = items[column].astype("string").str.strip().fillna("").astype(str)
    items["doc_id"] = items["doc_id"].astype(str)
    for column in ("correct", "correct_norm"):
        values = pd.to_numeric(items[column], errors="coerce")
        bad = values.isna() | ~values.between(0, 1)
        if bad.any():
            raise UserError(
                where,
                f"column {column!r} holds {str(items[column][bad.idxmax()])!r} on line "
                f"{int(bad.idxmax()) + 2}",
                "write 0 or 1 for each item",
            )
        items[column] = values.astype(float)
    items["seed"] = pd.to_numeric(items["seed"], errors="coerce")
    duplicated = items.duplicated([c for c in items.columns if not c.startswith("correct")])
    if duplicated.any():
        raise UserError(
            where,
            f"line {int(duplicated.idxmax()) + 2} repeats an item already listed "
            f"({int(duplicated.sum())} repeated row(s))",
            "keep one row per model, seed, source, target and doc_id",
        )
    return items


def paired_differences(items: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per (model, source, target, item): mean correctness over seeds minus the base model's."""
    is_base = items["source_task"] == ""
    base = items.loc[is_base].groupby(_TARGET)[column].mean().rename("base")
    tuned = (
        items.loc[~is_base]
        .groupby(["model", "source_task", "source_language", *_TARGET[1:]])[column]
        .mean()
        .rename("tuned")
        .reset_index()
    )
    paired = tuned.join(base, on=_TARGET, how="inner")
    paired["difference"] = paired["tuned"] - paired["base"]
    return paired


def cell_ci(
    items: pd.DataFrame | None, metric: str, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Return per cell Δ (pp) from items with its 95% paired bootstrap CI over items.

    Items are resampled with replacement; the base and fine-tuned answers of an item stay
    paired. One resample of a target's items serves every cell of that target. Empty when
    there are no items or the metric is not one the items carry (`delta_score[_norm]...`).
    """
    boot = cell_bootstrap(items, metric, n_boot=n_boot, seed=seed)
    if not boot.rows:
        return pd.DataFrame(columns=CI_COLUMNS)
    with np.errstate(invalid="ignore"):
        low, high = np.nanpercentile(boot.boot, [2.5, 97.5], axis=1)
    out = [
        (*key, boot.delta[i], low[i], high[i], bool(low[i] <= 0 <= high[i]), int(boot.n_items[i]))
        for key, i in boot.rows.items()
    ]
    return pd.DataFrame(out, columns=CI_COLUMNS)


CellKey = tuple[str, str, str, str, str]  # model, source_task, source_language, target cell
_SOURCE = ["model", "source_task", "source_language"]


@dataclass(frozen=True)
class CellBootstrap:
    """Per cell (model, source, target) the Δ (pp) from items and its bootstrap replicates.

    Each target's items are resampled together for every source evaluated on it, so two
    sources on one target stay paired item by item; targets are resampled independently.
    """

    rows: dict[CellKey, int]
    delta: np.ndarray  # (cells,)
    boot: np.ndarray  # (cells, n_boot)
    n_items: np.ndarray  # (cells,)

    def combine(self, weights: Mapping[CellKey, float]) -> tuple[float, float, float]:
        """Return Σ w·Δ over the cells and its 95% percentile CI (NaN when a cell is missing)."""
        if not weights or any(key not in self.rows for key in weights):
            return (np.nan, np.nan, np.nan)
        index = [self.rows[key] for key in weights]
        w = np.array(list(weights.values()), dtype=float)
        estimate = float(w @ self.delta[index])
        low, high = np.nanpercentile(w @ self.boot[index], [2.5, 97.5])
        return estimate, float(low), float(high)


def cell_bootstrap(
    items: pd.DataFrame | None, metric: str, n_boot: int = 1000, seed: int = 0
) -> CellBootstrap:
    """Return every cell's item-bootstrap replicates of Δ (empty without items or for a metric
    the items do not carry)."""
    empty = CellBootstrap({}, np.zeros(0), np.zeros((0, n_boot)), np.zeros(0))
    if items is None or items.empty or not metric.startswith("delta_score"):
        return empty
    column = "correct_norm" if metric.startswith("delta_score_norm") else "correct"
    paired = paired_differences(items, column)
    rng = np.random.default_rng(seed)
    keys: list[CellKey] = []
    deltas, boots, counts = [], [], []
    for (task, language), block in paired.groupby(["target_task", "target_language"], sort=True):
        wide = block.pivot(index="doc_id", columns=_SOURCE, values="difference")
        values = wide.to_numpy(float)
        mask = ~np.isnan(values)
        n_docs = values.shape[0]
        weights = rng.multinomial(n_docs, np.full(n_docs, 1 / n_docs), size=n_boot).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = 100.0 * (weights @ np.nan_to_num(values)) / (weights @ mask)
        deltas.append(100.0 * np.nanmean(values, axis=0))
        boots.append(boot.T)
        counts.append(mask.sum(axis=0))
        keys += [(m, st, sl, task, language) for m, st, sl in wide.columns]
    if not keys:
        return empty
    return CellBootstrap(
        {key: i for i, key in enumerate(keys)},
        np.concatenate(deltas),
        np.vstack(boots),
        np.concatenate(counts),
    )
