"""One item bootstrap for many cells at once, so sums and differences of cells get CIs too.

Each target's items are resampled together for every source evaluated on it (as `cell_ci`
does), so two sources on the same target stay paired item by item; different targets are
resampled independently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferlab.analysis.bootstrap import paired_differences

CellKey = tuple[str, str, str, str, str]  # model, source_task, source_language, target cell
_SOURCE = ["model", "source_task", "source_language"]


@dataclass(frozen=True)
class CellBootstrap:
    """Per cell (model, source, target) the Δ (pp) from items and its bootstrap replicates."""

    rows: dict[CellKey, int]
    delta: np.ndarray  # (cells,)
    boot: np.ndarray  # (cells, n_boot)

    def combine(self, weights: Mapping[CellKey, float]) -> tuple[float, float, float]:
        """Return Σ w·Δ over the cells and its 95% percentile CI (NaN when a cell is missing)."""
        if not weights or any(key not in self.rows for key in weights):
            return (np.nan, np.nan, np.nan)
        index = [self.rows[key] for key in weights]
        w = np.array(list(weights.values()), dtype=float)
        estimate = float(w @ self.delta[index])
        replicates = w @ self.boot[index]
        low, high = np.nanpercentile(replicates, [2.5, 97.5])
        return estimate, float(low), float(high)


def cell_bootstrap(
    items: pd.DataFrame | None, metric: str, n_boot: int = 1000, seed: int = 0
) -> CellBootstrap:
    """Return every cell's item-bootstrap replicates of Δ (empty without items)."""
    empty = CellBootstrap({}, np.zeros(0), np.zeros((0, n_boot)))
    if items is None or items.empty or not metric.startswith("delta_score"):
        return empty
    column = "correct_norm" if metric.startswith("delta_score_norm") else "correct"
    paired = paired_differences(items, column)
    rng = np.random.default_rng(seed)
    keys: list[CellKey] = []
    deltas, boots = [], []
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
        keys += [(m, st, sl, task, language) for m, st, sl in wide.columns]
    if not keys:
        return empty
    return CellBootstrap(
        {key: i for i, key in enumerate(keys)}, np.concatenate(deltas), np.vstack(boots)
    )
