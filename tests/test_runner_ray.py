"""The Ray executor on a real local Ray instance gives exactly the local executor's results."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from study_tiny import write_study
from transferlab.runner import run_study
from transferlab.store import Store

pytestmark = pytest.mark.ray


def _results(out):
    store = Store(out)
    try:
        scores = store.scores()
        return (
            {
                k: (s.metrics["acc"], s.metrics["acc_norm"], s.provenance["adapter_hash"])
                for k, s in scores.items()
            },
            dict(store.items(scores)),
            sorted(store.adapters()),
        )
    finally:
        store.close()


def test_ray_executor_results_equal_the_local_executors(tmp_path, tiny_model_dir):
    ray = pytest.importorskip("ray")
    local = write_study(tmp_path / "local", tiny_model_dir)
    assert run_study(local, progress=False).failed == 0

    remote = write_study(tmp_path / "ray", tiny_model_dir)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = run_study(remote, executor="ray", progress=False)
        assert ray.is_initialized()  # the runner leaves a Ray it did not start running
    finally:
        ray.shutdown()
    assert outcome.failed == 0

    assert _results(tmp_path / "ray" / "out") == _results(tmp_path / "local" / "out")
    per_seed = {
        name: pd.read_csv(tmp_path / name / "out" / "results_per_seed.csv")
        for name in ("local", "ray")
    }
    pd.testing.assert_frame_equal(per_seed["ray"], per_seed["local"])
    store = Store(tmp_path / "ray" / "out")
    try:
        hosts = {r.host for r in store.jobs().values()}
        assert all(r.status == "done" for r in store.jobs().values()) and len(hosts) == 1
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_cli(study: Path, address: str, **env: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "transferlab"), "run", str(study)]
    command += ["--executor", "ray", "--set", f"executor.address={address}"]
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )


def test_an_unreachable_cluster_address_is_one_line_and_writes_nothing(tmp_path, tiny_model_dir):
    study = write_study(tmp_path, tiny_model_dir)
    done = _run_cli(study, f"127.0.0.1:{_free_port()}")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "executor.address: cannot reach" in done.stderr
    assert not (tmp_path / "out").exists()


def test_ray_executor_joins_an_existing_cluster_by_its_address(tmp_path, tiny_model_dir):
    """`executor.address` joins a running cluster (a `ray start --head` beside us, with token
    authentication): without the token one clear line, with it the whole study."""
    pytest.importorskip("ray")
    port, token = _free_port(), uuid.uuid4().hex
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    log = tmp_path / "head.log"
    ray_cli = Path(sys.executable).parent / "ray"
    # Ray's socket paths must stay under 108 bytes: pytest's tmp_path is too deep for them.
    session_dir = tempfile.mkdtemp(prefix="tl-ray-", dir="/tmp")
    env = {**os.environ, **auth, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}  # stop at once
    with log.open("w") as out:
        head = subprocess.Popen(
            [str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", f"--temp-dir={session_dir}", "--block"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        study = write_study(tmp_path / "study", tiny_model_dir)
        address = f"127.0.0.1:{port}"
        refused = _run_cli(study, address, RAY_AUTH_MODE="disabled")
        joined = _run_cli(study, address, **auth)
    finally:
        head.terminate()  # `--block` stops every process it started when it is terminated
        head.wait(timeout=60)
        shutil.rmtree(session_dir, ignore_errors=True)
    assert refused.returncode == 2, refused.stderr[-2000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: executor.address: cannot join") and "token" in last
    assert joined.returncode == 0, joined.stderr[-2000:]
    store = Store(tmp_path / "study" / "out")
    try:
        assert {r.status for r in store.jobs().values()} == {"done"}
        assert len(store.adapters()) == 4
    finally:
        store.close()
    assert (tmp_path / "study" / "out" / "results.csv").exists()
