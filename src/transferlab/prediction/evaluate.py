"""Hide sources, predict them with every method, score the predictions: repeated over splits."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from transferlab.analysis.schema import CELL_KEYS
from transferlab.errors import UserError, did_you_mean
from transferlab.prediction.data import make_design, source_rows
from transferlab.prediction.intervals import conformal_widths, inner_residuals, interval_bounds
from transferlab.prediction.methods import METHODS, MIN_OBSERVED
from transferlab.prediction.scoring import noise_floor, score_hidden, summarize
from transferlab.prediction.splits import given_split, random_splits

LEVEL = 0.9
FOLDS = 5
PREDICTION_COLUMNS = [*CELL_KEYS, "regime", "observed", "predicted", "lower", "upper", "method"]


@dataclass(frozen=True)
class PredictionResult:
    """What `evaluate_predictions` found: the first split's predictions and the scores."""

    predictions: pd.DataFrame  # hidden rows of split 0: keys, observed, predicted, lower, upper
    scores: pd.DataFrame  # one row per method (prediction_scores.csv)
    per_split: pd.DataFrame  # one row per (split, method)
    n_observed: int  # observed (model, source) rows per split
    n_hidden: int


def check_methods(methods: list[str]) -> list[str]:
    """Return `methods` if every one is known, else raise a UserError naming the unknown one."""
    for name in methods:
        if name not in METHODS:
            raise UserError(
                "--method",
                f"unknown method {name!r}{did_you_mean(name, list(METHODS))}",
                f"choose from {', '.join(METHODS)}",
            )
    return methods


def evaluate_predictions(
    frame: pd.DataFrame,
    observed_frac: float = 0.3,
    n_splits: int = 10,
    seed: int = 0,
    methods: list[str] | None = None,
    level: float = LEVEL,
    hidden: list[tuple[str, str]] | None = None,
) -> PredictionResult:
    """Return the scores of every method on hidden sources of `frame` (`data.prediction_frame`).

    With `hidden` (source cells), the one split hides exactly those sources for every model;
    else `n_splits` random splits observe `observed_frac` of each model's measured sources.
    Intervals are at `level`, from `FOLDS`-fold held-out residuals of the observed rows.
    """
    methods = check_methods(list(methods or METHODS))
    if not 0 < level < 1:
        raise UserError("--level", f"{level} is not between 0 and 1", "e.g. --level 0.9")
    design = make_design(frame)
    rows = source_rows(design)
    need = max(MIN_OBSERVED[m] for m in methods)
    if hidden:
        masks = [given_split(rows, hidden, need)]
    else:
        masks = random_splits(rows, observed_frac, n_splits, seed, need)
    measured = frame["measured"].to_numpy(bool)
    regimes = frame["regime"].to_numpy()
    scores, first = [], []
    for split, observed_rows in enumerate(masks):
        observed = observed_rows[design.row] & measured
        hidden_entries = ~observed_rows[design.row] & measured
        floor = noise_floor(frame.loc[hidden_entries, "se"])
        folds = min(FOLDS, int(rows[observed_rows].groupby("model").size().min()))
        for name in methods:
            method = METHODS[name]
            predicted = method(design, observed)
            residuals = inner_residuals(design, observed_rows, method, folds, seed + split)
            widths = conformal_widths(residuals, regimes, level)
            lower, upper = interval_bounds(predicted, regimes, widths)
            table = frame.loc[hidden_entries, [*CELL_KEYS, "regime"]].assign(
                observed=frame.loc[hidden_entries, "delta"],
                predicted=predicted[hidden_entries],
                lower=lower[hidden_entries],
                upper=upper[hidden_entries],
                method=name,
            )
            scores.append({"split": split, "method": name, **score_hidden(table), **floor})
            if split == 0:
                first.append(table)
    per_split = pd.DataFrame(scores)
    summary = summarize(per_split).assign(level=100 * level)
    return PredictionResult(
        predictions=pd.concat(first, ignore_index=True)[PREDICTION_COLUMNS],
        scores=summary,
        per_split=per_split,
        n_observed=int(masks[0].sum()),
        n_hidden=int((rows["measured"].to_numpy(bool) & ~masks[0]).sum()),
    )
