"""Consistency index: do models (families, sizes) rank a source's recipients alike?

For each source cell within a regime, the Kendall τ-b between every pair of units over the
recipients they share (at least 3), averaged over pairs; summarised per regime by the median and
IQR over sources (PROTOCOL.md §1). The units are models, families (Δ averaged over the sizes of
a family), exact model sizes (Δ averaged over the families of a size, as the reference study's
released analysis does) and the S/M/L size buckets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferlab.grid import Regime

MIN_SHARED = 3
# the recipient of a source in each regime (MT-ML has a single recipient: its own cell)
RECIPIENTS: dict[str, list[str]] = {
    Regime.MT_CL.value: ["target_language"],
    Regime.CT_ML.value: ["target_task"],
    Regime.CT_CL.value: ["target_task", "target_language"],
}
# grouping name -> the column of `cells` whose values are the units compared
GROUPINGS: dict[str, str] = {
    "model": "model",
    "family": "model_family",
    "size": "size_b",
    "size_bucket": "size_bucket",
}


def kendall_tau_b_matrix(values: np.ndarray) -> np.ndarray:
    """Return the units × units Kendall τ-b over shared recipients (NaN below 3 or undefined).

    `values` is units × recipients with NaN where a unit lacks a recipient. Pair signs are
    compared as vectors: with S_u[i, j] = sign(x_u[i] − x_u[j]), concordant minus discordant
    pairs is ½ Σ S_u S_v and the pairs not tied in u among the shared ones ½ Σ |S_u| 1[v has i, j],
    which is τ-b with ties handled as scipy.stats.kendalltau does.
    """
    present = ~np.isnan(values)
    n_units = values.shape[0]
    signs = np.nan_to_num(np.sign(values[:, :, None] - values[:, None, :])).reshape(n_units, -1)
    pairs = (present[:, :, None] & present[:, None, :]).reshape(n_units, -1).astype(float)
    untied = np.abs(signs)
    numerator = signs @ signs.T
    untied_u = untied @ pairs.T  # [u, v]: shared pairs not tied in u
    shared = present.astype(float) @ present.T.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = numerator / np.sqrt(untied_u * untied_u.T)
    tau[(shared < MIN_SHARED) | ~np.isfinite(tau)] = np.nan
    return tau


def source_consistency(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return `regime, grouping, source_task, source_language, ci, n_pairs` per source cell.

    A family or size unit's Δ is the mean over its models; `ci` is the mean τ-b over unit pairs.
    Groupings with fewer than two units (one family, one size) give no rows.
    """
    rows = []
    for regime, recipient in RECIPIENTS.items():
        subset = cells[cells["regime"] == regime]
        if subset.empty:
            continue
        recipient_key = subset[recipient].astype(str).agg(":".join, axis=1)
        for grouping, unit in GROUPINGS.items():
            if subset[unit].nunique() < 2:
                continue
            means = subset.groupby(["source_task", "source_language", subset[unit], recipient_key])[
                metric
            ].mean()
            wide = means.unstack(-1)
            for (task, language), block in wide.groupby(level=[0, 1], sort=True):
                tau = kendall_tau_b_matrix(block.to_numpy(float))
                upper = tau[np.triu_indices_from(tau, k=1)]
                valid = upper[np.isfinite(upper)]
                if valid.size:
                    rows.append(
                        {
                            "regime": regime,
                            "grouping": grouping,
                            "source_task": task,
                            "source_language": language,
                            "ci": float(valid.mean()),
                            "n_pairs": int(valid.size),
                        }
                    )
    columns = ["regime", "grouping", "source_task", "source_language", "ci", "n_pairs"]
    return pd.DataFrame(rows, columns=columns)


def consistency_summary(per_source: pd.DataFrame) -> pd.DataFrame:
    """Return `regime, grouping, median, q1, q3, n_sources` for every regime and grouping."""
    rows = []
    for regime in RECIPIENTS:
        for grouping in GROUPINGS:
            ci = per_source.loc[
                (per_source["regime"] == regime) & (per_source["grouping"] == grouping), "ci"
            ]
            q1, median, q3 = np.percentile(ci, [25, 50, 75]) if len(ci) else (np.nan,) * 3
            rows.append(
                {
                    "regime": regime,
                    "grouping": grouping,
                    "median": float(median),
                    "q1": float(q1),
                    "q3": float(q3),
                    "n_sources": len(ci),
                }
            )
    return pd.DataFrame(rows)
