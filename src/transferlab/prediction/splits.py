"""Which (model, source) rows a predictor sees: repeated random splits, or a given hidden set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferlab.errors import UserError


def random_splits(
    rows: pd.DataFrame, observed_frac: float, n_splits: int, seed: int, min_observed: int
) -> list[np.ndarray]:
    """Return `n_splits` boolean masks over `rows` (True = observed), drawn per model.

    Each model observes round(`observed_frac` × its measured sources) of them, at least
    `min_observed` and at least one fewer than it has; unmeasured rows are never observed.
    """
    if not 0 < observed_frac < 1:
        raise UserError(
            "--observed-frac", f"{observed_frac} is not between 0 and 1", "e.g. --observed-frac 0.3"
        )
    if n_splits < 1:
        raise UserError("--splits", f"{n_splits} splits", "ask for at least 1")
    measured = rows["measured"].to_numpy(bool)
    per_model = {}
    for model, index in rows.groupby("model", sort=True).groups.items():
        candidates = np.asarray([i for i in index if measured[i]])
        k = int(round(observed_frac * len(candidates)))
        if k < min_observed or k >= len(candidates):
            raise UserError(
                "--observed-frac",
                f"model {model} has {len(candidates)} measured sources: a fraction of "
                f"{observed_frac:g} observes {k}, and the methods need at least {min_observed} "
                "observed and 1 hidden",
                f"choose a fraction that observes {min_observed} to {len(candidates) - 1} sources",
            )
        per_model[model] = (candidates, k)
    masks = []
    for split in range(n_splits):
        rng = np.random.default_rng([seed, split])
        mask = np.zeros(len(rows), dtype=bool)
        for candidates, k in per_model.values():
            mask[rng.choice(candidates, size=k, replace=False)] = True
        masks.append(mask)
    return masks


def given_split(rows: pd.DataFrame, hidden: list[tuple[str, str]], min_observed: int) -> np.ndarray:
    """Return the mask over `rows` observing every measured source except the `hidden` cells."""
    cells = set(zip(rows["source_task"], rows["source_language"], strict=True))
    for task, language in hidden:
        if (task, language) not in cells:
            raise UserError(
                "--hide",
                f"source {task}:{language} is not in the table",
                f"name sources of the table, e.g. {':'.join(sorted(cells)[0])}",
            )
    chosen = set(hidden)
    keys = zip(rows["source_task"], rows["source_language"], strict=True)
    mask = rows["measured"].to_numpy(bool) & np.array([key not in chosen for key in keys])
    for model, count in pd.Series(mask).groupby(rows["model"].to_numpy()).sum().items():
        if count < min_observed:
            raise UserError(
                "--hide",
                f"model {model} keeps {count} observed sources; the methods need {min_observed}",
                "hide fewer sources",
            )
    return mask
