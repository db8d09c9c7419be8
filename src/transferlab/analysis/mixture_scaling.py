"""Data-scaling curves of mixture sweeps: score and Δ against k per target, and where they level.

A sweep (mixtures.csv) is a family of mixture sources: fixed parts plus k items per added
language for several k. A curve is one (model, sweep, target cell) over the sweep's k.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferlab.analysis.bootstrap import CellBootstrap
from transferlab.errors import UserError
from transferlab.mixtures import SWEEP_COLUMNS

CURVE_COLUMNS = [
    "model",
    "mixture",
    "per_language",
    "source",
    "target_task",
    "target_language",
    "seen",
    "on_task",
    "score",
    "score_se",
    "delta",
    "delta_se",
    "ci_low",
    "ci_high",
    "n_seeds",
]
K90_COLUMNS = [
    "model",
    "mixture",
    "target_task",
    "target_language",
    "seen",
    "k_first",
    "score_first",
    "score_max",
    "k_max",
    "gain_max",
    "k90",
]
CURVE_KEYS = ["model", "mixture", "target_task", "target_language"]


def sweeps_from_frame(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Return a validated mixtures.csv table (`per_language` as integers)."""
    missing = [c for c in SWEEP_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            where, f"missing column(s) {', '.join(missing)}", "write mixtures.csv whole"
        )
    sweeps = frame[list(SWEEP_COLUMNS)].copy()
    k = pd.to_numeric(sweeps["per_language"], errors="coerce")
    if k.isna().any() or (k < 0).any() or (k % 1 != 0).any():
        line = int((k.isna() | (k < 0) | (k % 1 != 0)).idxmax()) + 2
        raise UserError(where, f"per_language on line {line} is not a whole number >= 0", "fix it")
    sweeps["per_language"] = k.astype(int)
    for column in ("fixed_languages", "added_languages", "tasks"):
        sweeps[column] = sweeps[column].fillna("").astype(str)
    sweeps["disjoint_ids"] = sweeps["disjoint_ids"].astype(str).str.lower() == "true"
    return sweeps


def _columns(metric: str) -> tuple[str, str, str]:
    """Return the score, score SE and Δ SE columns that go with a Δ column."""
    stem = metric.removesuffix("_mean")
    score = stem.removeprefix("delta_")
    return f"{score}_mean", f"{score}_se", f"{stem}_se"


def scaling_curves(
    cells: pd.DataFrame, sweeps: pd.DataFrame, metric: str, boot: CellBootstrap
) -> pd.DataFrame:
    """Return one row per (model, sweep, k, target cell): score, Δ, seed SE, item CI.

    `seen` marks targets whose language is one of the sweep's languages (fixed or added, the
    same for every k, so k = 0 shows the gap English-only data leaves); `on_task` targets whose
    task is one of the sweep's tasks. `ci_low`/`ci_high` are the 95% item-bootstrap CI of Δ.
    """
    score, score_se, delta_se = _columns(metric)
    cells = cells.drop(columns=[c for c in SWEEP_COLUMNS if c in cells.columns])
    joined = sweeps.merge(cells, left_on="source", right_on="source_task", how="inner")
    if joined.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    languages = (joined["fixed_languages"] + "+" + joined["added_languages"]).str.split("+")
    tasks = joined["tasks"].str.split("+")
    out = pd.DataFrame(
        {
            "model": joined["model"],
            "mixture": joined["mixture"],
            "per_language": joined["per_language"].astype(int),
            "source": joined["source"],
            "target_task": joined["target_task"],
            "target_language": joined["target_language"],
            "seen": [t in ls for t, ls in zip(joined["target_language"], languages, strict=True)],
            "on_task": [t in ts for t, ts in zip(joined["target_task"], tasks, strict=True)],
            "score": joined.get(score, np.nan),
            "score_se": joined.get(score_se, np.nan),
            "delta": joined[metric],
            "delta_se": joined.get(delta_se, np.nan),
            "n_seeds": joined.get("n_seeds", 1),
        }
    )
    cis = [
        boot.combine({(r.model, r.source, r.source_language, r.target_task, r.target_language): 1})
        for r in joined.itertuples(index=False)
    ]
    out["ci_low"] = [c[1] for c in cis]
    out["ci_high"] = [c[2] for c in cis]
    out = out.sort_values([*CURVE_KEYS[:2], "per_language", *CURVE_KEYS[2:]], ignore_index=True)
    return out[CURVE_COLUMNS]


def curve_k90(curves: pd.DataFrame) -> pd.DataFrame:
    """Return per curve the smallest k whose score gain over the curve's first k reaches 90%
    of its largest gain (`k90`; empty where the score never rises above the first point)."""
    rows = []
    for keys, curve in curves.groupby(CURVE_KEYS, sort=True):
        curve = curve.sort_values("per_language")
        k, score = curve["per_language"].to_numpy(), curve["score"].to_numpy(float)
        gain = score - score[0]
        best = int(np.nanargmax(score)) if np.isfinite(score).any() else 0
        top = float(np.nanmax(gain)) if np.isfinite(gain).any() else np.nan
        reached = np.flatnonzero(gain >= 0.9 * top) if top > 0 else []
        rows.append(
            (
                *keys,
                bool(curve["seen"].iloc[0]),
                int(k[0]),
                float(score[0]),
                float(score[best]),
                int(k[best]),
                top,
                float(k[reached[0]]) if len(reached) else np.nan,
            )
        )
    return pd.DataFrame(rows, columns=K90_COLUMNS)
