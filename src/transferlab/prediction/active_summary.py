"""What an active study learnt: the predicted matrix, the picks per round and the error curve.

The predictor is fitted on the picked sources only. Sources measured without being picked (the
check set: e.g. a full grid run earlier into the same store) are never fitted; they score the
predictor as it stood after each round — MAE against the number of sources trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferlab.prediction.data import ROW_KEYS, make_design
from transferlab.prediction.methods import METHODS

BASELINE = "regime_target"
CURVE_COLUMNS = ["round", "trained_per_model", "check_sources", "check_mae", "baseline_mae"]


@dataclass(frozen=True)
class ActiveSummary:
    """The report's prediction section as tables."""

    method: str
    entries: pd.DataFrame  # the prediction frame + `status`, `round` and `predicted`
    rounds: pd.DataFrame  # round, model, source_task, source_language, trained_per_model
    curve: pd.DataFrame  # CURVE_COLUMNS, one row per round; empty without a check set

    @property
    def n_observed(self) -> int:
        """Return how many (model, source) rows the predictor was fitted on."""
        return int((self.rows()["status"] == "trained").sum())

    def rows(self) -> pd.DataFrame:
        """Return one row per (model, source): keys, `status`, `round`."""
        return self.entries.drop_duplicates(list(ROW_KEYS))[[*ROW_KEYS, "status", "round"]]


def active_summary(
    frame: pd.DataFrame, rounds: list[list[tuple[str, str, str]]], method: str
) -> ActiveSummary:
    """Return the summary of an active study from its prediction frame and its rounds.

    `rounds` lists per round the picked (model, source task, source language); a row of
    `frame` is `trained` if picked and measured, `check` if measured but never picked, else
    `predicted`. `predicted` is `method` fitted on every trained row.
    """
    design = make_design(frame)
    keys = list(zip(*(frame[k] for k in ROW_KEYS), strict=True))
    round_of = {pick: step for step, picks in enumerate(rounds) for pick in picks}
    measured = frame["measured"].groupby(design.row).transform("all").to_numpy(bool)
    picked_round = np.array([round_of.get(k, -1) for k in keys])
    trained = (picked_round >= 0) & measured
    check = (picked_round < 0) & measured
    entries = frame.assign(
        status=np.where(trained, "trained", np.where(check, "check", "predicted")),
        round=picked_round,
        predicted=METHODS[method](design, trained),
    )
    per_model: dict[str, int] = {}
    lines = []
    for step, picks in enumerate(rounds):
        for model, task, language in picks:
            per_model[model] = per_model.get(model, 0) + 1
            lines.append((step, model, task, language, per_model[model]))
    columns = ["round", "model", "source_task", "source_language", "trained_per_model"]
    table = pd.DataFrame(lines, columns=columns)
    curve = _curve(design, picked_round, trained, check, method) if check.any() else None
    return ActiveSummary(
        method, entries, table, curve if curve is not None else pd.DataFrame(columns=CURVE_COLUMNS)
    )


def _curve(
    design, picked_round: np.ndarray, trained: np.ndarray, check: np.ndarray, method: str
) -> pd.DataFrame:
    y = design.frame["delta"].to_numpy(float)
    models = design.frame["model"].to_numpy()
    points = []
    for step in range(int(picked_round.max()) + 1):
        fit = trained & (picked_round <= step)
        counts = pd.Series(design.row[fit]).groupby(models[fit]).nunique()
        error = {}
        for name in (method, BASELINE):
            predicted = METHODS[name](design, fit)
            error[name] = float(np.abs(predicted - y)[check].mean())
        points.append(
            {
                "round": step,
                "trained_per_model": int(counts.min()) if len(counts) else 0,
                "check_sources": int(len(np.unique(design.row[check]))),
                "check_mae": error[method],
                "baseline_mae": error[BASELINE],
            }
        )
    return pd.DataFrame(points, columns=CURVE_COLUMNS)
