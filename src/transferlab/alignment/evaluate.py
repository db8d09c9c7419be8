"""Bilingual lexicon induction on representations: every method × retrieval for one pair, layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transferlab.alignment.dictionaries import BilingualDictionary
from transferlab.alignment.mapping import bootstrap_procrustes, normalize, procrustes
from transferlab.alignment.retrieval import RETRIEVALS, bli_scores, gold_ranks, similarity_matrix
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
    src_ok = ~np.isnan(source).any(axis=1)
    trg_ok = ~np.isnan(target).any(axis=1)
    src_rows, trg_rows = np.flatnonzero(src_ok), np.flatnonzero(trg_ok)
    src_pos = {int(r): k for k, r in enumerate(src_rows)}
    trg_pos = {int(r): k for k, r in enumerate(trg_rows)}
    xs = normalize(source[src_rows], steps)
    xt = normalize(target[trg_rows], steps)

    def usable(pairs):
        return [(src_pos[s], trg_pos[t]) for s, t in pairs if s in src_pos and t in trg_pos]

    seed, test = usable(dictionary.train), usable(dictionary.test)
    if not test:
        raise UserError(dictionary.origin, "no usable test pairs", "give a non-empty test split")
    queries = np.array([s for s, _ in test])
    gold = np.array([t for _, t in test])
    rows = []
    for method in methods:
        if method == "none":
            mapped = xs
        elif not seed:
            raise UserError(dictionary.origin, f"{method} needs seed pairs", "add train pairs")
        elif method == "proc":
            s_idx, t_idx = (np.array(side) for side in zip(*seed, strict=True))
            mapped = xs @ procrustes(xs[s_idx], xt[t_idx])
        else:
            mapped = xs @ bootstrap_procrustes(xs, xt, seed).weights
        for retrieval in retrievals:
            scores = similarity_matrix(mapped[queries], xt, retrieval, all_queries=mapped)
            rows.append(
                {"method": method, "retrieval": retrieval}
                | bli_scores(gold_ranks(scores, gold))
                | {"n_test": len(test), "n_dropped": len(dictionary.test) - len(test)}
            )
    return rows
