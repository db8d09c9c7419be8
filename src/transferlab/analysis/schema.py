"""Results-table schemas: validate a raw table and turn it into a `ResultsTable` (no file I/O).

Two schemas are read: the reference study's released `transfer_results.csv` (seeds aggregated,
PROTOCOL.md §1) and transferlab's per-seed export `results_per_seed.csv`. Inside the analysis the
key columns carry short names (`model`, `source_task`, ...); `PAPER_KEYS` maps them back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from transferlab.analysis.aggregate import aggregate_seeds
from transferlab.analysis.columns import (
    CELL_KEYS,
    PAPER_COLUMNS,
    PAPER_KEYS,
    SCORES,
    further_metrics,
    metric_columns,
    row_keys,
)
from transferlab.analysis.holes import check_grid
from transferlab.errors import UserError, did_you_mean
from transferlab.grid import REGIMES, Cell, Source, is_mixture_label, regime_of, source_regime

logger = logging.getLogger(__name__)

# the column order of `ResultsTable.cells`, whichever schema it was read from
_CELL_ORDER = (
    *CELL_KEYS,
    "regime",
    "model_size",
    "model_family",
    "size_b",
    "size_bucket",
    *PAPER_COLUMNS[7:],
    "seeds",
)
HEADLINE_METRIC = "delta_score_norm_mean"
_MISSING_TEXT = {"", "nan", "NaN", "NA", "None", "null"}
_PAPER_NUMERIC = tuple(c for c in PAPER_COLUMNS if c.endswith(("_mean", "_std", "_se", "n_seeds")))
_EXTRA_NUMERIC = ("n_items", "batch_size", "lora_r")  # transferlab's numeric columns
_INTEGER_COLUMNS = ("seed", "n_seeds", "n_items", "batch_size", "lora_r")
_SIZE_TEXT = re.compile(r"^\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([bBmM]?)\s*$")


def size_bucket(size_b: float) -> str:
    """Return the size bucket of a model: S ≤1.5B, M up to 7B, L ≥7B (PROTOCOL.md §1)."""
    if size_b <= 1.5:
        return "S"
    return "M" if size_b < 7 else "L"


def family_of(model_name: str) -> str:
    """Return the family read from a model name: the leading letters of its last path part."""
    base = model_name.rstrip("/").rsplit("/", 1)[-1]
    letters = re.match(r"[A-Za-z]+", base)
    return (letters.group(0) if letters else base).lower()


def parse_size_b(value: object) -> float | None:
    """Return a model size in billions from a number (billions) or text like '1.5B' / '135M'.

    Zero is accepted: tiny test models round to it.
    """
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value) if np.isfinite(value) and value >= 0 else None
    match = _SIZE_TEXT.match(str(value))
    if not match:
        return None
    number = float(match.group(1))
    return number / 1000 if match.group(2).lower() == "m" else number


@dataclass(frozen=True)
class ResultsTable:
    """A validated results table.

    `cells` has one row per (model, source cell, target cell) with seeds aggregated: the key
    columns under their internal names, `regime` (derived from the keys), `model_family`,
    `size_b`, `size_bucket`, the paper's score columns and any extra columns of the file.
    `seeds` holds the per-seed rows when the table came from transferlab's per-seed export, and
    `items` the per-item correctness for the item bootstrap when present.
    """

    cells: pd.DataFrame
    where: str
    schema: str  # "paper" | "per_seed"
    seeds: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    holes: int = 0
    sweeps: pd.DataFrame | None = None  # mixtures.csv: the sweeps' points, when there are any

    @property
    def has_mixtures(self) -> bool:
        """Return whether some sources are mixtures (their `source_task` is a `mix(...)` label)."""
        return bool(self.cells["source_task"].map(is_mixture_label).any())

    def single_cell(self) -> ResultsTable:
        """Return the table restricted to single-cell sources (what roles, variance and
        consistency are defined on); the table itself when it has no mixtures."""
        if not self.has_mixtures:
            return self

        def keep(frame: pd.DataFrame | None) -> pd.DataFrame | None:
            if frame is None:
                return None
            return frame[~frame["source_task"].map(is_mixture_label)].reset_index(drop=True)

        return replace(self, cells=keep(self.cells), seeds=keep(self.seeds), items=keep(self.items))

    @property
    def models(self) -> pd.DataFrame:
        """Return one row per model: `model, model_family, size_b, size_bucket`."""
        columns = ["model", "model_family", "size_b", "size_bucket"]
        return self.cells[columns].drop_duplicates("model").sort_values("model", ignore_index=True)

    def metric_column(self, metric: str | None) -> str:
        """Return the column of `cells` holding `metric` (None: the headline Δ).

        Besides a column name, a metric's own name (`chrf`, `acc_norm`) names its Δ column.
        """
        metric = metric or HEADLINE_METRIC
        if metric not in self.cells.columns and f"delta_{metric}_mean" in self.cells.columns:
            metric = f"delta_{metric}"
        if metric not in self.cells.columns and f"{metric}_mean" in self.cells.columns:
            metric = f"{metric}_mean"
        numeric = [c for c in self.cells.columns if pd.api.types.is_numeric_dtype(self.cells[c])]
        if metric not in self.cells.columns:
            choices = [c for c in numeric if c.startswith("delta_") and c.endswith("_mean")]
            if self.schema == "per_seed":
                choices = [c.removesuffix("_mean") for c in choices] + choices
            raise UserError(
                self.where,
                f"no column {metric!r}{did_you_mean(metric, choices)}",
                f"choose --metric from {', '.join(choices) or 'the delta columns'}",
            )
        if metric not in numeric:
            raise UserError(self.where, f"column {metric!r} is not numeric", "choose a Δ column")
        blank = self.cells[metric].isna()
        if blank.any():
            raise UserError(
                self.where,
                f"{int(blank.sum())} row(s) have no value in {metric!r}, e.g. "
                f"{_describe(self.cells.loc[blank].iloc[0])}",
                "fill the values or remove those rows",
            )
        return metric

    def for_metric(self, metric: str | None) -> ResultsTable:
        """Return the table restricted to the targets that have `metric` (a further metric such
        as chrF exists only for the tasks that report it); unchanged when every row has it."""
        if metric is None or metric in self.cells.columns:
            return self
        column = f"delta_{metric}_mean"
        if column not in self.cells.columns:
            return self
        has = self.cells[column].notna()
        if has.all():
            return self
        if not has.any():
            return self  # metric_column explains that no row has it
        targets = self.cells.loc[has, ["target_task", "target_language"]].drop_duplicates()
        keep = ["target_task", "target_language"]

        def within(frame: pd.DataFrame | None) -> pd.DataFrame | None:
            if frame is None:
                return None
            return frame.merge(targets, on=keep, how="inner")

        logger.info("%s: %s is reported by %d target cell(s)", self.where, metric, len(targets))
        return replace(
            self,
            cells=self.cells.loc[has].reset_index(drop=True),
            seeds=within(self.seeds),
            items=within(self.items),
        )

    def with_families(self, families: Mapping[str, str]) -> ResultsTable:
        """Return the table with the family of the named models replaced."""
        known = sorted(self.cells["model"].unique())
        for name in families:
            if name not in known:
                raise UserError(
                    "--family",
                    f"unknown model {name!r}{did_you_mean(name, known)}",
                    f"name one of: {', '.join(known)}",
                )
        cells = self.cells.copy()
        cells["model_family"] = (
            cells["model"].map(lambda m: families.get(m)).fillna(cells["model_family"])
        )
        return replace(self, cells=cells)


def _describe(row: pd.Series) -> str:
    return (
        f"model {row['model']}, {row['source_task']}:{row['source_language']} → "
        f"{row['target_task']}:{row['target_language']}"
    )


def _line(index: object) -> int:
    """Line of a row in its CSV file (header on line 1)."""
    return int(index) + 2


def _require(frame: pd.DataFrame, where: str, columns: tuple[str, ...], schema: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            where,
            f"missing column(s) {', '.join(missing)} for the {schema} schema",
            "add them (see the README's results-table formats)",
        )


def _numeric(frame: pd.DataFrame, column: str, where: str, allow_blank: bool) -> pd.Series:
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype(str)
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.astype(float)
        blank = values.isna()
        bad = ~blank & ~np.isfinite(values)
    else:
        text = raw.astype("string").str.strip()
        blank = text.isna() | text.isin(_MISSING_TEXT)
        values = pd.to_numeric(text.where(~blank), errors="coerce").astype(float)
        bad = ~blank & (values.isna() | ~np.isfinite(values))
    if bad.any():
        first = bad.idxmax()
        raise UserError(
            where,
            f"column {column!r} has {int(bad.sum())} non-numeric value(s), first "
            f"{str(raw[first])!r} on line {_line(first)}",
            "write plain numbers (proportions for scores, percentage points for deltas)",
        )
    if not allow_blank and blank.any():
        first = blank.idxmax()
        raise UserError(
            where,
            f"column {column!r} is empty on line {_line(first)} ({int(blank.sum())} row(s))",
            "fill in the value or remove the row",
        )
    values = values.where(~blank)
    if column in _INTEGER_COLUMNS and (values.dropna() % 1 == 0).all():
        return values.astype("Int64")
    return values


def _keys(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    keys = pd.DataFrame(index=frame.index)
    for name, column in PAPER_KEYS.items():
        text = frame[column].astype("string").str.strip()
        blank = text.isna() | (text == "")
        if blank.any():
            raise UserError(
                where,
                f"column {column!r} is empty on line {_line(blank.idxmax())}",
                "every row needs a model, source task/language and target task/language",
            )
        keys[name] = text.astype(str)
    return keys


def _regime(source_task: str, source_language: str, target_task: str, target_language: str) -> str:
    if is_mixture_label(source_task):  # a mixture: the closest regime of its parts
        try:
            source = Source.parse(source_task)
        except ValueError as error:
            raise UserError("fine_tuned_dataset", str(error), "write a mixture's label") from None
        return source_regime(source, Cell(target_task, target_language)).value
    return regime_of(source_task, source_language, target_task, target_language).value


def _derive_regimes(frame: pd.DataFrame, keys: pd.DataFrame, where: str) -> pd.Series:
    derived = pd.Series(
        [_regime(*row) for row in keys[list(CELL_KEYS[1:])].itertuples(index=False)],
        index=keys.index,
        dtype=str,
    )
    if "regime" not in frame.columns:
        return derived
    given = frame["regime"].astype("string").str.strip().str.upper().fillna("")
    unknown = (given != "") & ~given.isin(REGIMES)
    if unknown.any():
        first = unknown.idxmax()
        raise UserError(
            where,
            f"unknown regime {given[first]!r} on line {_line(first)}"
            f"{did_you_mean(str(given[first]), REGIMES)}",
            f"use one of {', '.join(REGIMES)} or leave the column empty (it is derived)",
        )
    mismatch = (given != "") & (given != derived)
    if mismatch.any():
        first = mismatch.idxmax()
        raise UserError(
            where,
            f"line {_line(first)} says regime {given[first]} but its source and target "
            f"({_describe(keys.loc[first])}) make it {derived[first]}",
            "correct the keys or the regime (the regime is derived from the keys)",
        )
    return derived


def _reject_duplicates(keys: pd.DataFrame, where: str, columns: list[str]) -> None:
    duplicated = keys.duplicated(columns, keep=False)
    if duplicated.any():
        rows = keys.index[duplicated]
        first = keys.loc[rows[0], columns]
        same = rows[(keys.loc[rows, columns] == first).all(axis=1)]
        raise UserError(
            where,
            f"lines {_line(same[0])} and {_line(same[1])} repeat the key "
            f"({', '.join(columns)}) = ({', '.join(map(str, first))}); "
            f"{int(duplicated.sum())} row(s) are duplicated",
            "keep one row per key",
        )


def _sizes(frame: pd.DataFrame, keys: pd.DataFrame, where: str) -> pd.Series:
    raw = frame["model_size"]
    parsed = pd.Series([parse_size_b(v) for v in raw], index=frame.index, dtype=float)
    if parsed.isna().any():
        first = parsed.isna().idxmax()
        raise UserError(
            where,
            f"model_size {str(raw[first])!r} on line {_line(first)} is not a size",
            "write billions of parameters as a number (1.5) or text like '1.5B' or '135M'",
        )
    per_model = parsed.groupby(keys["model"]).nunique()
    if (per_model > 1).any():
        model = per_model.index[per_model > 1][0]
        raise UserError(
            where,
            f"model {model!r} has several model_size values",
            "give each model one size",
        )
    return parsed


def _families(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.Series:
    from_name = keys["model"].map(family_of)
    if "model_family" not in frame.columns:
        return from_name
    given = frame["model_family"].astype("string").str.strip()
    return given.where(~(given.isna() | (given == "")), from_name).astype(str)


def table_from_frame(
    frame: pd.DataFrame,
    where: str,
    items: pd.DataFrame | None = None,
    sweeps: pd.DataFrame | None = None,
) -> ResultsTable:
    """Return the validated `ResultsTable` of a raw table in either schema (``sweeps``: the
    study's mixtures.csv, validated by `mixture_scaling.sweeps_from_frame`)."""
    if frame.empty:
        raise UserError(where, "the table has no rows", "point at a results table with data")
    per_seed = "seed" in frame.columns
    schema = "per_seed" if per_seed else "paper"
    required = (*PAPER_COLUMNS[:6], *(("seed", *SCORES) if per_seed else ()))
    _require(frame, where, required, schema.replace("_", "-"))
    keys = _keys(frame, where)
    numeric_columns = (("seed", *SCORES) if per_seed else _PAPER_NUMERIC) + _EXTRA_NUMERIC
    if per_seed:  # further metrics: blank for the targets that lack them
        numeric_columns += tuple(
            c for m in further_metrics(frame.columns) for c in metric_columns(m)
        )
    numbers = {
        c: _numeric(frame, c, where, allow_blank=c not in ("seed", *SCORES))
        for c in numeric_columns
        if c in frame.columns
    }
    if per_seed and numbers["seed"].dtype != "Int64":
        first = (numbers["seed"] % 1 != 0).idxmax()
        raise UserError(
            where,
            f"seed {frame['seed'][first]!r} on line {_line(first)} is not an integer",
            "write whole-number seeds",
        )
    keys["regime"] = _derive_regimes(frame, keys, where)
    identity = keys.assign(**{c: frame[c] for c in row_keys(frame.columns) if c in frame})
    if per_seed:
        identity["seed"] = numbers["seed"]
        _reject_duplicates(identity, where, [*row_keys(frame.columns), "seed"])
    else:
        _reject_duplicates(identity, where, row_keys(frame.columns))
    keys["size_b"] = _sizes(frame, keys, where)
    keys["size_bucket"] = keys["size_b"].map(size_bucket)
    keys["model_family"] = _families(frame, keys)
    rest = frame.drop(
        columns=[*PAPER_KEYS.values(), "regime", "model_family", *numbers], errors="ignore"
    )
    rows = pd.concat([keys, rest, pd.DataFrame(numbers, index=frame.index)], axis=1)
    rows = rows[[*keys.columns, *(c for c in frame.columns if c in rows and c not in keys)]]
    if per_seed:
        rows["seed"] = rows["seed"].astype(int)
        cells = aggregate_seeds(rows)
    else:
        cells = rows.reset_index(drop=True)
    first = [c for c in _CELL_ORDER if c in cells.columns]
    cells = cells[first + [c for c in cells.columns if c not in first]]
    holes = check_grid(cells, where)
    return ResultsTable(
        cells=cells,
        where=where,
        schema=schema,
        seeds=rows if per_seed else None,
        items=items,
        holes=holes,
        sweeps=sweeps,
    )
