"""The paper's figures as matplotlib Figures (Agg, no pyplot state); saving is the caller's job."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from transferlab.analysis.result import AnalysisResult

_DIVERGING = "RdBu"  # red = harm, blue = gain


def roles_figure(roles: pd.DataFrame, label: str, title: str, metric: str) -> Figure:
    """Return the donor (x) vs recipient (y) scatter with SE bars and the diagonal."""
    figure = Figure(figsize=(5.5, 5), layout="constrained")
    ax = figure.add_subplot()
    x, y = roles["donor"].to_numpy(float), roles["recipient"].to_numpy(float)
    ax.errorbar(
        x,
        y,
        xerr=roles["donor_se"].fillna(0),
        yerr=roles["recipient_se"].fillna(0),
        fmt="o",
        color="#1f4e79",
        ecolor="#9db4cc",
        capsize=2,
    )
    for name, xi, yi in zip(roles[label], x, y, strict=True):
        ax.annotate(str(name), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=9)
    finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
    low, high = (finite.min(), finite.max()) if finite.size else (-1.0, 1.0)
    pad = 0.1 * (high - low) or 0.5
    ax.plot([low - pad, high + pad], [low - pad, high + pad], ls="--", color="grey", lw=1)
    ax.axhline(0, color="lightgrey", lw=0.8)
    ax.axvline(0, color="lightgrey", lw=0.8)
    ax.set_xlabel(f"donor score (mean {metric}, pp)")
    ax.set_ylabel(f"recipient score (mean {metric}, pp)")
    ax.set_title(title)
    return figure


def heatmap_figure(matrix: pd.DataFrame, title: str, metric: str) -> Figure:
    """Return a source × target heatmap, diverging colours centred at 0, NaN (diagonal) masked."""
    size = max(4.0, 0.45 * len(matrix.columns) + 2.5)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    ax = figure.add_subplot()
    values = np.ma.masked_invalid(matrix.to_numpy(float))
    limit = float(np.abs(values).max()) if values.count() else 1.0
    limit = limit or 1.0
    cmap = colormaps[_DIVERGING].with_extremes(bad="#d9d9d9")
    image = ax.imshow(values, cmap=cmap, norm=TwoSlopeNorm(0.0, -limit, limit))
    ax.set_xticks(
        range(len(matrix.columns)), [str(c) for c in matrix.columns], rotation=45, ha="right"
    )
    ax.set_yticks(range(len(matrix.index)), [str(i) for i in matrix.index])
    ax.set_xlabel(f"target ({matrix.columns.name or 'recipient'})")
    ax.set_ylabel(f"source ({matrix.index.name or 'donor'})")
    if len(matrix.columns) <= 12:
        for (i, j), value in np.ndenumerate(values.filled(np.nan)):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8)
    figure.colorbar(image, ax=ax, label=f"mean {metric} (pp)")
    ax.set_title(title)
    return figure


def onoff_figure(onoff: pd.DataFrame, models: pd.DataFrame, metric: str) -> Figure:
    """Return on-task (x) vs off-task (y) mean Δ per (model, source), one panel per family."""
    families = sorted(models["model_family"].unique())
    columns = min(3, len(families))
    rows = math.ceil(len(families) / columns)
    figure = Figure(figsize=(4.5 * columns, 4.2 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    family_of = dict(zip(models["model"], models["model_family"], strict=True))
    size_of = dict(zip(models["model"], models["size_b"], strict=True))
    for ax, family in zip(axes.flat, families, strict=False):
        panel = onoff[onoff["model"].map(family_of) == family]
        for model in sorted(panel["model"].unique(), key=lambda m: size_of[m]):
            points = panel[panel["model"] == model]
            ax.scatter(points["on_task"], points["off_task"], s=18, alpha=0.8, label=model)
        ax.axhline(0, color="lightgrey", lw=0.8)
        ax.axvline(0, color="lightgrey", lw=0.8)
        ax.set_title(family)
        ax.set_xlabel(f"on-task: mean MT-CL {metric} (pp)")
        ax.set_ylabel(f"off-task: mean cross-task {metric} (pp)")
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(families) :]:
        ax.set_visible(False)
    return figure


def analysis_figures(result: AnalysisResult) -> dict[str, Figure]:
    """Return the paper's figures by name (a figure whose table is empty is left out)."""
    tables, metric = result.tables, result.metric
    figures: dict[str, Figure] = {}
    for name, label, title in (
        ("roles_language", "language", "Languages as donors and recipients (MT-CL)"),
        ("roles_task", "task", "Tasks as donors and recipients (CT-ML)"),
    ):
        if tables[name]["donor"].notna().any():
            figures[name] = roles_figure(tables[name], label, title, metric)
    for name, title in (
        ("matrix_language", "Language → language, matched task (MT-CL)"),
        ("matrix_task", "Task → task, matched language (CT-ML)"),
    ):
        if tables[name].notna().to_numpy().any():
            figures[name] = heatmap_figure(tables[name], title, metric)
    if tables["onoff_task"][["on_task", "off_task"]].notna().all(axis=1).any():
        figures["onoff_task"] = onoff_figure(tables["onoff_task"], tables["models"], metric)
    curves = tables.get("mixture_scaling")
    if curves is not None and curves["on_task"].any():
        from transferlab.analysis.mixture_figures import scaling_figure

        figures["mixture_scaling"] = scaling_figure(curves, tables["mixture_seen_unseen"], metric)
    return figures


def png_bytes(figure: Figure, dpi: int = 130) -> bytes:
    """Return the figure rendered as PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
