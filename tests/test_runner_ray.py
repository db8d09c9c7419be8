"""The Ray executor on a real local Ray instance gives exactly the local executor's results."""

from __future__ import annotations

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
            {k: (s.acc, s.acc_norm, s.provenance["adapter_hash"]) for k, s in scores.items()},
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
