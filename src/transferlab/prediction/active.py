"""Choosing which sources to train next, and the error curve of doing so on a complete grid.

A study that trains sources in batches starts from a spread of sources (covering tasks and
languages evenly), refits the predictor after each batch and trains next the sources whose
predictions are most uncertain (`uncertainty`: the spread of the predictions of refits that
each leave out a fold of the trained sources; with several models, on the source cells the
fewest models have trained), the most promising for named targets
(`greedy`), or random ones (`random`, the yardstick). On a complete grid the untrained sources'
measured Δ are known, so the choice can be replayed and scored.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from transferlab.errors import UserError, did_you_mean
from transferlab.prediction.data import Design, make_design, source_rows
from transferlab.prediction.methods import METHODS

STRATEGIES = ("uncertainty", "greedy", "random")
CURVE_COLUMNS = ["strategy", "step", "trained_per_model", "check_mae", "check_rows"]


def spread_start(rows: pd.DataFrame, allowed: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Return a mask of `n` allowed rows per model, each covering the least-covered task and language."""
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(rows), dtype=bool)
    for _, index in rows.groupby("model", sort=True).groups.items():
        candidates = [i for i in rng.permutation(np.asarray(index)) if allowed[i]]
        tasks: dict[str, int] = {}
        languages: dict[str, int] = {}
        for _ in range(min(n, len(candidates))):
            best = min(
                candidates,
                key=lambda i: (
                    tasks.get(rows.at[i, "source_task"], 0)
                    + languages.get(rows.at[i, "source_language"], 0)
                ),
            )
            candidates.remove(best)
            chosen[best] = True
            tasks[rows.at[best, "source_task"]] = tasks.get(rows.at[best, "source_task"], 0) + 1
            language = rows.at[best, "source_language"]
            languages[language] = languages.get(language, 0) + 1
    return chosen


def row_uncertainty(
    design: Design, trained: np.ndarray, method: str, folds: int, seed: int
) -> np.ndarray:
    """Return per row the mean over its targets of the SD of `folds` leave-a-fold-out refits."""
    rng = np.random.default_rng(seed)
    fold_of = np.full(design.n_rows, -1)
    rows = rng.permutation(np.flatnonzero(trained))
    fold_of[rows] = np.arange(len(rows)) % folds
    fits = [
        METHODS[method](design, trained[design.row] & (fold_of[design.row] != fold))
        for fold in range(folds)
    ]
    spread = np.std(np.vstack(fits), axis=0)
    return pd.Series(spread).groupby(design.row).mean().to_numpy()


def row_gain(
    design: Design, trained: np.ndarray, method: str, targets: list[tuple[str, str]]
) -> np.ndarray:
    """Return per row the predicted mean Δ over the `targets` cells."""
    frame = design.frame
    predicted = METHODS[method](design, trained[design.row])
    cells = set(targets)
    on_target = np.array(
        [c in cells for c in zip(frame["target_task"], frame["target_language"], strict=True)]
    )
    gain = pd.Series(np.where(on_target, predicted, np.nan)).groupby(design.row).mean()
    return gain.to_numpy()


def choose_next(
    design: Design,
    trained: np.ndarray,
    allowed: np.ndarray,
    batch: int,
    strategy: str,
    targets: list[tuple[str, str]] | None = None,
    method: str = "completion",
    seed: int = 0,
    folds: int = 4,
) -> np.ndarray:
    """Return a mask of up to `batch` untrained allowed rows per model to train next."""
    rows = source_rows(design)
    if strategy == "uncertainty":
        score = row_uncertainty(design, trained, method, folds, seed)
    elif strategy == "greedy":
        if not targets:
            raise UserError("strategy", "greedy needs named targets", "give targets: [TASK:LANG]")
        score = row_gain(design, trained, method, targets)
    elif strategy == "random":
        score = np.random.default_rng(seed).random(len(rows))
    else:
        raise UserError(
            "strategy",
            f"unknown strategy {strategy!r}{did_you_mean(strategy, STRATEGIES)}",
            f"choose one of {', '.join(STRATEGIES)}",
        )
    chosen = np.zeros(len(rows), dtype=bool)
    open_rows = allowed & ~trained
    cells = list(zip(rows["source_task"], rows["source_language"], strict=True))
    # how many models train each source cell: with several models, one model's row of a cell
    # informs the others', so uncertainty first spreads over the cells fewest models have
    taken = Counter(cells[i] for i in np.flatnonzero(trained))
    for _, index in rows.groupby("model", sort=True).groups.items():
        index = [i for i in index if open_rows[i]]
        spread = strategy == "uncertainty"
        index.sort(key=lambda i: (taken[cells[i]] if spread else 0, -score[i]))
        for i in index[:batch]:
            chosen[i] = True
            taken[cells[i]] += 1
    return chosen


def active_curve(
    frame: pd.DataFrame,
    budget: int,
    batch: int,
    strategy: str,
    initial: int | None = None,
    check_frac: float = 0.25,
    targets: list[tuple[str, str]] | None = None,
    method: str = "completion",
    seed: int = 0,
) -> pd.DataFrame:
    """Return the check-set MAE after the initial spread and after each batch, up to `budget`.

    A random `check_frac` of each model's sources is never trained and scores every step.
    """
    if batch < 1 or budget < batch:
        raise UserError("active", f"budget {budget}, batch {batch}", "use 1 ≤ batch ≤ budget")
    design = make_design(frame)
    rows = source_rows(design)
    rng = np.random.default_rng(seed)
    check = np.zeros(len(rows), dtype=bool)
    for _, index in rows.groupby("model", sort=True).groups.items():
        index = np.asarray(index)
        check[rng.choice(index, size=max(1, round(check_frac * len(index))), replace=False)] = True
    allowed = ~check & rows["measured"].to_numpy(bool)
    trained = spread_start(rows, allowed, initial or batch, seed)
    y = frame["delta"].to_numpy(float)
    curve = []
    for step in range(budget):
        predicted = METHODS[method](design, trained[design.row])
        entries = check[design.row] & frame["measured"].to_numpy(bool)
        per_model = int(pd.Series(trained).groupby(rows["model"]).sum().min())
        curve.append(
            {
                "strategy": strategy,
                "step": step,
                "trained_per_model": per_model,
                "check_mae": float(np.abs(predicted - y)[entries].mean()),
                "check_rows": int(check.sum()),
            }
        )
        if per_model + batch > budget or not (allowed & ~trained).any():
            break
        trained |= choose_next(
            design, trained, allowed, batch, strategy, targets, method, seed + step
        )
    return pd.DataFrame(curve, columns=CURVE_COLUMNS)
