"""Prediction intervals from held-out observed rows (split-conformal, one width per regime)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from transferlab.prediction.data import Design

Method = Callable[[Design, np.ndarray], np.ndarray]
MIN_PER_REGIME = 30  # fewer held-out residuals than this: the regime uses the pooled width


def inner_residuals(
    design: Design, observed_rows: np.ndarray, method: Method, folds: int, seed: int
) -> np.ndarray:
    """Return per entry the error of `method` when its observed row was held out (NaN elsewhere).

    The observed rows of each model are dealt into `folds` folds; each fold is predicted from
    the other observed rows, as the hidden rows are predicted from all of them.
    """
    rng = np.random.default_rng(seed)
    models = design.codes(("model",))
    row_model = np.zeros(design.n_rows, dtype=int)
    row_model[design.row] = models
    fold_of = np.full(design.n_rows, -1)
    for model in np.unique(row_model[observed_rows]):
        rows = rng.permutation(np.flatnonzero(observed_rows & (row_model == model)))
        fold_of[rows] = np.arange(len(rows)) % folds
    y = design.frame["delta"].to_numpy(float)
    residual = np.full(len(y), np.nan)
    for fold in range(folds):
        held = fold_of[design.row] == fold
        if not held.any():
            continue
        train = observed_rows[design.row] & ~held
        residual[held] = (y - method(design, train))[held]
    return residual


def conformal_widths(residuals: np.ndarray, regimes: np.ndarray, level: float) -> dict[str, float]:
    """Return the interval half-width per regime (and `all`) at `level` from held-out residuals.

    The width is the ⌈(n + 1)·level⌉-th smallest absolute residual (split-conformal); a regime
    with fewer than `MIN_PER_REGIME` residuals gets the pooled width.
    """
    known = np.isfinite(residuals)
    widths = {"all": _quantile(np.abs(residuals[known]), level)}
    for regime in np.unique(regimes):
        values = np.abs(residuals[known & (regimes == regime)])
        widths[str(regime)] = (
            _quantile(values, level) if len(values) >= MIN_PER_REGIME else widths["all"]
        )
    return widths


def _quantile(values: np.ndarray, level: float) -> float:
    n = len(values)
    rank = math.ceil((n + 1) * level)
    return float(np.sort(values)[rank - 1]) if 0 < rank <= n else math.inf


def interval_bounds(
    predicted: np.ndarray, regimes: np.ndarray, widths: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Return (lower, upper) = predicted ∓ the width of each entry's regime."""
    width = np.array([widths.get(str(r), widths["all"]) for r in regimes])
    return predicted - width, predicted + width
