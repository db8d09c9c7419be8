"""SIGKILL `transferlab run` at random moments: every rerun continues, and the final results
equal an uninterrupted run's exactly."""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from study_tiny import write_study
from transferlab.runner import run_study
from transferlab.scoring import adapter_hash
from transferlab.store import DB_NAME, Store

# Two epochs, so a kill can land after an epoch's checkpoint and the rerun resumes from it.
HEAVIER = {
    "training": {
        "epochs": 2,
        "lora_r": 4,
        "lora_alpha": 8,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "dtype": "float32",
        "min_train_items": 4,
        "max_length": 128,
    }
}


def _cli_run(study: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, "-c", "from transferlab.cli import main; main()", "run", str(study)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _snapshot(out: Path) -> dict:
    store = Store(out)
    try:
        scores = store.scores()
        items = dict(store.items(scores))
        adapters = {k: (folder, digest) for k, (folder, digest, _) in store.adapters().items()}
        return {
            "scores": {
                k: (s.n, s.metrics["acc"], s.metrics["acc_norm"], s.provenance)
                for k, s in scores.items()
            },
            "items": items,
            "adapters": adapters,
            "events": store.events(),
            "jobs": store.jobs(),
            "integrity": store.integrity_check(),
        }
    finally:
        store.close()


def test_sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_run(tmp_path, tiny_model_dir):
    reference_study = write_study(tmp_path / "reference", tiny_model_dir, **HEAVIER)
    assert run_study(reference_study, progress=False).failed == 0
    reference = _snapshot(tmp_path / "reference" / "out")

    study = write_study(tmp_path / "killed", tiny_model_dir, **HEAVIER)
    out = tmp_path / "killed" / "out"
    rng = random.Random(20261123)
    kills = []
    for _ in range(5):
        run = _cli_run(study)
        deadline = time.monotonic() + 120
        while not (out / DB_NAME).exists() and run.poll() is None:
            assert time.monotonic() < deadline, "the run never opened its store"
            time.sleep(0.05)
        delay = rng.uniform(0.0, 2.5)
        time.sleep(delay)
        if run.poll() is not None:  # it finished before the kill
            break
        run.send_signal(signal.SIGKILL)
        run.wait()
        kills.append(round(delay, 2))
    assert kills, "no run was killed; the study finished too fast to test anything"

    final = _cli_run(study)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, f"kills at {kills}: {err.decode()[-2000:]}"
    after = _snapshot(out)

    assert after["integrity"] == "ok"
    assert after["scores"] == reference["scores"], f"kills at {kills}"
    assert after["items"] == reference["items"], f"kills at {kills}"  # log-likelihoods exact
    assert {k: d for k, (_, d) in after["adapters"].items()} == {
        k: d for k, (_, d) in reference["adapters"].items()
    }
    for folder, digest in after["adapters"].values():  # what is committed is what is on disk
        assert adapter_hash(folder) == digest
    assert not list((out / "adapters" / ".staging").glob("*/adapter"))
    # No job started again once committed, and each committed exactly once.
    committed: set[str] = set()
    for key, event, _, _ in after["events"]:
        assert not (event == "start" and key in committed), f"{key} ran after its commit"
        if event == "commit":
            assert key not in committed
            committed.add(key)
    assert committed == set(after["jobs"]) and all(
        r.status == "done" for r in after["jobs"].values()
    )
    for name in ("results_per_seed.csv", "results.csv"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / "out" / name).read_bytes()
    with (
        gzip.open(out / "items.csv.gz") as a,
        gzip.open(tmp_path / "reference/out/items.csv.gz") as b,
    ):
        assert a.read() == b.read()
