"""Translation retrieval and its scores, counted as xling-eval's ``eval.py`` counts them.

The rank of a test pair is the 1-based position of the gold target among all target entries,
sorted by similarity to the (mapped) source entry. Ties are ordered as xling-eval's
``np.argsort(sims)[::-1]`` orders them with a stable sort: among equal similarities the entry
with the higher index comes first. P@k is the share of ranks ≤ k; MRR the mean of 1/rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RETRIEVALS = ("cosine", "csls")
CSLS_K = 10


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Return ``vectors`` with every row scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _mean_top_k(similarities: np.ndarray, k: int) -> np.ndarray:
    k = min(k, similarities.shape[1])
    # A partition finds the k largest in linear time; sorting just those k gives the same
    # values in the same order as sorting whole rows, so the mean is the same to the last bit.
    top = np.partition(similarities, similarities.shape[1] - k, axis=1)[:, -k:]
    return np.sort(top, axis=1).mean(axis=1)


def similarity_matrices(
    queries: np.ndarray,
    targets: np.ndarray,
    retrievals: Sequence[str] = RETRIEVALS,
    all_queries: np.ndarray | None = None,
    k: int = CSLS_K,
) -> dict[str, np.ndarray]:
    """Return {retrieval: query × target scores} for each of ``retrievals`` (see below).

    Cosine is computed once and CSLS built on it: ``2 cos − r_T(x) − r_S(y)``, where ``r_T(x)``
    is the mean cosine of query ``x`` to its ``k`` nearest targets and ``r_S(y)`` the mean
    cosine of target ``y`` to its ``k`` nearest rows of ``all_queries`` (the whole mapped source
    vocabulary; default: ``queries``).
    """
    for retrieval in retrievals:
        if retrieval not in RETRIEVALS:
            raise ValueError(f"unknown retrieval {retrieval!r}")
    q, t = unit_rows(queries), unit_rows(targets)
    cosine = q @ t.T
    out = {}
    if "cosine" in retrievals:
        out["cosine"] = cosine
    if "csls" in retrievals:
        pool = q if all_queries is None else unit_rows(all_queries)
        r_target = _mean_top_k(cosine, k)  # per query
        r_source = _mean_top_k(t @ pool.T, k)  # per target
        out["csls"] = 2 * cosine - r_target[:, None] - r_source[None, :]
    return {name: out[name] for name in retrievals}


def similarity_matrix(
    queries: np.ndarray,
    targets: np.ndarray,
    retrieval: str = "cosine",
    all_queries: np.ndarray | None = None,
    k: int = CSLS_K,
) -> np.ndarray:
    """Return the query × target scores of one retrieval (see ``similarity_matrices``)."""
    return similarity_matrices(queries, targets, (retrieval,), all_queries, k)[retrieval]


def gold_ranks(similarities: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Return each query's 1-based rank of its gold column (ties: higher column index first)."""
    gold = np.asarray(gold)
    rows = np.arange(len(gold))
    gold_scores = similarities[rows, gold][:, None]
    columns = np.arange(similarities.shape[1])[None, :]
    better = similarities > gold_scores
    tied_ahead = (similarities == gold_scores) & (columns > gold[:, None])
    return 1 + better.sum(axis=1) + tied_ahead.sum(axis=1)


def bli_scores(ranks: np.ndarray) -> dict[str, float]:
    """Return P@1, P@5, P@10 and MRR of ``ranks`` (proportions in 0–1)."""
    ranks = np.asarray(ranks, dtype=float)
    return {
        "p1": float(np.mean(ranks <= 1)),
        "p5": float(np.mean(ranks <= 5)),
        "p10": float(np.mean(ranks <= 10)),
        "mrr": float(np.mean(1.0 / ranks)),
    }
