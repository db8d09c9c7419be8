"""Results table → the long frame the predictors work on: one row per (model, source, target).

The frame holds every (model, source cell, target cell) of the model's grid, measured or not:
sources the table has no rows for get rows with `delta` NaN, so a predictor can fill them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferlab.analysis.bootstrap import paired_differences
from transferlab.analysis.schema import CELL_KEYS, ResultsTable
from transferlab.errors import UserError
from transferlab.grid import regime_of

ROW_KEYS: tuple[str, ...] = ("model", "source_task", "source_language")
TARGET_KEYS: tuple[str, ...] = ("target_task", "target_language")
FRAME_COLUMNS: tuple[str, ...] = (
    *CELL_KEYS,
    "regime",
    "delta",
    "se",
    "measured",
    "source_base",
    "distance",
)


def _base_column(metric: str) -> str:
    # delta_score_norm_mean → score_norm_base_mean: the base score behind the Δ
    return metric.removeprefix("delta_").removesuffix("_mean") + "_base_mean"


def prediction_frame(
    table: ResultsTable, metric: str | None = None, distances: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return the full grid: keys, `regime`, `delta`, `se`, `measured`, `source_base`, `distance`.

    `delta` and `se` come from `metric` (default: the headline Δ) and its SE column over seeds
    (for cells with one seed, the paired SE over the cell's items when the table has them); every
    source cell of a model's grid (the cells it was evaluated on) gets a row per target, NaN
    where unmeasured. `source_base` is the model's base score on the source cell (a feature
    known before training); `distance` the mean URIEL distance of the two languages (0 for the
    same language, NaN where unknown) from `distance.typological_distances`.
    """
    table = table.for_metric(metric)
    column = table.metric_column(metric)
    table = table.single_cell()  # predictions fill the grid of single-cell sources
    cells = table.cells
    se_column = column.removesuffix("_mean") + "_se"
    measured = cells[list(CELL_KEYS)].assign(
        delta=cells[column].astype(float),
        se=cells[se_column].astype(float) if se_column in cells else np.nan,
    )
    grids = []
    for model, block in cells.groupby("model", sort=True):
        targets = block[list(TARGET_KEYS)].drop_duplicates()
        sources = targets.set_axis(["source_task", "source_language"], axis=1)
        grid = sources.merge(targets, how="cross").assign(model=model)
        grids.append(grid)
    frame = pd.concat(grids, ignore_index=True)[list(CELL_KEYS)]
    extra = measured.merge(frame, on=list(CELL_KEYS), how="left", indicator=True)
    if (extra["_merge"] == "left_only").any():
        row = extra[extra["_merge"] == "left_only"].iloc[0]
        raise UserError(
            table.where,
            f"model {row['model']} has source {row['source_task']}:{row['source_language']} "
            "that is not among the cells it was evaluated on",
            "evaluate every source cell as a target too (the grid is cells × cells)",
        )
    frame = frame.merge(measured, on=list(CELL_KEYS), how="left")
    if table.items is not None and frame["se"].isna().any():
        # one seed gives no SE over seeds; the paired SE over the cell's items is what is left
        items = item_se(table.items, column)
        frame = frame.merge(items, on=list(CELL_KEYS), how="left")
        frame["se"] = frame["se"].fillna(frame.pop("item_se"))
    frame["measured"] = frame["delta"].notna()
    pairs = frame[list(CELL_KEYS[1:])].drop_duplicates()
    pairs["regime"] = [regime_of(*pair).value for pair in pairs.itertuples(index=False)]
    frame = frame.merge(pairs, on=list(CELL_KEYS[1:]), how="left")
    frame["source_base"] = _source_base(cells, frame, _base_column(column))
    frame["distance"] = _pair_distance(frame, distances)
    return frame[list(FRAME_COLUMNS)]


def item_se(items: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return per cell the SE (pp) of its Δ over items: SD of the paired differences / √n."""
    column = "correct_norm" if metric.startswith("delta_score_norm") else "correct"
    paired = paired_differences(items, column)
    groups = paired.groupby(list(CELL_KEYS), sort=False)["difference"]
    se = 100 * groups.std(ddof=1) / np.sqrt(groups.count())
    return se.rename("item_se").reset_index()


def _source_base(cells: pd.DataFrame, frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in cells:
        return pd.Series(np.nan, index=frame.index)
    base = (
        cells.groupby(["model", *TARGET_KEYS])[column]
        .first()
        .rename_axis(["model", "source_task", "source_language"])
        .rename("source_base")
    )
    return frame.join(base, on=list(ROW_KEYS))["source_base"].astype(float)


def _pair_distance(frame: pd.DataFrame, distances: pd.DataFrame | None) -> pd.Series:
    same = frame["source_language"] == frame["target_language"]
    out = pd.Series(np.where(same, 0.0, np.nan), index=frame.index)
    if distances is None or distances.empty:
        return out
    mean = distances.drop(columns=["language_a", "language_b"]).astype(float).mean(axis=1)
    pairs = {}
    for a, b, d in zip(distances["language_a"], distances["language_b"], mean, strict=True):
        pairs[(a, b)] = pairs[(b, a)] = d
    languages = zip(frame["source_language"], frame["target_language"], strict=True)
    known = pd.Series([pairs.get(p, np.nan) for p in languages], index=frame.index)
    return out.fillna(known)


@dataclass(frozen=True)
class Design:
    """Integer group codes of a prediction frame, computed once and shared by every fit."""

    frame: pd.DataFrame
    groups: dict[tuple[str, ...], np.ndarray]
    row: np.ndarray  # code of the (model, source) row of each entry
    n_rows: int

    def codes(self, columns: tuple[str, ...]) -> np.ndarray:
        """Return the group code of every entry for `columns` (cached)."""
        if columns not in self.groups:
            frame = self.frame.assign(
                same_task=self.frame["source_task"] == self.frame["target_task"]
            )
            self.groups[columns] = frame.groupby(list(columns), sort=False).ngroup().to_numpy()
        return self.groups[columns]


def make_design(frame: pd.DataFrame) -> Design:
    """Return the `Design` of a prediction frame (rows in frame order)."""
    row = frame.groupby(list(ROW_KEYS), sort=False).ngroup().to_numpy()
    return Design(frame=frame, groups={ROW_KEYS: row}, row=row, n_rows=int(row.max()) + 1)


def source_rows(design: Design) -> pd.DataFrame:
    """Return one row per (model, source) of the design, in row-code order, with `measured`."""
    frame = design.frame
    first = pd.Series(np.arange(len(frame))).groupby(design.row).first().to_numpy()
    rows = frame.iloc[first][list(ROW_KEYS)].reset_index(drop=True)
    rows["measured"] = frame["measured"].groupby(design.row).all().to_numpy()
    return rows
