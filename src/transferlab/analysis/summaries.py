"""Regime summary, donor/recipient roles, on/off-task, harm breakdown and the mean-Δ matrices.

Every function takes the cells of a `ResultsTable` and the name of the Δ column (pp) and returns
a table; definitions follow PROTOCOL.md §1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferlab.grid import REGIMES, Regime

HARM_PP = -1.0
# Δ from proportions carries float rounding (100 * (0.25 - 0.26) is -1.0000000000000009)
_TOLERANCE = 1e-9
TRANSFER = "transfer"
CROSS_TASK = (Regime.CT_ML.value, Regime.CT_CL.value)
SUMMARY_COLUMNS = ["n", "mean", "median", "pct_positive", "pct_harm"]


def is_harm(delta: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """Return whether each Δ (pp) is harm: Δ ≤ −1.0 pp, up to float rounding."""
    return delta <= HARM_PP + _TOLERANCE


def summarize(delta: pd.Series) -> dict[str, float]:
    """Return n, mean, median, % positive (Δ > 0) and % harm (Δ ≤ −1 pp) of a set of Δ."""
    if delta.empty:
        return {
            "n": 0,
            "mean": np.nan,
            "median": np.nan,
            "pct_positive": np.nan,
            "pct_harm": np.nan,
        }
    return {
        "n": len(delta),
        "mean": float(delta.mean()),
        "median": float(delta.median()),
        "pct_positive": 100.0 * float((delta > 0).mean()),
        "pct_harm": 100.0 * float(is_harm(delta).mean()),
    }


def regime_subsets(cells: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return the rows of each regime and of `transfer` (every regime but MT-ML)."""
    subsets = {regime: cells[cells["regime"] == regime] for regime in REGIMES}
    subsets[TRANSFER] = cells[cells["regime"] != Regime.MT_ML.value]
    return subsets


def _adapter_bootstrap_ci(
    rows: pd.DataFrame, metric: str, rng: np.random.Generator, n_boot: int
) -> tuple[float, float]:
    """95% percentile CI of the mean Δ, resampling (model, source cell) adapters."""
    if rows.empty:
        return np.nan, np.nan
    per_adapter = rows.groupby(["model", "source_task", "source_language"])[metric].agg(
        ["sum", "count"]
    )
    weights = rng.multinomial(
        len(per_adapter), np.full(len(per_adapter), 1 / len(per_adapter)), n_boot
    )
    means = (weights @ per_adapter["sum"].to_numpy()) / (weights @ per_adapter["count"].to_numpy())
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def regime_table(
    cells: pd.DataFrame, metric: str, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Return `regime, n, mean, median, pct_positive, pct_harm, ci_low, ci_high` per regime.

    `ci_low`/`ci_high` bound the mean Δ (95% percentile bootstrap over adapters, fixed seed).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for name, subset in regime_subsets(cells).items():
        low, high = _adapter_bootstrap_ci(subset, metric, rng, n_boot)
        rows.append({"regime": name, **summarize(subset[metric]), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def _roles(rows: pd.DataFrame, metric: str, source: str, target: str, name: str) -> pd.DataFrame:
    """Per model the mean Δ keyed on source (donor) or target (recipient); mean and SE across models."""
    parts = {}
    for role, key in (("donor", source), ("recipient", target)):
        per_model = rows.groupby([key, "model"])[metric].mean().unstack("model")
        n = per_model.notna().sum(axis=1)
        parts[role] = per_model.mean(axis=1)
        parts[f"{role}_se"] = per_model.std(axis=1, ddof=1) / np.sqrt(n)
    table = pd.DataFrame(parts)
    table.index.name = name
    return table.reset_index()[[name, "donor", "donor_se", "recipient", "recipient_se"]]


def language_roles(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return `language, donor, donor_se, recipient, recipient_se` on MT-CL rows."""
    rows = cells[cells["regime"] == Regime.MT_CL.value]
    return _roles(rows, metric, "source_language", "target_language", "language")


def task_roles(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return `task, donor, donor_se, recipient, recipient_se` on CT-ML rows."""
    rows = cells[cells["regime"] == Regime.CT_ML.value]
    return _roles(rows, metric, "source_task", "target_task", "task")


def uplift_table(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return the one-row `mean, median, pct_positive, n` of every transfer cell (not MT-ML)."""
    summary = summarize(regime_subsets(cells)[TRANSFER][metric])
    return pd.DataFrame([{k: summary[k] for k in ("mean", "median", "pct_positive", "n")}])


def onoff_task(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return per (model, source) the mean MT-CL Δ, mean cross-task Δ and cross-task harm %,
    with the number of cells behind each mean (`n_on`, `n_off`)."""
    keys = ["model", "source_task", "source_language"]
    on = cells[cells["regime"] == Regime.MT_CL.value].groupby(keys)[metric].agg(["mean", "count"])
    cross = cells[cells["regime"].isin(CROSS_TASK)]
    off = cross.groupby(keys)[metric].agg(["mean", "count"])
    harm = 100.0 * is_harm(cross[metric]).groupby([cross[k] for k in keys]).mean()
    sources = cells[keys].drop_duplicates().set_index(keys).index
    table = pd.DataFrame(
        {
            "on_task": on["mean"].reindex(sources),
            "off_task": off["mean"].reindex(sources),
            "off_task_harm_pct": harm.reindex(sources),
            "n_on": on["count"].reindex(sources, fill_value=0),
            "n_off": off["count"].reindex(sources, fill_value=0),
        }
    )
    return table.reset_index().sort_values(keys, ignore_index=True)


# the reference study keeps a source's on/off profile only when enough cells stand behind it
MIN_ON, MIN_OFF = 3, 5


def onoff_family(onoff: pd.DataFrame, min_on: int = MIN_ON, min_off: int = MIN_OFF) -> pd.DataFrame:
    """Return per (model, source task) the on- and off-task means averaged over source languages.

    `onoff` is `onoff_task`'s table; a source counts when n_on ≥ `min_on` and n_off ≥ `min_off`.
    """
    kept = onoff[(onoff["n_on"] >= min_on) & (onoff["n_off"] >= min_off)]
    table = kept.groupby(["model", "source_task"], sort=True).agg(
        on_task=("on_task", "mean"),
        off_task=("off_task", "mean"),
        n_languages=("source_language", "count"),
    )
    return table.reset_index()


def onoff_task_summary(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return per source task the MT-CL (on) and cross-task (off) n, mean, % positive, % harm,
    pooled over every cell of every model and source language."""
    parts = {"on": cells[cells["regime"] == Regime.MT_CL.value]}
    parts["off"] = cells[cells["regime"].isin(CROSS_TASK)]
    rows = []
    for task in sorted(cells["source_task"].unique()):
        row: dict[str, object] = {"source_task": task}
        for side, subset in parts.items():
            summary = summarize(subset.loc[subset["source_task"] == task, metric])
            row.update(
                {f"{side}_{k}": summary[k] for k in ("n", "mean", "pct_positive", "pct_harm")}
            )
        rows.append(row)
    return pd.DataFrame(rows)


HARM_GROUPINGS = {
    "target_language": "target_language",
    "target_task": "target_task",
    "size": "size_bucket",
    "family": "model_family",
}


def harm_breakdown(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return MT-CL `grouping, group, n, mean, median, pct_positive, pct_harm` by target
    language, target task, size bucket and family."""
    rows = cells[cells["regime"] == Regime.MT_CL.value]
    out = []
    for grouping, column in HARM_GROUPINGS.items():
        for group, subset in rows.groupby(column, sort=True):
            out.append({"grouping": grouping, "group": group, **summarize(subset[metric])})
    return pd.DataFrame(out, columns=["grouping", "group", *SUMMARY_COLUMNS])


def _matrix(
    rows: pd.DataFrame, metric: str, source: str, target: str, labels: list[str]
) -> pd.DataFrame:
    matrix = rows.pivot_table(index=source, columns=target, values=metric, aggfunc="mean")
    matrix = matrix.reindex(index=labels, columns=labels).astype(float)
    matrix.columns.name = target
    return matrix


def language_matrix(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return source language × target language mean Δ on MT-CL (matched task; diagonal NaN)."""
    rows = cells[cells["regime"] == Regime.MT_CL.value]
    labels = sorted(set(cells["source_language"]) | set(cells["target_language"]))
    return _matrix(rows, metric, "source_language", "target_language", labels)


def task_matrix(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return source task × target task mean Δ on CT-ML (matched language; diagonal NaN)."""
    rows = cells[cells["regime"] == Regime.CT_ML.value]
    labels = sorted(set(cells["source_task"]) | set(cells["target_task"]))
    return _matrix(rows, metric, "source_task", "target_task", labels)
