"""Scores of predictions on hidden rows: errors, ranking of sources per target, coverage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

RANK_K = 3
RELEVANT = 10  # NDCG relevance: the true best candidate scores 10, the 10th 1, the rest 0
TARGET_GROUP = ["model", "target_task", "target_language"]
SCORE_COLUMNS = ["mae", "rmse", "spearman", "ndcg3", "regret3", "coverage"]


def ndcg_at_k(true: np.ndarray, predicted: np.ndarray, k: int = RANK_K) -> float:
    """Return NDCG@k (0–100) of ranking candidates by `predicted`, relevance from `true` ranks.

    Relevance is LangRank's graded kind: max(0, R + 1 − true rank) with R = min(10, n); gain is
    linear, discount log2(position + 1).
    """
    n = len(true)
    relevant = min(RELEVANT, n)
    true_rank = np.empty(n, dtype=int)
    true_rank[np.argsort(-true, kind="stable")] = np.arange(1, n + 1)
    relevance = np.maximum(0, relevant + 1 - true_rank)
    discount = 1 / np.log2(np.arange(2, k + 2))[: min(k, n)]
    chosen = np.argsort(-predicted, kind="stable")[:k]
    ideal = np.sort(relevance)[::-1][:k]
    return 100 * float(relevance[chosen] @ discount / (ideal @ discount))


def regret_at_k(true: np.ndarray, predicted: np.ndarray, k: int = RANK_K) -> float:
    """Return the best true Δ minus the best true Δ among the top-k predicted candidates (pp)."""
    chosen = np.argsort(-predicted, kind="stable")[:k]
    return float(true.max() - true[chosen].max())


def score_hidden(hidden: pd.DataFrame) -> dict[str, float]:
    """Return mae, rmse, spearman, ndcg3, regret3 and coverage (%) of one split's hidden rows.

    `hidden` holds keys, `observed`, `predicted`, `lower`, `upper`. Errors are over every hidden
    entry; the ranking scores are per target (model, target cell) over the hidden sources other
    than the target cell itself (training on the target is not transfer), then averaged: Spearman
    where ≥ 3 candidates vary, NDCG@3 and regret@3 where there are more than 3.
    """
    error = hidden["predicted"] - hidden["observed"]
    inside = (hidden["lower"] <= hidden["observed"]) & (hidden["observed"] <= hidden["upper"])
    transfer = hidden[hidden["regime"] != "MT-ML"]
    rhos, ndcgs, regrets = [], [], []
    for _, group in transfer.groupby(TARGET_GROUP, sort=False):
        true, pred = group["observed"].to_numpy(), group["predicted"].to_numpy()
        if len(true) >= 3 and np.ptp(true) > 0 and np.ptp(pred) > 0:
            rhos.append(stats.spearmanr(true, pred).statistic)
        if len(true) > RANK_K:
            ndcgs.append(ndcg_at_k(true, pred))
            regrets.append(regret_at_k(true, pred))
    return {
        "mae": float(error.abs().mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "spearman": _mean(rhos),
        "ndcg3": _mean(ndcgs),
        "regret3": _mean(regrets),
        "coverage": 100 * float(inside.mean()),
    }


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def noise_floor(se: pd.Series) -> dict[str, float]:
    """Return the MAE and RMSE a perfect predictor of the true Δ would still make (pp).

    The observed value of a cell is a mean over seeds with standard error `se`; for normal noise
    the RMSE floor is √mean(se²) and the MAE floor √(2/π) times that. NaN without SEs.
    """
    known = se.dropna()
    rmse = math.sqrt(float((known**2).mean())) if len(known) else math.nan
    return {"noise_mae": math.sqrt(2 / math.pi) * rmse, "noise_rmse": rmse}


def summarize(per_split: pd.DataFrame) -> pd.DataFrame:
    """Return one row per method: the mean of each score over splits, `n_splits`, then the SDs."""
    groups = per_split.groupby("method", sort=False)
    means = groups[[*SCORE_COLUMNS, "noise_mae", "noise_rmse"]].mean()
    sds = groups[SCORE_COLUMNS].std(ddof=1).add_suffix("_sd")
    out = means.join(sds).assign(n_splits=groups.size()).reset_index()
    first = ["method", "mae", "rmse", "spearman", "ndcg3", "coverage", "n_splits", "regret3"]
    return out[first + [c for c in out.columns if c not in first]]
