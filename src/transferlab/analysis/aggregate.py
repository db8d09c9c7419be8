"""Per-seed rows → one row per cell in the paper's schema (mean, SD and SE over seeds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferlab.analysis.columns import (
    CELL_KEYS,
    PAPER_COLUMNS,
    PAPER_KEYS,
    SCORES,
    further_metrics,
    metric_columns,
    row_keys,
)

# columns the analysis adds to a table; they are not part of either file schema
DERIVED_COLUMNS = ("size_b", "size_bucket")
_CELL_COLUMNS = (*CELL_KEYS, "regime", "model_size", "model_family", *DERIVED_COLUMNS)


def _join_values(values: pd.Series) -> object:
    unique = list(dict.fromkeys(values.dropna().astype(str)))
    return ";".join(unique) if unique else np.nan


def aggregate_seeds(rows: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (model, source, target[, variant]): score means, SDs, SEs over seeds.

    `rows` are validated per-seed rows with internal key names. Other columns are kept: a value
    shared by all seeds of a cell as it is, differing values (e.g. adapter hashes) joined with
    ';' in seed order; `seeds` lists the seeds.
    """
    rows = rows.sort_values("seed", kind="stable")
    keys = row_keys(rows.columns)
    # dropna=False: a full fine-tune's row has no LoRA rank
    groups = rows.groupby(keys, sort=False, dropna=False)
    cells = groups[[c for c in _CELL_COLUMNS if c in rows.columns]].first()
    cells = cells.drop(columns=keys, errors="ignore")
    stats = groups[list(SCORES)].agg(["mean", "std", "count"])
    n_seeds = stats[(SCORES[0], "count")]
    for score in SCORES:
        cells[f"{score}_mean"] = stats[(score, "mean")]
        cells[f"{score}_std"] = stats[(score, "std")]
    cells["n_seeds"] = n_seeds.astype(int)
    for score in SCORES:
        cells[f"{score}_se"] = stats[(score, "std")] / np.sqrt(n_seeds)
    cells["seeds"] = groups["seed"].agg(lambda s: ";".join(map(str, s)))
    # Further metrics (blank where a target lacks them) get the same statistics.
    further = [c for m in further_metrics(rows.columns) for c in metric_columns(m)]
    if further:
        extra = groups[further].agg(["mean", "std", "count"])
        for column in further:
            cells[f"{column}_mean"] = extra[(column, "mean")]
            cells[f"{column}_std"] = extra[(column, "std")]
            cells[f"{column}_se"] = extra[(column, "std")] / np.sqrt(extra[(column, "count")])
    extras = [
        c for c in rows.columns if c not in (*_CELL_COLUMNS, *keys, "seed", *SCORES, *further)
    ]
    if extras:
        constant = groups[extras].nunique(dropna=False).le(1).all()
        for column in extras:
            if constant[column]:
                cells[column] = groups[column].first()
            else:
                cells[column] = groups[column].agg(_join_values)
    return cells.reset_index()


def to_paper_schema(cells: pd.DataFrame) -> pd.DataFrame:
    """Return cells with the paper's column names and order, transferlab's columns after them."""
    table = cells.drop(columns=list(DERIVED_COLUMNS), errors="ignore").rename(columns=PAPER_KEYS)
    paper = [c for c in PAPER_COLUMNS if c in table.columns]
    return table[paper + [c for c in table.columns if c not in paper]]
