"""Alignment tables → curves, matrices, changes after fine-tuning, and their relation to transfer.

Pure functions over the table `transferlab align` writes (``alignment.csv``) and the study's
results; nothing here reads or writes files. The question they answer is xling-eval's: does
how well two languages' representations align predict how much one transfers to the other?
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

KEYS = ["source_language", "target_language", "layer", "method", "retrieval"]
SCORES = ["p1", "p5", "p10", "mrr"]


def by_layer(alignment: pd.DataFrame, metric: str = "mrr") -> pd.DataFrame:
    """Return the mean ``metric`` over language pairs per (model_state, method, retrieval, layer)."""
    group = ["model_state", "method", "retrieval", "layer"]
    return (
        alignment.groupby(group, sort=True)[metric]
        .agg(["mean", "min", "max", "size"])
        .rename(columns={"size": "n_pairs"})
        .reset_index()
    )


def pair_matrix(
    alignment: pd.DataFrame,
    state: str,
    layer: int,
    method: str,
    retrieval: str,
    metric: str = "mrr",
) -> pd.DataFrame:
    """Return ``metric`` as a source × target language matrix (diagonal empty)."""
    rows = alignment[
        (alignment["model_state"] == state)
        & (alignment["layer"] == layer)
        & (alignment["method"] == method)
        & (alignment["retrieval"] == retrieval)
    ]
    return rows.pivot(index="source_language", columns="target_language", values=metric)


def change_after_finetuning(alignment: pd.DataFrame, base: str = "base") -> pd.DataFrame:
    """Return each adapter state's scores beside the base model's and their difference (× 100).

    One row per (model_state ≠ base, pair, layer, method, retrieval): ``mrr``, ``mrr_base``,
    ``delta_mrr`` (points of MRR × 100) and the same for P@1.
    """
    base_rows = alignment[alignment["model_state"] == base].set_index(KEYS)[["mrr", "p1"]]
    tuned = alignment[alignment["model_state"] != base]
    joined = tuned.join(base_rows, on=KEYS, rsuffix="_base")
    for metric in ("mrr", "p1"):
        joined[f"delta_{metric}"] = 100 * (joined[metric] - joined[f"{metric}_base"])
    columns = ["model_state", *KEYS, "mrr", "mrr_base", "delta_mrr", "p1", "p1_base", "delta_p1"]
    return joined[columns].reset_index(drop=True)


def correlate(x: pd.Series, y: pd.Series, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Return Pearson r and Spearman ρ of paired values with p-values and 95 % bootstrap CIs.

    The CIs resample the pairs with replacement (percentile intervals, ``n_boot`` draws).
    """
    values = pd.DataFrame({"x": x.to_numpy(), "y": y.to_numpy()}).dropna()
    n = len(values)
    out: dict[str, float] = {"n": n}
    if n < 3 or values["x"].nunique() == 1 or values["y"].nunique() == 1:  # undefined
        return out | dict.fromkeys(
            ["pearson_r", "pearson_p", "pearson_low", "pearson_high",
             "spearman_rho", "spearman_p", "spearman_low", "spearman_high"], float("nan"))  # fmt: skip
    a, b = values["x"].to_numpy(), values["y"].to_numpy()
    pearson, spearman = stats.pearsonr(a, b), stats.spearmanr(a, b)
    rng = np.random.default_rng(seed)
    draws = {"pearson": [], "spearman": []}
    for _ in range(n_boot):
        pick = rng.integers(0, n, n)
        if np.ptp(a[pick]) == 0 or np.ptp(b[pick]) == 0:
            continue  # a constant resample has no correlation
        draws["pearson"].append(stats.pearsonr(a[pick], b[pick]).statistic)
        draws["spearman"].append(stats.spearmanr(a[pick], b[pick]).statistic)
    out |= {"pearson_r": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
            "spearman_rho": float(spearman.statistic), "spearman_p": float(spearman.pvalue)}  # fmt: skip
    for name, found in draws.items():
        low, high = np.percentile(found, [2.5, 97.5]) if found else (np.nan, np.nan)
        out |= {f"{name}_low": float(low), f"{name}_high": float(high)}
    return out


def alignment_vs_transfer(
    pair_alignment: pd.DataFrame,
    pair_transfer: pd.DataFrame,
    value: str = "mrr",
    delta: str = "delta",
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Return, per (layer, method, retrieval), the correlation of alignment with transfer.

    ``pair_alignment`` has ``source_language, target_language, layer, method, retrieval`` and
    ``value``; ``pair_transfer`` one measured transfer ``delta`` per ordered language pair (e.g.
    the mean MT-CL Δ in pp). Pairs present in both are correlated.
    """
    pairs = ["source_language", "target_language"]
    transfer = pair_transfer.groupby(pairs)[delta].mean().rename("transfer")
    joined = pair_alignment.join(transfer, on=pairs, how="inner")
    rows = []
    for (layer, method, retrieval), group in joined.groupby(["layer", "method", "retrieval"]):
        stats_ = correlate(group[value], group["transfer"], n_boot, seed)
        rows.append({"layer": layer, "method": method, "retrieval": retrieval} | stats_)
    return pd.DataFrame(rows)
