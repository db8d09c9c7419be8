"""The store's alignment tables: one row per alignment job, one per (pair, layer, method, retrieval).

Kept apart from ``store.py``, which creates these tables with its own; the align kind commits
its rows with ``Store.commit_with`` (in the transaction that marks the job done) and reads
them with ``Store.read``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS alignment_jobs (
    job_key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    provenance TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alignment (
    job_key TEXT NOT NULL REFERENCES alignment_jobs (job_key),
    source_language TEXT NOT NULL,
    target_language TEXT NOT NULL,
    layer INTEGER NOT NULL,
    method TEXT NOT NULL,
    retrieval TEXT NOT NULL,
    p1 REAL NOT NULL,
    p5 REAL NOT NULL,
    p10 REAL NOT NULL,
    mrr REAL NOT NULL,
    n_test INTEGER NOT NULL,
    PRIMARY KEY (job_key, source_language, target_language, layer, method, retrieval)
);
"""
ROW_FIELDS = (
    "source_language", "target_language", "layer", "method", "retrieval",
    "p1", "p5", "p10", "mrr", "n_test",
)  # fmt: skip


def insert_alignment(
    db: sqlite3.Connection,
    key: str,
    model: str,
    state: str,
    rows: Iterable[dict[str, Any]],
    provenance: dict[str, Any],
) -> None:
    """Insert one alignment job's record and its rows (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO alignment_jobs (job_key, model, state, provenance) VALUES (?, ?, ?, ?)",
        (key, model, state, json.dumps(provenance, sort_keys=True)),
    )
    db.executemany(
        f"INSERT INTO alignment (job_key, {', '.join(ROW_FIELDS)}) VALUES (?{', ?' * 10})",
        [(key, *(row[f] for f in ROW_FIELDS)) for row in rows],
    )


def alignment_keys(db: sqlite3.Connection) -> set[str]:
    """Return the keys of the committed alignment jobs."""
    return {key for (key,) in db.execute("SELECT job_key FROM alignment_jobs")}


def alignment_rows(db: sqlite3.Connection, keys: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Return the committed rows of the given alignment jobs, by job key, in insertion order."""
    wanted = set(keys)
    found: dict[str, list[dict[str, Any]]] = {key: [] for key in wanted}
    query = f"SELECT job_key, {', '.join(ROW_FIELDS)} FROM alignment ORDER BY rowid"
    for key, *values in db.execute(query):
        if key in wanted:
            found[key].append(dict(zip(ROW_FIELDS, values, strict=True)))
    return {key: rows for key, rows in found.items() if rows}
