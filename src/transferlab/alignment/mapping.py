"""Orthogonal maps between two representation spaces, as xling-eval fits them.

- ``procrustes``: PROC, ``W = U Vᵀ`` from the SVD of ``X_Sᵀ X_T`` over the seed pairs, so that
  ``X_S W ≈ X_T``.
- ``bootstrap_procrustes``: PROC-B, which grows the seed dictionary with mutual nearest
  neighbours (see its docstring).
- ``normalize``: the preprocessing steps, applied in order (``unit``: rows to unit length,
  ``center``: subtract the mean row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transferlab.alignment.retrieval import unit_rows
from transferlab.errors import UserError

NORMALIZATIONS = ("unit", "center")


def normalize(vectors: np.ndarray, steps: Sequence[str]) -> np.ndarray:
    """Return ``vectors`` (rows) after each step of ``steps`` in turn."""
    out = np.asarray(vectors, dtype=np.float64)
    for step in steps:
        if step == "unit":
            out = unit_rows(out)
        elif step == "center":
            out = out - out.mean(axis=0, keepdims=True)
        else:
            raise UserError(
                "--normalize", f"unknown step {step!r}", f"use {', '.join(NORMALIZATIONS)}"
            )
    return out


def procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return the orthogonal ``W`` minimising ``‖source W − target‖`` (rows are seed pairs).

    With fewer independent seed pairs than dimensions (530 concepts in Gemma's 640 dimensions)
    many ``W`` are optimal: the seed pairs fix ``W`` on the directions they span and leave the
    rest free. Of those, this returns the one closest to the identity (largest trace), i.e. the
    map that leaves unconstrained directions where they are, as ``none`` (no map) does. On full
    rank data it is the usual ``U Vᵀ`` (scipy's ``orthogonal_procrustes``).
    """
    import torch

    # torch's LAPACK is several times faster than numpy's here; float64 keeps W orthogonal.
    product = torch.from_numpy(np.ascontiguousarray(source.T @ target, dtype=np.float64))
    # One thread: faster wherever the cores are shared (2 threads: 11.8 s per SVD at load 10 on
    # 2 cores; 1 thread: 1.0 s), and the same bits whatever threads the executor runs with.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        u, sigma, vt = torch.linalg.svd(product)
        tolerance = sigma[0] * max(product.shape) * torch.finfo(sigma.dtype).eps
        rank = int((sigma > tolerance).sum())
        weights = u[:, :rank] @ vt[:rank]
        if rank < len(sigma):
            # Free source directions go to free target directions by the orthogonal map
            # nearest the identity: the polar factor of the identity between the two null
            # spaces, U_⊥ (A Bᵀ) V_⊥ᵀ with A S Bᵀ the SVD of U_⊥ᵀ V_⊥. Which bases LAPACK picks
            # for the null spaces does not change it.
            free_u, free_v = u[:, rank:], vt[rank:].T
            a, _, bt = torch.linalg.svd(free_u.T @ free_v)
            weights = weights + free_u @ (a @ bt) @ free_v.T
        return weights.numpy()
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Bootstrap:
    """PROC-B's result: the final map and the size of the dictionary each fit used."""

    weights: np.ndarray
    sizes: tuple[int, ...]
    dictionary: tuple[tuple[int, int], ...]


def _mutual(
    src: np.ndarray, trg: np.ndarray, w_st: np.ndarray, w_ts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (source rows, target rows, scores) of the mutual pairs of unit-row ``src``, ``trg``."""
    forward = unit_rows(src @ w_st) @ trg.T  # mapped source × target
    backward = unit_rows(trg @ w_ts) @ src.T  # mapped target × source
    nearest_target = forward.argmax(axis=1)
    nearest_source = backward.argmax(axis=1)
    sources = np.flatnonzero(nearest_source[nearest_target] == np.arange(len(src)))
    targets = nearest_target[sources]
    return sources, targets, (forward[sources, targets] + backward[targets, sources]) / 2


def mutual_neighbours(
    source: np.ndarray, target: np.ndarray, w_st: np.ndarray, w_ts: np.ndarray
) -> list[tuple[int, int, float]]:
    """Return (source, target, score) for every mutual nearest-neighbour pair under both maps.

    Source rows mapped by ``w_st`` look for their nearest target, target rows mapped by ``w_ts``
    for their nearest source (cosine); a pair is mutual when each is the other's choice. Its
    score is the mean of the two cosines.
    """
    found = _mutual(unit_rows(source), unit_rows(target), w_st, w_ts)
    return [(int(s), int(t), float(v)) for s, t, v in zip(*found, strict=True)]


def bootstrap_procrustes(
    source: np.ndarray,
    target: np.ndarray,
    seed: Sequence[tuple[int, int]],
    growth: float = 1.5,
    limit: int = 10_000,
    first: np.ndarray | None = None,
) -> Bootstrap:
    """Return PROC-B's map from the rows of ``source`` to those of ``target``, grown from ``seed``.

    Each round fits PROC in both directions on the current dictionary; stops when that dictionary
    is less than 1 % larger than the previous round's or has reached ``limit``; otherwise the next
    dictionary is the top ``min(int(growth · |D|), limit)`` mutual nearest neighbours (all rows of
    both sides are candidates), as xling-eval's ``project_proc_bootstrap`` does. xling-eval ranks
    candidates by the sum of their words' frequency ranks; entries here have no frequencies, so
    candidates are ranked by their mean cosine (most confident first, ties by source row).
    ``first`` is PROC's fit on ``seed`` when the caller has it already (it is round one's map).
    """
    dictionary = tuple(dict.fromkeys((int(s), int(t)) for s, t in seed))
    if not dictionary:
        raise UserError("seed dictionary", "is empty", "give PROC-B at least one seed pair")
    src, trg = unit_rows(source), unit_rows(target)  # once: every round compares unit rows
    sizes: list[int] = []
    previous = 0
    while True:
        if first is not None and not sizes:
            w_st = first
        else:
            s_rows, t_rows = (np.array(side) for side in zip(*dictionary, strict=True))
            w_st = procrustes(source[s_rows], target[t_rows])
        sizes.append(len(dictionary))
        if len(dictionary) < 1.01 * previous or len(dictionary) >= limit:
            return Bootstrap(w_st, tuple(sizes), dictionary)
        previous = len(dictionary)
        w_ts = w_st.T  # PROC from target to source on the same pairs is the transpose
        sources, targets, scores = _mutual(src, trg, w_st, w_ts)
        if not len(sources):  # nothing to grow from: keep this round's map
            return Bootstrap(w_st, tuple(sizes), dictionary)
        order = np.lexsort((sources, -scores))  # most confident first, ties by source row
        keep = order[: min(int(growth * len(dictionary)), limit)]
        dictionary = tuple(zip(sources[keep].tolist(), targets[keep].tolist(), strict=True))
