"""A study's durable state: SQLite (WAL) job records, leases, scores, per-item results, adapters.

A job is done only when its results and its ``done`` status are committed in one transaction.
Two processes running the same study coordinate through leases on job rows: a lease names its
holder (host, pid, process start time) and expires unless renewed, so a killed holder's jobs are
taken over at once on the same host and after ``LEASE_S`` elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from transferlab.errors import UserError
from transferlab.owners import current_owner, owner_is_dead
from transferlab.records import JobRecord, UnitScore, pack_items, unpack_items
from transferlab.store_alignment import SCHEMA as ALIGNMENT_SCHEMA

log = logging.getLogger(__name__)
T = TypeVar("T")

# The records and the lease-holder functions are part of the store's interface, wherever defined.
__all__ = [
    "DB_NAME",
    "LEASE_S",
    "JobRecord",
    "Store",
    "UnitScore",
    "current_owner",
    "owner_is_dead",
    "pack_items",
    "unpack_items",
]

DB_NAME = "transferlab.sqlite"
LEASE_S = 120.0  # a holder renews every LEASE_S / 4; a silent one is presumed dead after this
# The layout version, in SQLite's user_version. 0 with an ``acc`` column in ``scores`` is the
# first layout (scores fixed to acc / acc_norm), which this version refuses rather than misreads.
STORE_FORMAT = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    owner TEXT,
    lease_expires REAL,
    host TEXT,
    started_at REAL,
    finished_at REAL,
    wall_s REAL,
    units TEXT
);
CREATE TABLE IF NOT EXISTS job_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL,
    event TEXT NOT NULL,
    owner TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS adapters (
    train_key TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    adapter_hash TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    unit_key TEXT PRIMARY KEY,
    job_key TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    task TEXT NOT NULL,
    language TEXT NOT NULL,
    n INTEGER NOT NULL,
    provenance TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unit_metrics (
    unit_key TEXT NOT NULL REFERENCES scores (unit_key),
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (unit_key, metric)
);
CREATE TABLE IF NOT EXISTS items (
    unit_key TEXT PRIMARY KEY REFERENCES scores (unit_key),
    payload BLOB NOT NULL
);
"""


class Store:
    """The SQLite store and artifact folders of one study output directory."""

    def __init__(self, out_dir: Path, owner: str | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.owner = owner or current_owner()
        self.path = self.out_dir / DB_NAME
        self._db = self._connect()
        self._check_format()
        self._db.executescript(
            SCHEMA + ALIGNMENT_SCHEMA
        )  # idempotent; executescript manages its own transaction
        self._db.execute(f"PRAGMA user_version = {STORE_FORMAT}")
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()

    @classmethod
    def open_existing(cls, out_dir: Path) -> Store | None:
        """Return the store of ``out_dir`` if a study ran there, else None (nothing created)."""
        return cls(out_dir) if (Path(out_dir) / DB_NAME).exists() else None

    def _check_format(self) -> None:
        """Raise UserError (closing the database) for a store in a layout this version lacks."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(scores)")}
        if version in (0, STORE_FORMAT) and "acc" not in columns:
            return
        self._db.close()
        found = (
            "the first store layout (scores as acc/acc_norm columns)"
            if version == 0
            else (f"store format {version}")
        )
        raise UserError(
            self.path,
            f"written by another transferlab version ({found}); this one reads format "
            f"{STORE_FORMAT}",
            "rerun the study into a new --out (or delete this folder and rerun)",
        )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        deadline = time.monotonic() + 60
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as error:
                # Runs opening a new database at once: SQLite answers one of them "locked"
                # at once, without waiting out the busy timeout, while the other switches the
                # file to WAL. Waiting a moment and asking again is then enough.
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=60000")
        return db

    @contextmanager
    def _write(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so read-then-update is race free.
        db = db or self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Stop renewing leases and close the database."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        self._db.close()

    # --- leases ---------------------------------------------------------------------------------

    def claim(self, key: str, kind: str, label: str, units: Iterable[str] = ()) -> str:
        """Try to take job ``key``: return "claimed", "done" or "busy" (a live owner holds it)."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT status, owner, lease_expires FROM jobs WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                status, owner, expires = row
                if status == "done":
                    return "done"
                if status == "running" and owner != self.owner:
                    if expires > now and not owner_is_dead(owner):
                        return "busy"
                    self._event(db, key, "takeover", f"from {owner}")
            db.execute(
                """INSERT INTO jobs (key, kind, label, status, attempts, owner, lease_expires,
                                     host, started_at, units)
                   VALUES (?, ?, ?, 'running', 1, ?, ?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET status = 'running',
                       attempts = attempts + 1, error = NULL, owner = excluded.owner,
                       lease_expires = excluded.lease_expires, host = excluded.host,
                       started_at = excluded.started_at, finished_at = NULL, wall_s = NULL""",
                (
                    key,
                    kind,
                    label,
                    self.owner,
                    now + LEASE_S,
                    socket.gethostname(),
                    now,
                    json.dumps(sorted(units)),
                ),
            )
            self._event(db, key, "start")
        self._ensure_heartbeat()
        return "claimed"

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._renew_leases, daemon=True)
            self._heartbeat.start()

    def _renew_leases(self) -> None:
        db = self._connect()
        try:
            while not self._stop.wait(LEASE_S / 4):
                db.execute(
                    "UPDATE jobs SET lease_expires = ? WHERE owner = ? AND status = 'running'",
                    (time.time() + LEASE_S, self.owner),
                )
        finally:
            db.close()

    def fail(self, key: str, error: str) -> None:
        """Record that this process's attempt at ``key`` failed with ``error``."""
        now = time.time()
        with self._write() as db:
            db.execute(
                """UPDATE jobs SET status = 'failed', error = ?, owner = NULL,
                       finished_at = ?, wall_s = ? - started_at
                   WHERE key = ? AND owner = ? AND status = 'running'""",
                (error, now, now, key, self.owner),
            )
            self._event(db, key, "fail", error)

    def release(self, key: str) -> None:
        """Give up a lease without an outcome (the run was interrupted)."""
        with self._write() as db:
            db.execute(
                """UPDATE jobs SET status = 'failed', error = 'interrupted', owner = NULL
                   WHERE key = ? AND owner = ? AND status = 'running'""",
                (key, self.owner),
            )

    def _event(self, db: sqlite3.Connection, key: str, event: str, detail: str = "") -> None:
        db.execute(
            "INSERT INTO job_events (job_key, event, owner, at, detail) VALUES (?, ?, ?, ?, ?)",
            (key, event, self.owner, time.time(), detail),
        )

    @contextmanager
    def _commit_job(self, key: str) -> Iterator[sqlite3.Connection | None]:
        """Yield a transaction for ``key``'s results, or None if the job is no longer ours."""
        with self._write() as db:
            row = db.execute("SELECT status, owner FROM jobs WHERE key = ?", (key,)).fetchone()
            if row is None or row[0] != "running" or row[1] != self.owner:
                log.warning("job %s was taken over by %s; its results are dropped", key, row)
                yield None
                return
            yield db
            now = time.time()
            db.execute(
                """UPDATE jobs SET status = 'done', error = NULL, owner = NULL,
                       finished_at = ?, wall_s = ? - started_at WHERE key = ?""",
                (now, now, key),
            )
            self._event(db, key, "commit")

    # --- artifacts ------------------------------------------------------------------------------

    def adapter_dir(self, relative: str) -> Path:
        """Return where the adapter named ``relative`` lives once installed."""
        return self.out_dir / "adapters" / relative

    def staging_dir(self, key: str) -> Path:
        """Return where job ``key`` builds its artifact before it is installed.

        Only the lease holder writes there; a fixed place per job lets training resume from
        the checkpoints an interrupted holder left.
        """
        return self.out_dir / "adapters" / ".staging" / key

    def commit_adapter(
        self, key: str, staged: Path, relative: str, adapter_hash: str, metadata: dict[str, Any]
    ) -> bool:
        """Move a complete staged adapter into place and mark training job ``key`` done."""
        final = self.adapter_dir(relative)
        with self._commit_job(key) as db:
            if db is None:
                return False
            # A folder already there was installed by a run killed before its commit: the
            # same key means the same content, but only the committed copy is trusted.
            if final.exists():
                shutil.rmtree(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
            db.execute(
                "INSERT INTO adapters (train_key, path, adapter_hash, metadata) VALUES (?,?,?,?)",
                (key, relative, adapter_hash, json.dumps(metadata, sort_keys=True)),
            )
        shutil.rmtree(self.staging_dir(key), ignore_errors=True)  # checkpoints, now unneeded
        return True

    def adapters(self) -> dict[str, tuple[Path, str, dict[str, Any]]]:
        """Return committed adapters: training key → (folder, adapter hash, metadata)."""
        rows = self._db.execute("SELECT train_key, path, adapter_hash, metadata FROM adapters")
        return {k: (self.adapter_dir(p), h, json.loads(m)) for k, p, h, m in rows}

    # --- scores ---------------------------------------------------------------------------------

    def commit_scores(self, key: str, scores: Iterable[UnitScore], items: dict[str, bytes]) -> bool:
        """Store the unit scores and packed items of evaluation job ``key`` and mark it done."""
        with self._commit_job(key) as db:
            if db is None:
                return False
            for s in scores:
                db.execute(
                    """INSERT INTO scores (unit_key, job_key, model, state, task, language, n,
                                           provenance)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        s.unit_key,
                        key,
                        s.model,
                        s.state,
                        s.task,
                        s.language,
                        s.n,
                        json.dumps(s.provenance, sort_keys=True),
                    ),
                )
                db.executemany(
                    "INSERT INTO unit_metrics (unit_key, metric, value) VALUES (?, ?, ?)",
                    [(s.unit_key, name, value) for name, value in s.metrics.items()],
                )
                db.execute(
                    "INSERT INTO items (unit_key, payload) VALUES (?, ?)",
                    (s.unit_key, items[s.unit_key]),
                )
        return True

    def scores(self) -> dict[str, UnitScore]:
        """Return every committed unit score by unit key."""
        metrics: dict[str, dict[str, float]] = {}
        for unit, name, value in self._db.execute(
            "SELECT unit_key, metric, value FROM unit_metrics ORDER BY rowid"
        ):
            metrics.setdefault(unit, {})[name] = value
        rows = self._db.execute(
            "SELECT unit_key, model, state, task, language, n, provenance FROM scores"
        )
        return {
            r[0]: UnitScore(*r[:6], metrics=metrics.get(r[0], {}), provenance=json.loads(r[6]))
            for r in rows
        }

    def items(self, unit_keys: Iterable[str]) -> Iterator[tuple[str, dict[str, list]]]:
        """Yield (unit key, per-item columns) for the given units."""
        for key in unit_keys:
            row = self._db.execute("SELECT payload FROM items WHERE unit_key = ?", (key,))
            payload = row.fetchone()
            if payload is not None:
                yield key, unpack_items(payload[0])

    # --- kinds with tables of their own (store_alignment.py) ---------------------------------

    def commit_with(self, key: str, insert: Callable[[sqlite3.Connection], None]) -> bool:
        """Run ``insert`` in the transaction that marks job ``key`` done; False if not ours."""
        with self._commit_job(key) as db:
            if db is None:
                return False
            insert(db)
        return True

    def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Return what ``query`` reads from the store's connection."""
        return query(self._db)

    # --- reading --------------------------------------------------------------------------------

    def jobs(self) -> dict[str, JobRecord]:
        """Return every job record by key."""
        rows = self._db.execute(
            "SELECT key, kind, label, status, attempts, error, owner, host, wall_s, units FROM jobs"
        )
        return {r[0]: JobRecord(*r[:9], tuple(json.loads(r[9] or "[]"))) for r in rows}

    def unit_jobs(self) -> dict[str, str]:
        """Return the evaluation job that committed each scored unit."""
        return dict(self._db.execute("SELECT unit_key, job_key FROM scores"))

    def events(self) -> list[tuple[str, str, str, float]]:
        """Return the job event log as (job key, event, owner, time), oldest first."""
        return list(
            self._db.execute("SELECT job_key, event, owner, at FROM job_events ORDER BY id")
        )

    def integrity_check(self) -> str:
        """Return SQLite's integrity verdict ("ok" when sound)."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]
