"""Rank sources for a set of targets by expected gain, subject to the risk of harming the rest."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from transferlab.errors import UserError
from transferlab.prediction.data import ROW_KEYS, make_design, source_rows
from transferlab.prediction.intervals import inner_residuals
from transferlab.prediction.methods import METHODS, MIN_OBSERVED

PREDICTOR = "completion"
RECOMMEND_COLUMNS = [
    "model",
    "rank",
    "source_task",
    "source_language",
    "status",
    "expected_gain",
    "gain_sd",
    "risk",
    "worst_protected",
    "expected_harmed",
    "admissible",
]


def _check_cells(frame: pd.DataFrame, cells: list[tuple[str, str]], option: str) -> None:
    known = set(zip(frame["target_task"], frame["target_language"], strict=True))
    for task, language in cells:
        if (task, language) not in known:
            example = ":".join(sorted(known)[0])
            raise UserError(
                option,
                f"target {task}:{language} is not in the table",
                f"name target cells of the table as TASK:LANG, e.g. {example}",
            )


def expected_deltas(
    frame: pd.DataFrame, where: str = "RESULTS", folds: int = 5, seed: int = 0
) -> pd.DataFrame:
    """Return `frame` with `mean`, `sd` and `status` (measured | predicted) for every entry.

    Measured entries keep their Δ and SE over seeds (0 where the table has no SE). Unmeasured
    sources are predicted by the `completion` method from every measured row, with the RMS of
    its held-out errors on measured rows, per regime, as their SD.
    """
    out = frame.assign(mean=frame["delta"], sd=frame["se"].fillna(0.0), status="measured")
    missing = ~frame["measured"].to_numpy(bool)
    if not missing.any():
        return out
    design = make_design(frame)
    rows = source_rows(design)
    counts = rows.groupby("model")["measured"].sum()
    need = MIN_OBSERVED[PREDICTOR]
    if (counts < need).any():
        model = counts.index[counts < need][0]
        raise UserError(
            where,
            f"model {model} has {int(counts[model])} measured sources; predicting the others "
            f"needs at least {need}",
            "measure more sources of that model",
        )
    method = METHODS[PREDICTOR]
    observed_rows = rows["measured"].to_numpy(bool)
    predicted = method(design, observed_rows[design.row])
    folds = min(folds, int(counts.min()))
    residual = pd.Series(inner_residuals(design, observed_rows, method, folds, seed))
    regime = frame["regime"].reset_index(drop=True)
    rms = (residual**2).groupby(regime).mean().pow(0.5)
    pooled = math.sqrt(float((residual**2).mean()))
    sd = regime.map(rms).fillna(pooled).to_numpy()
    out.loc[missing, "mean"] = predicted[missing]
    out.loc[missing, "sd"] = sd[missing]
    out.loc[missing, "status"] = "predicted"
    return out


def recommend_sources(
    frame: pd.DataFrame,
    targets: list[tuple[str, str]],
    protect: list[tuple[str, str]] | None = None,
    harm_budget: float = 1.0,
    max_risk: float = 0.1,
    model: str | None = None,
    where: str = "RESULTS",
) -> pd.DataFrame:
    """Return the candidate sources ranked per model (columns `RECOMMEND_COLUMNS`).

    `expected_gain` is the mean expected Δ over `targets`; `risk` the largest probability,
    over the protected cells (default: every other target cell), that the source harms the
    cell by more than `harm_budget` pp (Δ ≤ −budget, normal with the entry's SD);
    `expected_harmed` the sum of those probabilities. Sources with risk ≤ `max_risk` are
    admissible and ranked first, each group by expected gain.
    """
    if not math.isfinite(harm_budget) or harm_budget < 0:
        raise UserError("--harm-budget", f"{harm_budget} is not a number ≥ 0", "e.g. 1.0 (pp)")
    if not 0 <= max_risk <= 1:
        raise UserError("--max-risk", f"{max_risk} is not a probability", "e.g. 0.1")
    if not targets:
        raise UserError("--targets", "no target cells", "name them as TASK:LANG,...")
    _check_cells(frame, targets, "--targets")
    _check_cells(frame, protect or [], "--protect")
    if model is not None:
        models = sorted(frame["model"].unique())
        if model not in models:
            raise UserError(
                "--model", f"unknown model {model!r}", f"name one of {', '.join(models)}"
            )
        frame = frame[frame["model"] == model].reset_index(drop=True)
    entries = expected_deltas(frame, where)
    cell = list(zip(entries["target_task"], entries["target_language"], strict=True))
    wanted, guarded_cells = set(targets), set(protect or [])
    is_target = np.array([c in wanted for c in cell])
    protected = np.array([c in guarded_cells for c in cell]) if protect else ~is_target
    sd = entries["sd"].to_numpy(float)
    z = (-harm_budget - entries["mean"].to_numpy(float)) / np.where(sd > 0, sd, 1.0)
    harm = np.where(sd > 0, stats.norm.cdf(z), (entries["mean"] <= -harm_budget).astype(float))
    entries = entries.assign(
        harm=np.where(protected, harm, np.nan),
        gain=np.where(is_target, entries["mean"], np.nan),
        var=np.where(is_target, sd**2, np.nan),
        cell=[f"{t}:{lang}" for t, lang in cell],
    )
    rows = []
    for key, group in entries.groupby(list(ROW_KEYS), sort=True):
        guarded = group.dropna(subset=["harm"])
        worst = guarded.loc[guarded["harm"].idxmax()] if len(guarded) else None
        rows.append(
            {
                **dict(zip(ROW_KEYS, key, strict=True)),
                "status": group["status"].iloc[0],
                "expected_gain": group["gain"].mean(),
                "gain_sd": math.sqrt(group["var"].sum()) / group["gain"].count(),
                "risk": worst["harm"] if worst is not None else 0.0,
                "worst_protected": worst["cell"] if worst is not None else "",
                "expected_harmed": guarded["harm"].sum(),
            }
        )
    table = pd.DataFrame(rows)
    table["admissible"] = table["risk"] <= max_risk
    table = table.sort_values(
        ["model", "admissible", "expected_gain"], ascending=[True, False, False], kind="stable"
    )
    table["rank"] = table.groupby("model").cumcount() + 1
    return table[RECOMMEND_COLUMNS].reset_index(drop=True)
