"""The figure of mixture sweeps: Δ against k per target language, and the seen − unseen gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure


def _errors(frame: pd.DataFrame) -> np.ndarray | None:
    low, high = frame["ci_low"].to_numpy(float), frame["ci_high"].to_numpy(float)
    value = frame["delta"].to_numpy(float)
    if not np.isfinite(low).any():
        return None
    return np.vstack([np.nan_to_num(value - low), np.nan_to_num(high - value)])


def scaling_figure(curves: pd.DataFrame, gaps: pd.DataFrame, metric: str) -> Figure:
    """Return one row per (model, sweep, target task): left Δ against k per target language
    (seen languages solid, unseen dashed, 95% item CIs), right the seen − unseen gap with its CI.

    k is drawn at evenly spaced positions (its values label the axis): sweeps double or
    quadruple k, and k = 0 has no place on a log axis.
    """
    on_task = curves[curves["on_task"]]
    panels = list(on_task.groupby(["model", "mixture", "target_task"], sort=True))
    figure = Figure(figsize=(11, 3.6 * max(len(panels), 1)), layout="constrained")
    axes = figure.subplots(max(len(panels), 1), 2, squeeze=False)
    colours = colormaps["tab10"]
    for row, ((model, mixture, task), block) in enumerate(panels):
        ks = sorted(block["per_language"].unique())
        position = {k: i for i, k in enumerate(ks)}
        left, right = axes[row]
        languages = sorted(block["target_language"].unique(), key=lambda lang: (
            not block.loc[block["target_language"] == lang, "seen"].iloc[0], lang))  # fmt: skip
        for i, language in enumerate(languages):
            curve = block[block["target_language"] == language].sort_values("per_language")
            seen = bool(curve["seen"].iloc[0])
            left.errorbar(
                [position[k] + 0.04 * (i - len(languages) / 2) for k in curve["per_language"]],
                curve["delta"],
                yerr=_errors(curve),
                fmt="-o" if seen else "--s",
                color=colours(i % 10),
                capsize=2,
                lw=1.4,
                ms=4,
                label=f"{language} ({'seen' if seen else 'unseen'})",
            )
        left.axhline(0, color="grey", lw=0.8)
        left.set_title(f"{model} · {mixture} → {task} targets", fontsize=10)
        left.set_ylabel(f"{metric} (pp)")
        left.legend(fontsize=8, ncols=2)
        gap = gaps[(gaps["model"] == model) & (gaps["mixture"] == mixture)]
        gap = gap[gap["target_task"] == task].sort_values("per_language")
        x = [position[k] for k in gap["per_language"]]
        values = gap["gap"].to_numpy(float)
        errors = np.vstack(
            [
                np.nan_to_num(values - gap["gap_low"].to_numpy(float)),
                np.nan_to_num(gap["gap_high"].to_numpy(float) - values),
            ]
        )
        right.errorbar(x, values, yerr=errors, fmt="-o", color="#1f4e79", capsize=3)
        right.axhline(0, color="grey", lw=0.8)
        right.set_title("seen − unseen languages (mean Δ, 95% item CI)", fontsize=10)
        right.set_ylabel("gap (pp)")
        for ax in (left, right):
            ax.set_xticks(range(len(ks)), [str(k) for k in ks])
            ax.set_xlabel("k: items per added language")
    return figure
