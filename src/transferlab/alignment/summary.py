"""The tables and figures `transferlab align` writes beside alignment.csv (pure: no file I/O).

- ``alignment_by_layer``: the mean score over language pairs per state, method, retrieval, layer;
- ``alignment_change``: each adapter state against the base model (when adapters were given);
- ``alignment_distance``: the base model's alignment per pair against URIEL distances;
- ``alignment_transfer``: the base model's alignment per pair against the measured mean MT-CL Δ
  of the same ordered pair in a results table (when one is given): xling-eval's question, whether
  alignment predicts transfer, asked of this model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from transferlab.alignment.relate import (
    alignment_vs_transfer,
    by_layer,
    change_after_finetuning,
    correlate,
    pair_matrix,
)
from transferlab.grid import BASE


def _symmetric(distances: pd.DataFrame) -> pd.DataFrame:
    swapped = distances.rename(columns={"language_a": "language_b", "language_b": "language_a"})
    both = pd.concat([distances, swapped], ignore_index=True)
    return both.rename(columns={"language_a": "source_language", "language_b": "target_language"})


def alignment_vs_distance(
    alignment: pd.DataFrame, distances: pd.DataFrame, metric: str = "mrr", n_boot: int = 1000
) -> pd.DataFrame:
    """Return per (layer, method, retrieval, feature set) the correlation of alignment and distance."""
    base = alignment[alignment["model_state"] == BASE]
    feature_sets = [c for c in distances.columns if c not in ("language_a", "language_b")]
    joined = base.merge(_symmetric(distances), on=["source_language", "target_language"])
    rows = []
    for (layer, method, retrieval), group in joined.groupby(["layer", "method", "retrieval"]):
        for feature_set in feature_sets:
            found = correlate(group[metric], group[feature_set], n_boot)
            rows.append({"layer": layer, "method": method, "retrieval": retrieval,
                         "feature_set": feature_set} | found)  # fmt: skip
    return pd.DataFrame(rows)


def mtcl_pair_transfer(cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return the mean MT-CL Δ (``delta``) per ordered language pair of a results table."""
    rows = cells[cells["regime"] == "MT-CL"]
    pairs = rows.groupby(["source_language", "target_language"])[metric].mean()
    return pairs.rename("delta").reset_index()


def summarize(
    alignment: pd.DataFrame,
    distances: pd.DataFrame | None = None,
    pair_transfer: pd.DataFrame | None = None,
    metric: str = "mrr",
    n_boot: int = 1000,
) -> dict[str, pd.DataFrame]:
    """Return the summary tables by file stem (see the module docstring)."""
    tables = {"alignment_by_layer": by_layer(alignment, metric)}
    if (alignment["model_state"] != BASE).any():
        tables["alignment_change"] = change_after_finetuning(alignment, BASE)
    if distances is not None and len(distances):
        tables["alignment_distance"] = alignment_vs_distance(alignment, distances, metric, n_boot)
    if pair_transfer is not None and len(pair_transfer):
        base = alignment[alignment["model_state"] == BASE]
        tables["alignment_transfer"] = alignment_vs_transfer(base, pair_transfer, metric,
                                                             n_boot=n_boot)  # fmt: skip
    return tables


def layer_figure(curves: pd.DataFrame, metric: str = "mrr") -> Figure:
    """Return the mean ``metric`` over pairs against the layer, one panel per method."""
    methods = list(dict.fromkeys(curves["method"]))
    figure = Figure(figsize=(4.2 * len(methods), 3.6), layout="constrained")
    axes = figure.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods, strict=True):
        for (state, retrieval), group in curves[curves["method"] == method].groupby(
            ["model_state", "retrieval"]
        ):
            style = "-" if retrieval == "cosine" else "--"
            ax.plot(
                group["layer"], group["mean"], style, marker=".", label=f"{state} · {retrieval}"
            )
        ax.set_title(f"method {method}")
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel(f"mean {metric.upper()} over pairs")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return figure


def pair_figure(alignment: pd.DataFrame, metric: str = "mrr") -> Figure:
    """Return the base model's source × target ``metric`` at its best layer (PROC, cosine if run)."""
    base = alignment[alignment["model_state"] == BASE]
    method = "proc" if (base["method"] == "proc").any() else base["method"].iloc[0]
    retrieval = "cosine" if (base["retrieval"] == "cosine").any() else base["retrieval"].iloc[0]
    chosen = base[(base["method"] == method) & (base["retrieval"] == retrieval)]
    layer = int(chosen.groupby("layer")[metric].mean().idxmax())
    matrix = pair_matrix(alignment, BASE, layer, method, retrieval, metric)
    languages = sorted(set(matrix.index) | set(matrix.columns))
    matrix = matrix.reindex(index=languages, columns=languages)
    size = max(4.0, 0.45 * len(languages) + 2.5)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(matrix.to_numpy(float)), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(languages)), languages)
    ax.set_yticks(range(len(languages)), languages)
    ax.set_xlabel("target language")
    ax.set_ylabel("source language")
    if len(languages) <= 12:
        for (i, j), value in np.ndenumerate(matrix.to_numpy(float)):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w")
    figure.colorbar(image, ax=ax, label=metric.upper())
    ax.set_title(f"base model, layer {layer}, {method} + {retrieval}")
    return figure
