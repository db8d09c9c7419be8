"""The store: leases between runs, atomic commits, exact per-item round trips."""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transferlab.store import Store, UnitScore, owner_is_dead, pack_items, unpack_items


def _score(unit: str, value: float = 0.5) -> UnitScore:
    return UnitScore(
        unit,
        "tiny",
        "base",
        "alpha",
        "en",
        4,
        {"acc": value, "acc_norm": value},
        {"model_hash": "m"},
    )


def test_a_job_is_claimed_once_and_done_only_after_its_results_commit(tmp_path):
    holder = Store(tmp_path)  # this process: alive
    other = Store(tmp_path, owner="other-host|1|0")
    try:
        assert holder.claim("job", "evaluate", "label", ["u1"]) == "claimed"
        assert other.claim("job", "evaluate", "label") == "busy"  # a live holder keeps it
        assert other.jobs()["job"].status == "running"
        assert other.jobs()["job"].units == ("u1",)
        assert other.scores() == {}
        assert holder.commit_scores("job", [_score("u1")], {"u1": pack_items({"doc_id": []})})
        assert other.jobs()["job"].status == "done"
        assert other.scores()["u1"].metrics["acc"] == 0.5
        assert other.claim("job", "evaluate", "label") == "done"
        assert [e[1] for e in other.events()] == ["start", "commit"]
    finally:
        holder.close()
        other.close()


def test_a_dead_holders_lease_is_taken_over_and_its_late_commit_dropped(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    ghost = f"{socket.gethostname()}|{dead}|0"
    assert owner_is_dead(ghost)
    ghost_store = Store(tmp_path, owner=ghost)
    live = Store(tmp_path)
    try:
        assert ghost_store.claim("job", "train", "label") == "claimed"
        assert live.claim("job", "train", "label") == "claimed"  # at once: the pid is gone
        assert live.jobs()["job"].attempts == 2
        # The presumed-dead holder finishing late must not overwrite the new holder's work.
        assert not ghost_store.commit_scores("job", [_score("u1")], {"u1": b""})
        assert live.scores() == {}
        assert [e[1] for e in live.events()] == ["start", "takeover", "start"]
    finally:
        ghost_store.close()
        live.close()


def test_a_lease_from_another_host_is_respected_until_it_expires(tmp_path):
    other = Store(tmp_path, owner="other-host|123|0")
    here = Store(tmp_path)
    try:
        assert other.claim("job", "train", "label") == "claimed"
        assert here.claim("job", "train", "label") == "busy"
        here._db.execute("UPDATE jobs SET lease_expires = ?", (time.time() - 1,))
        assert here.claim("job", "train", "label") == "claimed"
    finally:
        other.close()
        here.close()


def test_a_failed_job_keeps_its_reason_and_can_be_claimed_again(tmp_path):
    store = Store(tmp_path)
    try:
        store.claim("job", "train", "train x")
        store.fail("job", "NonFiniteLoss: loss is nan at step 2")
        record = store.jobs()["job"]
        assert (record.status, record.error, record.attempts) == (
            "failed",
            "NonFiniteLoss: loss is nan at step 2",
            1,
        )
        assert store.claim("job", "train", "train x") == "claimed"
        assert store.jobs()["job"].attempts == 2
    finally:
        store.close()


def _claim_all(out_dir: str, keys: list[str], queue) -> None:
    store = Store(out_dir)
    won = [key for key in keys if store.claim(key, "train", key) == "claimed"]
    queue.put(won)
    time.sleep(0.5)  # stay alive so the leases stay valid while the others try
    store.close()


def test_concurrent_processes_never_claim_the_same_job(tmp_path):
    keys = [f"job{i}" for i in range(40)]
    Store(tmp_path).close()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_claim_all, args=(str(tmp_path), keys, queue)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    won = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    claimed = [key for keys_won in won for key in keys_won]
    assert sorted(claimed) == sorted(keys)  # every job once, none twice


def _open_new_store(out: str, start: object, queue: object) -> None:
    import random

    start.wait()
    time.sleep(random.random() * 0.02)  # spread the openings over the moment WAL is switched on
    try:
        Store(Path(out)).close()
        queue.put("ok")
    except Exception as error:  # reported, whatever it is
        queue.put(repr(error))


def test_runs_creating_the_database_at_once_all_open_it(tmp_path):
    """Two `run`s started together on a new output directory must both get the store."""
    context = multiprocessing.get_context("fork")
    failures = []
    for trial in range(60):
        start, queue = context.Barrier(6), context.Queue()
        out = str(tmp_path / f"out{trial}")
        workers = [
            context.Process(target=_open_new_store, args=(out, start, queue)) for _ in range(6)
        ]
        for worker in workers:
            worker.start()
        outcomes = [queue.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        failures += [o for o in outcomes if o != "ok"]
    assert failures == []


def test_items_round_trip_exactly_and_the_database_is_sound(tmp_path):
    items = {
        "doc_id": ["a", "b"],
        "gold": [0, 3],
        "loglikelihoods": [[-1.2345678901234567, -0.1], [-3.0000000000000004, -2.5]],
        "acc": [1, 0],
        "acc_norm": [1, 1],
    }
    assert unpack_items(pack_items(items)) == items
    store = Store(tmp_path)
    try:
        store.claim("job", "evaluate", "label", ["u1"])
        store.commit_scores("job", [_score("u1")], {"u1": pack_items(items)})
        assert dict(store.items(["u1"])) == {"u1": items}
        assert store.integrity_check() == "ok"
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        store.close()


def test_a_second_commit_of_the_same_unit_is_refused(tmp_path):
    store = Store(tmp_path)
    try:
        store.claim("a", "evaluate", "a", ["u1"])
        store.commit_scores("a", [_score("u1")], {"u1": b""})
        store.claim("b", "evaluate", "b", ["u1"])
        import sqlite3

        with pytest.raises(sqlite3.IntegrityError):
            store.commit_scores("b", [_score("u1", 0.9)], {"u1": b""})
        assert store.scores()["u1"].metrics["acc"] == 0.5
        assert store.jobs()["b"].status == "running"  # rolled back as a whole
    finally:
        store.close()


def test_scores_keep_every_metric_in_a_long_table(tmp_path):
    score = UnitScore("u1", "tiny", "base", "alpha", "en", 4, {"acc": 0.25, "chrf": 41.5}, {})
    store = Store(tmp_path)
    store.claim("job", "evaluate", "label", ["u1"])
    committed = store.commit_scores("job", [score], {"u1": pack_items({"doc_id": []})})
    metrics = store.scores()["u1"].metrics
    rows = store._db.execute("SELECT metric, value FROM unit_metrics ORDER BY metric").fetchall()
    store.close()
    assert committed
    assert metrics == {"acc": 0.25, "chrf": 41.5}
    assert rows == [("acc", 0.25), ("chrf", 41.5)]


def test_a_store_of_the_first_layout_is_refused_in_one_line(tmp_path):
    import sqlite3

    from transferlab.errors import UserError

    db = sqlite3.connect(tmp_path / "transferlab.sqlite")
    db.execute(
        "CREATE TABLE scores (unit_key TEXT PRIMARY KEY, job_key TEXT, model TEXT, state TEXT, "
        "task TEXT, language TEXT, n INTEGER, acc REAL, acc_norm REAL, provenance TEXT)"
    )
    db.commit()
    db.close()
    with pytest.raises(UserError) as refused:
        Store(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path / 'transferlab.sqlite'}: written by another transferlab version (the first "
        "store layout (scores as acc/acc_norm columns)); this one reads format 2 — rerun the "
        "study into a new --out (or delete this folder and rerun)"
    )
