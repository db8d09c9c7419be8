"""Figures the report adds to the analysis's: per-model transfer matrices, variance shares."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from transferlab.grid import Source, is_mixture_label

# Above this many targets the cells are too small to carry printed values.
ANNOTATE_UP_TO = 16


def cell_label(task: str, language: str) -> str:
    """Return how a (task, language) cell is written on axes and in tables."""
    return f"{task}:{language}"


def transfer_matrix(
    cells: pd.DataFrame, metric: str, model: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return one model's matrix of mean Δ (sources × targets) and its CI∋0 mask.

    `cells` has the analysis's per-cell columns plus a boolean-or-NaN `contains_zero` (NaN
    where no item-level interval is available). Rows and columns are ordered by task, then
    language, so each task forms a block.
    """
    mine = cells[cells["model"] == model]
    sources = sorted(set(zip(mine["source_task"], mine["source_language"], strict=True)))
    targets = sorted(set(zip(mine["target_task"], mine["target_language"], strict=True)))
    index = pd.MultiIndex.from_tuples(sources, names=["task", "language"])
    columns = pd.MultiIndex.from_tuples(targets, names=["task", "language"])
    keyed = mine.set_index(["source_task", "source_language", "target_task", "target_language"])
    values = keyed[metric].unstack(["target_task", "target_language"])
    matrix = values.reindex(index=index, columns=columns)
    flags = keyed["contains_zero"].astype(float).unstack(["target_task", "target_language"])
    return matrix, flags.reindex(index=index, columns=columns)


def source_label(task: str, language: str) -> str:
    """Return a source's row label: ``task:lang``, or a mixture's parts (languages only when
    it has one task), e.g. ``mix de=64 en=32 zh=64``."""
    if not is_mixture_label(task):
        return cell_label(task, language)
    source = Source.parse(task)
    one_task = len(source.tasks) == 1
    parts = [f"{c.language if one_task else c}={n:g}" for c, n in source.parts]
    return " ".join(["mix", *parts])


def transfer_matrix_figure(
    matrix: pd.DataFrame, contains_zero: pd.DataFrame, model: str, limit: float, unit: str
) -> Figure:
    """Return the heatmap of one model's matrix, diverging at 0 with ±`limit` at the ends.

    Cells whose item-bootstrap CI contains 0 are hatched; the trained cell of each source
    (MT-ML) is outlined; lines separate tasks.
    """
    n_rows, n_cols = matrix.shape
    side = 0.42 if n_cols <= ANNOTATE_UP_TO else max(0.14, 7.5 / n_cols)
    rows = [source_label(*c) for c in matrix.index]
    wide = 0.055 * max(max(map(len, rows), default=0) - 20, 0)  # room for mixtures' labels
    figure = Figure(figsize=(2.4 + wide + side * n_cols, 1.6 + side * n_rows), layout="constrained")
    axes = figure.add_subplot()
    values = matrix.to_numpy(dtype=float)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    cmap = colormaps["RdBu"].with_extremes(bad="#e8e8e8")
    image = axes.imshow(
        np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto", interpolation="none"
    )
    colorbar = figure.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
    colorbar.set_label(f"Δ {unit}")
    axes.set_xticks(range(n_cols), [cell_label(*c) for c in matrix.columns], rotation=90)
    axes.set_yticks(range(n_rows), rows)
    axes.set_xlabel("target cell (evaluated on)")
    axes.set_ylabel("source cell (trained on)")
    axes.set_title(model)
    axes.tick_params(labelsize=8 if n_cols <= ANNOTATE_UP_TO else 5)
    _task_separators(axes, matrix)
    flags = contains_zero.to_numpy(dtype=float)
    target_index = {cell: j for j, cell in enumerate(matrix.columns)}
    for i, source in enumerate(matrix.index):
        j = target_index.get(source)
        if j is not None:
            axes.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.4, ec="black"))
        for j in range(n_cols):
            if flags[i, j] == 1.0:
                hatch = Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", lw=0)
                hatch.set_edgecolor("#59636e")
                hatch.set_hatch_linewidth(0.6)
                axes.add_patch(hatch)
            if n_cols <= ANNOTATE_UP_TO and np.isfinite(values[i, j]):
                strong = abs(values[i, j]) > 0.6 * limit
                axes.text(
                    j,
                    i,
                    f"{values[i, j]:.1f}".replace("-", "\u2212"),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if strong else "#1d232a",
                )
    return figure


def _task_separators(axes, matrix: pd.DataFrame) -> None:
    """Draw lines between task blocks on both axes."""
    for positions, draw in (
        (_block_edges(matrix.index), axes.axhline),
        (_block_edges(matrix.columns), axes.axvline),
    ):
        for edge in positions:
            draw(edge - 0.5, color="#1d232a", lw=0.8)


def _block_edges(cells: pd.Index) -> list[int]:
    tasks = [task for task, _ in cells]
    return [k for k in range(1, len(tasks)) if tasks[k] != tasks[k - 1]]


VARIANCE_COLOURS = {
    "model": "#1f5f99",
    "source": "#e08a2c",
    "target": "#4f9d69",
    "residual": "#b9c0c7",
}


def variance_figure(shares: pd.DataFrame) -> Figure:
    """Return stacked horizontal bars of variance shares (%), one bar per subset.

    `shares` is indexed by subset with one column per component (model, source, target,
    residual), as the analysis's `variance` table pivoted.
    """
    figure = Figure(figsize=(7.5, 0.9 + 0.45 * len(shares)), layout="constrained")
    axes = figure.add_subplot()
    left = np.zeros(len(shares))
    positions = np.arange(len(shares))
    for component, colour in VARIANCE_COLOURS.items():
        if component not in shares.columns:
            continue
        widths = shares[component].fillna(0).to_numpy(float)
        axes.barh(positions, widths, left=left, color=colour, label=component, height=0.65)
        for y, (x0, width) in enumerate(zip(left, widths, strict=True)):
            if width >= 7:
                axes.text(x0 + width / 2, y, f"{width:.0f}", ha="center", va="center", fontsize=8)
        left += widths
    axes.set_yticks(positions, [str(s) for s in shares.index])
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("share of the variance of Δ (%)")
    axes.legend(ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=8)
    return figure
