"""`transferlab run` end to end on a tiny study: exports, reruns, failures, growth, concurrency."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from study_tiny import write_study
from transferlab.cli import main
from transferlab.exports import ITEM_COLUMNS, PER_SEED_COLUMNS
from transferlab.grid import Cell
from transferlab.runner import run_study, study_status
from transferlab.store import Store


@pytest.fixture
def study(tmp_path, tiny_model_dir) -> Path:
    return write_study(tmp_path, tiny_model_dir, task_groups={"first": ["alpha"]})


def _starts(out: Path) -> list[str]:
    store = Store(out)
    try:
        return [key for key, event, _, _ in store.events() if event == "start"]
    finally:
        store.close()


def test_a_study_runs_to_the_end_and_writes_every_export(study):
    out = study.parent / "out"
    assert "nothing run yet — 4 training and 2 evaluation job(s) pending" in study_status(study)
    assert not out.exists()  # status writes nothing

    outcome = run_study(study, progress=False)
    assert outcome.failed == 0
    assert "Transfer by regime" in outcome.summary and "MT-CL" in outcome.summary

    per_seed = pd.read_csv(out / "results_per_seed.csv", keep_default_na=False)
    # beta's headline is acc, so its acc_norm comes as a further metric (blank on alpha)
    further = ["acc_norm", "acc_norm_base", "delta_acc_norm"]
    assert list(per_seed.columns) == PER_SEED_COLUMNS + further
    assert len(per_seed) == 4 * 4  # every source on every target
    assert per_seed.groupby("regime").size().to_dict() == {
        "CT-CL": 4,
        "CT-ML": 4,
        "MT-CL": 4,
        "MT-ML": 4,
    }
    delta = 100 * (per_seed["score_norm"] - per_seed["score_norm_base"])
    assert (delta - per_seed["delta_score_norm"]).abs().max() < 1e-9
    assert set(per_seed["headline_metric"]) == {"acc", "acc_norm"}  # beta reports letters/acc
    assert (per_seed["n_items"] == 6).all()
    labels = per_seed["fine_tuned_dataset"] + ":" + per_seed["fine_tuned_language"]
    assert (per_seed["source"] == labels).all()  # one cell: the source is its label
    assert (per_seed["source_parts"] == labels + "=1").all()

    from transferlab.scoring import adapter_hash

    store = Store(out)
    try:
        adapters = store.adapters()
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    assert len(adapters) == 4
    on_disk = {adapter_hash(folder) for folder, _, _ in adapters.values()}
    assert on_disk == set(per_seed["adapter_hash"]) == {h for _, h, _ in adapters.values()}
    assert not list((out / "adapters" / ".staging").glob("*"))  # nothing half-built left

    with gzip.open(out / "items.csv.gz", "rt", encoding="utf-8") as fh:
        items = pd.read_csv(fh, keep_default_na=False)
    assert list(items.columns) == ITEM_COLUMNS
    assert len(items) == 4 * 6 + 4 * 4 * 6  # base and every adapter on every target item
    assert (items.loc[items["fine_tuned_dataset"] == "", "seed"] == "").all()

    info = json.loads((out / "run_info.json").read_text())
    for key in ("study", "config", "models", "tasks", "languages", "seeds", "versions"):
        assert info[key]
    assert info["jobs"] == {"done": 6, "pending": 0, "failed": []}
    assert info["models"][0]["model_hash"] == per_seed["model_hash"][0]
    assert {t["task_hash"] for t in info["tasks"]} == set(per_seed["task_hash"])
    assert set(info["timings"]) >= {"prepare_s", "train_s", "evaluate_s", "analysis_s"}
    job_time = info["job_time_s"]
    assert set(job_time) == {"train", "evaluate"} and min(job_time.values()) > 0

    paper = pd.read_csv(out / "results.csv")
    assert len(paper) == 16 and {"delta_score_norm_mean", "n_seeds"} <= set(paper.columns)
    # the study's task groups split the report's analysis
    assert 'id="table-mtcl-task-group"' in (out / "report.html").read_text(encoding="utf-8")

    assert "complete: every job is done" in study_status(study)
    before = (out / "results_per_seed.csv").read_bytes()
    starts = _starts(out)
    again = run_study(study, progress=False)
    assert again.failed == 0 and "0 job(s) finished this run" in again.summary
    assert _starts(out) == starts  # nothing ran again
    assert (out / "results_per_seed.csv").read_bytes() == before
    # the rerun's run_info still says what the results cost, not the rerun's few seconds
    assert json.loads((out / "run_info.json").read_text())["job_time_s"] == job_time


def test_a_further_metric_is_exported_and_analysed_on_the_targets_that_report_it(study):
    from transferlab.analysis.command import read_results
    from transferlab.analysis.result import run_analysis

    out = study.parent / "out"
    run_study(study, progress=False)
    per_seed = pd.read_csv(out / "results_per_seed.csv")
    beta = per_seed["eval_dataset"] == "beta"
    assert per_seed.loc[~beta, "delta_acc_norm"].isna().all()
    expected = 100 * (per_seed["acc_norm"] - per_seed["acc_norm_base"])
    assert (expected[beta] - per_seed.loc[beta, "delta_acc_norm"]).abs().max() < 1e-9
    store = Store(out)
    try:  # the exported values are the stored acc_norm of each unit
        stored = {round(s.metrics["acc_norm"], 9) for s in store.scores().values()}
    finally:
        store.close()
    assert set(per_seed.loc[beta, "acc_norm"].round(9)) <= stored

    table = read_results(out)
    result = run_analysis(table, metric="acc_norm", n_boot=50)
    assert result.metric == "delta_acc_norm_mean"
    want = per_seed[beta].groupby("regime")["delta_acc_norm"].mean()
    regimes = result.tables["regimes"].set_index("regime").loc[want.index]
    assert regimes["n"].to_dict() == per_seed[beta].groupby("regime").size().to_dict()
    assert (regimes["mean"] - want).abs().max() < 1e-9
    # the headline analysis still covers every target
    headline = run_analysis(table, n_boot=50).tables["regimes"].set_index("regime")
    assert headline.loc[want.index, "n"].sum() == len(per_seed)


def test_grouped_scores_equal_scoring_one_adapter_alone(study, tiny_model_dir):
    import torch

    from transferlab.models import load_model
    from transferlab.scoring import ModelState, score
    from transferlab.tasks import get_task

    run_study(study, progress=False)
    out = study.parent / "out"
    store = Store(out)
    try:
        key, (folder, _, _) = sorted(store.adapters().items())[0]
        unit = next(s for s in store.scores().values() if s.state == key and s.task == "beta")
        stored = dict(store.items([unit.unit_key]))[unit.unit_key]
    finally:
        store.close()
    task = get_task(str(study.parent / "tasks" / "beta.yaml"))
    loaded = load_model(str(tiny_model_dir), "float32", "cpu")
    cell_items = task.items(unit.language, "test")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the study's jobs ran
    try:
        alone = score(
            loaded, [ModelState("one", folder)], {Cell("beta", unit.language): cell_items}, 8
        )
    finally:
        torch.set_num_threads(threads)
    # Other batch shapes round differently in float32; the picks may not change.
    for ours, committed in zip(alone, stored["loglikelihoods"], strict=True):
        assert list(ours.loglikelihoods) == pytest.approx(committed, abs=1e-5)
    assert [int(r.metrics["acc"]) for r in alone] == stored["metrics"]["acc"]
    assert [int(r.metrics["acc_norm"]) for r in alone] == stored["metrics"]["acc_norm"]


def test_failed_jobs_are_recorded_retried_and_the_rest_goes_on(study, monkeypatch, capsys):
    out = study.parent / "out"
    # A learning rate this large overflows the weights: the loss turns NaN in every training.
    monkeypatch.setattr(
        sys, "argv", ["transferlab", "run", str(study), "--set", "training.learning_rate=1e30"]
    )
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 1
    assert "4 job(s) failed" in capsys.readouterr().err
    store = Store(out)
    try:
        records = store.jobs().values()
        trainings = [r for r in records if r.kind == "train"]
        assert len(trainings) == 4
        assert all(r.status == "failed" and r.attempts == 2 for r in trainings)  # 1 + 1 retry
        assert all("nan" in r.error for r in trainings)
        assert [s.state for s in store.scores().values()] == ["base"] * 4  # the baseline ran
    finally:
        store.close()
    status = study_status(study, overrides=["training.learning_rate=1e30"])
    assert "4 failed" in status and status.count("training loss is nan") == 4
    info = json.loads((out / "run_info.json").read_text())
    assert len(info["jobs"]["failed"]) == 4
    assert not (out / "results.csv").exists()

    fixed = run_study(study, progress=False)  # the sane recipe reuses the baseline
    assert fixed.failed == 0 and "5 job(s) finished this run" in fixed.summary


def test_growing_a_finished_study_runs_only_the_new_jobs(study):
    out = study.parent / "out"
    run_study(study, progress=False)
    first = set(_starts(out))
    grown = run_study(study, overrides=["languages=[en,de,zh]"], progress=False)
    assert grown.failed == 0
    second = _starts(out)[len(first) :]
    assert first.isdisjoint(second) and len(second) == len(set(second))
    # Two zh trainings, the baseline on the zh cells, and one job for the seed's group: old
    # adapters on the zh cells and the new adapters on every cell.
    assert len(second) == 2 + 1 + 1
    per_seed = pd.read_csv(out / "results_per_seed.csv")
    assert len(per_seed) == 6 * 6


def test_two_concurrent_runs_share_the_work_and_never_run_a_job_twice(study):
    out = study.parent / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "from transferlab.cli import main; main()", "run", str(study)]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()[-2000:]
    store = Store(out)
    try:
        events = store.events()
        commits = [key for key, event, _, _ in events if event == "commit"]
        assert len(commits) == len(set(commits)) == 6
        for key in commits:
            own = [event for k, event, _, _ in events if k == key]
            assert own[-1] == "commit" and own.count("start") == 1, own
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    assert len(pd.read_csv(out / "results_per_seed.csv")) == 16


def test_failure_reasons_are_one_line_and_name_out_of_memory():
    import torch

    from transferlab.runner import failure_reason

    assert failure_reason(ValueError("bad\nsecond line")) == "ValueError: bad"
    assert failure_reason(MemoryError()).startswith("out of memory — MemoryError")
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert failure_reason(oom).startswith("out of memory — OutOfMemoryError: CUDA out of memory")
