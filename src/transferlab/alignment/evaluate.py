"""Bilingual lexicon induction on representations: every method × retrieval for one pair, layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transferlab.alignment.dictionaries import BilingualDictionary
from transferlab.alignment.mapping import bootstrap_procrustes, normalize, procrustes
from transferlab.alignment.retrieval import (
    RETRIEVALS,
    bli_scores,
    gold_ranks,
    similarity_matrices,
)
from transferlab.errors import UserError

METHODS = ("none", "proc", "proc_b")


def check_choices(methods: Sequence[str], retrievals: Sequence[str]) -> None:
    """Raise UserError for an unknown method or retrieval."""
    for name, given, known in (
        ("--method", methods, METHODS),
        ("--retrieval", retrievals, RETRIEVALS),
    ):
        for value in given:
            if value not in known:
                raise UserError(name, f"unknown {name[2:]} {value!r}", f"use {', '.join(known)}")


@dataclass(frozen=True)
class Space:
    """One language's entries at one layer, ready for induction: normalised rows with a vector."""

    vectors: np.ndarray  # normalised rows of the entries that have a vector
    position: dict[int, int]  # entry index → row of ``vectors``


def prepare_space(vectors: np.ndarray, steps: Sequence[str] = ("unit", "center", "unit")) -> Space:
    """Return the entries of ``vectors`` that have one (no NaN), normalised by ``steps``.

    A space depends on its language alone, so one serves every pair that language is part of.
    """
    rows = np.flatnonzero(~np.isnan(vectors).any(axis=1))
    return Space(normalize(vectors[rows], steps), {int(r): k for k, r in enumerate(rows)})


def induce(
    dictionary: BilingualDictionary,
    source: np.ndarray,
    target: np.ndarray,
    methods: Sequence[str] = METHODS,
    retrievals: Sequence[str] = RETRIEVALS,
    steps: Sequence[str] = ("unit", "center", "unit"),
) -> list[dict[str, object]]:
    """Return one row per (method, retrieval): p1, p5, p10, mrr, n_test, n_dropped.

    ``source`` / ``target`` hold one vector per entry of each side (NaN rows: entries without
    tokens). Test pairs with such an entry are dropped and counted, as xling-eval drops pairs
    whose word is missing from the vocabulary; the retrieval vocabulary is every target entry
    that has a vector.
    """
    spaces = prepare_space(source, steps), prepare_space(target, steps)
    return induce_spaces(dictionary, *spaces, methods, retrievals)


def induce_spaces(
    dictionary: BilingualDictionary,
    source: Space,
    target: Space,
    methods: Sequence[str] = METHODS,
    retrievals: Sequence[str] = RETRIEVALS,
) -> list[dict[str, object]]:
    """Return ``induce``'s rows for two prepared spaces."""
    xs, xt = source.vectors, target.vectors
    src_pos, trg_pos = source.position, target.position

    def usable(pairs):
        return [(src_pos[s], trg_pos[t]) for s, t in pairs if s in src_pos and t in trg_pos]

    seed, test = usable(dictionary.train), usable(dictionary.test)
    if not test:
        raise UserError(dictionary.origin, "no usable test pairs", "give a non-empty test split")
    queries = np.array([s for s, _ in test])
    gold = np.array([t for _, t in test])
    proc = None  # PROC's map, fitted once: a method of its own and PROC-B's first round
    rows = []
    for method in methods:
        if method == "none":
            mapped = xs
        elif not seed:
            raise UserError(dictionary.origin, f"{method} needs seed pairs", "add train pairs")
        else:
            if proc is None:
                s_idx, t_idx = (np.array(side) for side in zip(*seed, strict=True))
                proc = procrustes(xs[s_idx], xt[t_idx])
            if method == "proc":
                mapped = xs @ proc
            else:  # PROC-B dedupes its seed; its first round is PROC only if nothing repeats
                first = proc if len(set(seed)) == len(seed) else None
                mapped = xs @ bootstrap_procrustes(xs, xt, seed, first=first).weights
        scores = similarity_matrices(mapped[queries], xt, retrievals, all_queries=mapped)
        for retrieval in retrievals:
            rows.append(
                {"method": method, "retrieval": retrieval}
                | bli_scores(gold_ranks(scores[retrieval], gold))
                | {"n_test": len(test), "n_dropped": len(dictionary.test) - len(test)}
            )
    return rows
