"""The reference study's training ablations: LoRA rank, and LoRA against full fine-tuning.

A results table whose rows differ in how the source was trained carries the variant columns
``method`` (``lora`` | ``full``) and ``lora_r`` (empty for full). Each row is one (model, source
cell, target cell, variant) with seeds aggregated. Everything here is computed on transfer cells
(all regimes but MT-ML, as the regime summary's ``transfer`` row) and pairs cells by their
(model, source, target) keys, so a variant is only ever compared on the cells both have.

The reference rank is r = 32, the reference study's recipe; a table without it is compared with
its smallest rank, and every table says which rank it used (``reference_rank``) and why
(``reference_note``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferlab.analysis.columns import CELL_KEYS, VARIANT_KEYS
from transferlab.analysis.summaries import is_harm
from transferlab.grid import Regime

REFERENCE_RANK = 32
PERCENTILES = (10, 25, 75, 90)
RANK_COLUMNS = [
    "lora_r",
    "n",
    "mean",
    "median",
    *(f"p{q}" for q in PERCENTILES),
    "pct_positive",
    "pct_harm",
    "n_paired",
    "pearson_with_reference",
    "spearman_with_reference",
    "reference_rank",
    "reference_note",
]
METHOD_COLUMNS = [
    "lora_r",
    "n_paired",
    "mean_lora",
    "mean_full",
    "mean_difference",
    "median_difference",
    "pearson",
    "spearman",
    "pct_sign_agreement",
]


def variant_columns(cells: pd.DataFrame) -> list[str]:
    """Return the variant columns the table has (``method``, ``lora_r``), in that order."""
    return [c for c in VARIANT_KEYS if c in cells.columns]


def varies_training(cells: pd.DataFrame) -> bool:
    """Return whether the table's rows differ in method or LoRA rank."""
    return any(cells[c].nunique(dropna=False) > 1 for c in variant_columns(cells))


def _methods(cells: pd.DataFrame) -> pd.Series:
    if "method" in cells.columns:
        return cells["method"].fillna("lora").astype(str)
    return pd.Series("lora", index=cells.index)


def _ranks(cells: pd.DataFrame) -> pd.Series:
    if "lora_r" not in cells.columns:
        return pd.Series(np.nan, index=cells.index)
    return pd.to_numeric(cells["lora_r"], errors="coerce")


def reference_rank(cells: pd.DataFrame, rank: int | None = None) -> tuple[int | None, str]:
    """Return the rank LoRA variants are compared with, and a note saying how it was chosen."""
    ranks = sorted(int(r) for r in _ranks(cells)[_methods(cells) == "lora"].dropna().unique())
    if rank is not None and rank in ranks:
        return rank, f"r = {rank}, as asked"
    asked = f"r = {rank} was asked for but the table has no rows with it; " if rank else ""
    if not ranks:
        return None, f"{asked}no LoRA rank in the table"
    if REFERENCE_RANK in ranks:
        return REFERENCE_RANK, f"{asked}r = {REFERENCE_RANK}, the reference study's rank"
    return ranks[0], (
        f"{asked}r = {ranks[0]}: the table has no r = {REFERENCE_RANK}, so its smallest rank "
        f"is the reference"
    )


def reference_rows(cells: pd.DataFrame, rank: int | None = None) -> pd.Series:
    """Return a mask of the rows of the reference variant: LoRA at the reference rank.

    A table that does not vary the training is all reference; one without LoRA rows keeps its
    full fine-tunes. The regime, role and variance analyses describe these rows only, so a
    study with ablations reports the same main tables as one without them.
    """
    if not varies_training(cells):
        return pd.Series(True, index=cells.index)
    methods = _methods(cells)
    if not (methods == "lora").any():
        return pd.Series(True, index=cells.index)
    chosen, _ = reference_rank(cells, rank)
    mask = methods == "lora"
    if chosen is not None:
        mask &= _ranks(cells) == chosen
    return mask


def reference_items(items: pd.DataFrame | None, reference: pd.DataFrame) -> pd.DataFrame | None:
    """Return the per-item rows of the base model and of the reference variant's cells.

    Items of a table that varies the training need the variant columns to be told apart;
    without them there are no items to use (None).
    """
    variants = variant_columns(reference)
    if items is None or not variants:
        return items
    if any(c not in items.columns for c in variants):
        return None
    base = items["source_task"] == ""
    keep = base.copy()
    for values in reference[variants].drop_duplicates().itertuples(index=False):
        match = ~base
        for column, value in zip(variants, values, strict=True):
            given = (
                pd.to_numeric(items[column], errors="coerce")
                if column == "lora_r"
                else items[column]
            )
            match &= given.isna() if pd.isna(value) else given == value
        keep |= match
    return items[keep]


def _transfer(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[cells["regime"] != Regime.MT_ML.value]


def _paired(left: pd.DataFrame, right: pd.DataFrame, metric: str) -> pd.DataFrame:
    keys = list(CELL_KEYS)
    return left[[*keys, metric]].merge(
        right[[*keys, metric]], on=keys, suffixes=("_a", "_b"), validate="one_to_one"
    )


def _correlations(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """Return (Pearson, Spearman) of two paired series; NaN below 3 pairs or with no spread."""
    if len(a) < 3 or a.nunique() < 2 or b.nunique() < 2:
        return np.nan, np.nan
    return float(a.corr(b)), float(a.corr(b, method="spearman"))


def rank_table(cells: pd.DataFrame, metric: str, rank: int | None = None) -> pd.DataFrame:
    """Return per LoRA rank the transfer Δ's n, mean, median, percentiles, % positive, % harm
    (Δ ≤ −1 pp) and its per-cell Pearson / Spearman correlation with the reference rank."""
    transfer = _transfer(cells)
    lora = transfer[_methods(transfer) == "lora"]
    ranks = _ranks(lora)
    chosen, note = reference_rank(cells, rank)
    rows = []
    reference = lora[ranks == chosen] if chosen is not None else lora.iloc[:0]
    for r in sorted(int(v) for v in ranks.dropna().unique()):
        delta = lora.loc[ranks == r, metric].astype(float)
        paired = _paired(lora[ranks == r], reference, metric)
        pearson, spearman = _correlations(paired[f"{metric}_a"], paired[f"{metric}_b"])
        rows.append(
            {
                "lora_r": r,
                "n": len(delta),
                "mean": float(delta.mean()),
                "median": float(delta.median()),
                **{f"p{q}": float(np.percentile(delta, q)) for q in PERCENTILES},
                "pct_positive": 100.0 * float((delta > 0).mean()),
                "pct_harm": 100.0 * float(is_harm(delta).mean()),
                "n_paired": len(paired),
                "pearson_with_reference": pearson,
                "spearman_with_reference": spearman,
                "reference_rank": chosen,
                "reference_note": note,
            }
        )
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


def method_table(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return, per LoRA rank, LoRA against full fine-tuning on the transfer cells both have:
    means, mean and median difference (full − LoRA, pp), Pearson / Spearman correlation and
    the % of cells where both Δ have the same sign (a zero agrees only with a zero)."""
    transfer = _transfer(cells)
    methods = _methods(transfer)
    full = transfer[methods == "full"]
    lora = transfer[methods == "lora"]
    ranks = _ranks(lora)
    rows = []
    if full.empty or lora.empty:
        return pd.DataFrame(rows, columns=METHOD_COLUMNS)
    groups = [(None, lora)] if ranks.isna().all() else []
    groups += [(int(r), lora[ranks == r]) for r in sorted(ranks.dropna().unique())]
    for r, rows_r in groups:
        paired = _paired(rows_r, full, metric)
        a, b = paired[f"{metric}_a"].astype(float), paired[f"{metric}_b"].astype(float)
        difference = b - a
        pearson, spearman = _correlations(a, b)
        rows.append(
            {
                "lora_r": r,
                "n_paired": len(paired),
                "mean_lora": float(a.mean()) if len(a) else np.nan,
                "mean_full": float(b.mean()) if len(b) else np.nan,
                "mean_difference": float(difference.mean()) if len(a) else np.nan,
                "median_difference": float(difference.median()) if len(a) else np.nan,
                "pearson": pearson,
                "spearman": spearman,
                "pct_sign_agreement": (
                    100.0 * float((np.sign(a) == np.sign(b)).mean()) if len(a) else np.nan
                ),
            }
        )
    return pd.DataFrame(rows, columns=METHOD_COLUMNS)


def ablation_tables(
    cells: pd.DataFrame, metric: str, rank: int | None = None
) -> dict[str, pd.DataFrame]:
    """Return ``ablation_rank`` (when ranks vary) and ``ablation_method`` (when the table has
    LoRA and full rows); nothing for a table that does not vary its training."""
    if not varies_training(cells):
        return {}
    tables = {}
    lora = cells[_methods(cells) == "lora"]
    if _ranks(lora).nunique() > 1:
        tables["ablation_rank"] = rank_table(cells, metric, rank)
    if _methods(cells).nunique() > 1:
        tables["ablation_method"] = method_table(cells, metric)
    return tables
