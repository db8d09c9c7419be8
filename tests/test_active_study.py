"""Active studies on a tiny model: rounds of picks, resuming, a larger budget, the report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cli_runner import run_cli
from study_tiny import write_study
from transferlab.runner import run_study, study_status
from transferlab.store import Store

LANGUAGES = ("en", "de", "zh")  # 2 tasks × 3 languages: 6 candidate sources
# a learning rate high enough that adapters change answers, so Δ is not 0 everywhere
TRAINING = {"learning_rate": 0.05, "epochs": 2}


def _with_training(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    for key, value in TRAINING.items():
        text = re.sub(rf"(\n  {key}:) .*", rf"\1 {value}", text)
    return text


def _study(tmp_path: Path, model: Path, **active) -> Path:
    path = write_study(tmp_path, model, languages=LANGUAGES, sources={"active": active})
    path.write_text(_with_training(path), encoding="utf-8")
    return path


def _rounds(out: Path) -> list[list[str]]:
    record = json.loads((out / "active.json").read_text(encoding="utf-8"))
    return [[p["source"] for p in entry["picks"]] for entry in record["rounds"]]


def _trainings_started(out: Path) -> int:
    store = Store(out)
    try:
        kinds = {key: r.kind for key, r in store.jobs().items()}
        return sum(1 for k, e, _, _ in store.events() if e == "start" and kinds[k] == "train")
    finally:
        store.close()


def _sources(out: Path) -> set[str]:
    per_seed = pd.read_csv(out / "results_per_seed.csv", keep_default_na=False)
    return set(per_seed["source"])


def test_an_active_study_trains_rounds_up_to_its_budget_and_reports_them(tmp_path, tiny_model_dir):
    study = _study(tmp_path, tiny_model_dir, budget=5, batch=2, strategy="uncertainty")
    out = tmp_path / "out"
    assert "3 training and 2 evaluation job(s) pending; active: the first spread" in study_status(
        study
    )
    outcome = run_study(study, progress=False)
    assert outcome.failed == 0
    assert "active: 2 round(s) picked, 5 of a budget of 5" in study_status(study)
    assert "Active: 2 round(s), 5 of a budget of 5 source(s) per model picked" in outcome.summary
    rounds = _rounds(out)
    assert [len(r) for r in rounds] == [3, 2]  # the initial spread (at least 3), then a batch
    first = rounds[0]
    assert {s.split(":")[0] for s in first} == {"alpha", "beta"}  # the spread covers both tasks
    assert len({s.split(":")[1] for s in first}) == 3  # and all three languages
    picked = {s for r in rounds for s in r}
    assert len(picked) == 5
    assert _sources(out) == picked  # only the picks were trained and scored
    assert _trainings_started(out) == 5

    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Prediction (active study)" in html
    assert "observed rows (trained and fitted)</dt><dd>5<" in html
    assert "predicted rows</dt><dd>1<" in html
    assert "No error curve" in html  # nothing is measured beyond the picks
    from transferlab.report import build_report

    assert "observed rows (trained and fitted)</dt><dd>5<" in build_report(out)

    # the same study again: nothing to train, the same picks
    again = run_study(study, progress=False)
    assert "0 job(s) finished this run" in again.summary
    assert _rounds(out) == rounds

    # picks are a function of the measured results: without the record they come out the same
    (out / "active.json").unlink()
    run_study(study, progress=False)
    assert _rounds(out) == rounds
    assert _trainings_started(out) == 5

    # a larger budget trains only the new picks
    run_study(study, progress=False, overrides=["sources.active.budget=6"])
    grown = _rounds(out)
    assert grown[:2] == rounds and len(grown) == 3 and len(grown[2]) == 1
    assert _trainings_started(out) == 6


def test_the_first_spread_follows_the_seed_and_covers_the_grid(tmp_path, tiny_model_dir):
    from transferlab.active_study import first_round
    from transferlab.config import load_study
    from transferlab.plan import plan_study

    study = load_study(_study(tmp_path, tiny_model_dir, budget=4, batch=3))
    plan = plan_study(study)
    spreads = set()
    for seed in range(6):
        settings = study.active.model_copy(update={"seed": seed})
        picks = first_round(plan, settings)
        assert picks == first_round(plan, settings)  # the same seed, the same spread
        sources = [source for _, source in picks]
        assert {s.split(":")[0] for s in sources} == {"alpha", "beta"}
        assert {s.split(":")[1] for s in sources} == set(LANGUAGES)
        spreads.add(tuple(sources))
    assert len(spreads) > 1  # another seed, another spread


def test_picks_do_not_depend_on_the_output_directory(tmp_path, tiny_model_dir):
    first = _study(tmp_path / "a", tiny_model_dir, budget=4, batch=1, strategy="uncertainty")
    second = _study(tmp_path / "b", tiny_model_dir, budget=4, batch=1, strategy="uncertainty")
    run_study(first, progress=False)
    run_study(second, progress=False)
    assert _rounds(tmp_path / "a" / "out") == _rounds(tmp_path / "b" / "out")


def test_a_run_killed_in_a_later_round_resumes_with_the_same_picks(tmp_path, tiny_model_dir):
    active = {"budget": 5, "batch": 2, "strategy": "uncertainty", "seed": 3}
    reference = _study(tmp_path / "reference", tiny_model_dir, **active)
    run_study(reference, progress=False)
    expected = _rounds(tmp_path / "reference" / "out")

    study = _study(tmp_path / "killed", tiny_model_dir, **active)
    out = tmp_path / "killed" / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.Popen(
        [sys.executable, "-c", "from transferlab.cli import main; main()", "run", str(study)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while run.poll() is None and time.monotonic() < deadline:
        record = out / "active.json"
        if record.is_file() and len(json.loads(record.read_text(encoding="utf-8"))["rounds"]) > 1:
            run.send_signal(signal.SIGKILL)  # round 1 is recorded, its jobs are under way
            break
        time.sleep(0.02)
    run.wait()
    run_study(study, progress=False)
    assert _rounds(out) == expected
    got = pd.read_csv(out / "results_per_seed.csv").sort_values(["source", "eval_dataset",
                                                                 "eval_language"])  # fmt: skip
    want = pd.read_csv(tmp_path / "reference" / "out" / "results_per_seed.csv")
    want = want.sort_values(["source", "eval_dataset", "eval_language"])
    assert got["delta_score_norm"].tolist() == want["delta_score_norm"].tolist()


def test_a_greedy_study_picks_sources_for_its_targets(tmp_path, tiny_model_dir):
    study = _study(
        tmp_path, tiny_model_dir, budget=4, batch=1, strategy="greedy", targets=["alpha:de"]
    )
    run_study(study, progress=False)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "targets</dt><dd>alpha:de<" in html
    assert [len(r) for r in _rounds(tmp_path / "out")] == [3, 1]


def test_the_error_curve_uses_sources_measured_beyond_the_picks(tmp_path, tiny_model_dir):
    full = write_study(tmp_path, tiny_model_dir, languages=LANGUAGES)
    full.write_text(_with_training(full), encoding="utf-8")
    run_study(full, progress=False)  # the whole grid: 6 sources
    out = tmp_path / "out"
    full_delta = pd.read_csv(out / "results_per_seed.csv")
    active = write_study(tmp_path / "active", tiny_model_dir, languages=LANGUAGES,
                         sources={"active": {"budget": 4, "batch": 1}})  # fmt: skip
    active.write_text(_with_training(active), encoding="utf-8")
    run_study(active, out_dir=out, progress=False)
    assert _trainings_started(out) == 6  # every pick was trained already
    rounds = _rounds(out)
    assert [len(r) for r in rounds] == [3, 1]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "check rows (measured, never fitted)</dt><dd>2<" in html
    assert "fig-active-curve" in html and "No error curve" not in html
    per_seed = pd.read_csv(out / "results_per_seed.csv")
    assert len(per_seed) == len(full_delta)  # picks and check sources are all exported

    from transferlab.analysis import read_results
    from transferlab.report.prediction import summarize

    summary = summarize(read_results(out), [[("tiny", s) for s in r] for r in rounds], "completion")
    assert summary.n_observed == 4
    assert list(summary.curve["trained_per_model"]) == [3, 4]
    check = summary.entries[summary.entries["status"] == "check"]
    assert len(check) == 2 * 6  # two check sources on every target
    assert (summary.curve["check_sources"] == 2).all()
    # the last point scores the predicted matrix the report draws
    last = (check["predicted"] - check["delta"]).abs().mean()
    assert summary.curve["check_mae"].iloc[-1] == pytest.approx(last)


def test_the_study_names_every_predictor_method():
    from typing import get_args

    from transferlab.config import ActiveSettings
    from transferlab.prediction.methods import METHODS

    assert get_args(ActiveSettings.model_fields["method"].annotation) == tuple(METHODS)


@pytest.mark.parametrize(
    ("active", "message"),
    [
        ({"budget": 0, "batch": 1}, "sources.active.budget: Input should be greater than 0"),
        ({"budget": 4, "batch": 5}, "sources.active.batch 5 exceeds the budget 4"),
        ({"budget": 9, "batch": 2}, "sources.active.budget 9 exceeds the 6 cells"),
        ({"budget": 4, "batch": 2, "strategy": "greedy"}, "greedy needs targets"),
        ({"budget": 4, "batch": 2, "strategy": "clever"}, "sources.active.strategy"),
        ({"budget": 4, "batch": 2, "targets": ["alpha:fr"]}, "'alpha:fr' is not a cell"),
        ({"budget": 4, "batch": 2, "initial": 1}, "a refit needs at least 2"),
        ({"budget": 4, "batch": 2, "budjet": 3}, "unknown key 'sources.active.budjet'"),
        ({"budget": 4, "batch": 2, "method": "magic"}, "sources.active.method"),
    ],
)
def test_bad_active_settings_are_one_line_and_write_nothing(
    tmp_path, tiny_model_dir, monkeypatch, capsys, active, message
):
    study = write_study(tmp_path, tiny_model_dir, languages=LANGUAGES, sources={"active": active})
    code, _, err = run_cli(monkeypatch, capsys, "run", study)
    assert code == 2
    err = err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()
