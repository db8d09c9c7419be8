"""`transferlab predict` and `transferlab recommend` as a user runs them: files, contracts, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis_tables import hand_grid
from cli_runner import run_cli
from transferlab.prediction.synthetic import paper_shaped_table

SMALL = dict(
    models=[("a-1b", "1B"), ("b-2b", "2B")], tasks=["x", "y"], languages=["de", "en", "fr"]
)
PREDICTION_COLUMNS = [
    "model", "source_task", "source_language", "target_task", "target_language", "regime",
    "observed", "predicted", "lower", "upper", "method",
]  # fmt: skip
SCORE_COLUMNS = ["method", "mae", "rmse", "spearman", "ndcg3", "coverage", "n_splits"]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / "transfer_results.csv"
    paper_shaped_table(**SMALL, seed=4).to_csv(path, index=False)
    return path


def test_predict_writes_the_contract_files(small_csv, tmp_path, monkeypatch, capsys):
    out = tmp_path / "pred"
    code, stdout, err = run_cli(monkeypatch, capsys, "predict", small_csv, "--observed-frac",
                                "0.5", "--out", out, "--seed", "3", "--splits", "1")  # fmt: skip
    assert code == 0, err
    predictions = pd.read_csv(out / "predictions.csv")
    scores = pd.read_csv(out / "prediction_scores.csv")
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert list(scores.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    assert list(scores["method"]) == [
        "regime_target",
        "additive",
        "completion",
        "lowrank",
        "stacked",
    ]
    assert (scores["n_splits"] == 1).all() and "lowrank" in stdout
    # one split: each method's MAE is the mean absolute error of its rows in predictions.csv
    for method, rows in predictions.groupby("method"):
        mae = (rows["predicted"] - rows["observed"]).abs().mean()
        assert scores.set_index("method").loc[method, "mae"] == pytest.approx(mae)
        assert len(rows) == 2 * 3 * 6 and (rows["lower"] <= rows["upper"]).all()
        inside = (rows["lower"] <= rows["observed"]) & (rows["observed"] <= rows["upper"])
        assert scores.set_index("method").loc[method, "coverage"] == pytest.approx(
            100 * inside.mean()
        )
    info = json.loads((out / "prediction_info.json").read_text())
    assert (info["seed"], info["n_splits"], info["observed_rows"], info["hidden_rows"]) == (
        3, 1, 6, 6
    )  # fmt: skip
    # the same seed draws the same split
    again = tmp_path / "again"
    run_cli(monkeypatch, capsys, "predict", small_csv, "--observed-frac", "0.5", "--out", again,
            "--seed", "3", "--splits", "1")  # fmt: skip
    assert (again / "predictions.csv").read_text() == (out / "predictions.csv").read_text()


def test_one_table_per_model_predicts_as_their_combined_table(small_csv, tmp_path, monkeypatch,
                                                             capsys):  # fmt: skip
    table = pd.read_csv(small_csv)
    parts = []
    for model, rows in table.groupby("model_name"):
        parts.append(tmp_path / f"{model}.csv")
        rows.to_csv(parts[-1], index=False)
    args = ["--observed-frac", "0.5", "--seed", "3", "--splits", "2"]
    code, _, err = run_cli(monkeypatch, capsys, "predict", *parts, "--out", tmp_path / "parts",
                           *args)  # fmt: skip
    assert code == 0, err
    run_cli(monkeypatch, capsys, "predict", small_csv, "--out", tmp_path / "whole", *args)
    for name in ("predictions.csv", "prediction_scores.csv"):
        assert (tmp_path / "parts" / name).read_text() == (tmp_path / "whole" / name).read_text()
    info = json.loads((tmp_path / "parts" / "prediction_info.json").read_text())
    assert info["input"] == [str(p) for p in parts] and len(info["input_sha256"]) == 2
    # a model in two of the tables is refused, naming both
    code, _, err = run_cli(monkeypatch, capsys, "predict", parts[0], small_csv, "--out",
                           tmp_path / "twice", *args)  # fmt: skip
    assert code == 2 and not (tmp_path / "twice").exists()
    assert err.strip().count("\n") == 0 and f"model a-1b is also in {parts[0]}" in err


def test_predict_hides_the_given_sources(tmp_path, monkeypatch, capsys):
    path = tmp_path / "hand.csv"
    hand_grid().to_csv(path, index=False)
    out = tmp_path / "pred"
    code, _, err = run_cli(monkeypatch, capsys, "predict", path, "--hide", "mmlu:en", "--out",
                           out, "--method", "regime_target")  # fmt: skip
    assert code == 0, err
    predictions = pd.read_csv(out / "predictions.csv")
    assert set(predictions["source_task"] + ":" + predictions["source_language"]) == {"mmlu:en"}
    assert len(predictions) == 2 * 4 and set(predictions["method"]) == {"regime_target"}
    # qwen-7b mmlu:en → mmlu:de (MT-CL): no observed MT-CL row lands on mmlu:de, so the model's
    # MT-CL mean (HAND_DELTAS): arc:de → arc:en 4, arc:en → arc:de 0, mmlu:de → mmlu:en 2
    row = predictions[(predictions["model"] == "qwen-7b") & (predictions["target_task"] == "mmlu")
                      & (predictions["target_language"] == "de")].iloc[0]  # fmt: skip
    assert row["predicted"] == pytest.approx((4 + 0 + 2) / 3) and row["observed"] == -1
    # every hand cell's two seeds are Δ ∓ 1: SD √2, SE 1, so the noise floor is RMSE 1
    scores = pd.read_csv(out / "prediction_scores.csv").iloc[0]
    assert scores["noise_rmse"] == pytest.approx(1.0)
    assert scores["noise_mae"] == pytest.approx(math.sqrt(2 / math.pi))


def test_recommend_prints_and_writes_a_ranked_table(small_csv, tmp_path, monkeypatch, capsys):
    code, stdout, err = run_cli(monkeypatch, capsys, "recommend", small_csv, "--targets",
                                "x:fr,y:fr", "--harm-budget", "1.5", "--out", tmp_path)  # fmt: skip
    assert code == 0, err
    ranked = pd.read_csv(tmp_path / "recommendations.csv")
    assert list(ranked.columns[:6]) == [
        "model", "rank", "source_task", "source_language", "status", "expected_gain"
    ]  # fmt: skip
    assert len(ranked) == 2 * 6 and (ranked["status"] == "measured").all()
    table = pd.read_csv(small_csv)
    gains = (
        table[table["eval_language"] == "fr"]
        .groupby(["model_name", "fine_tuned_dataset", "fine_tuned_language"])[
            "delta_score_norm_mean"
        ]
        .mean()
    )
    for _, row in ranked.iterrows():
        key = (row["model"], row["source_task"], row["source_language"])
        assert row["expected_gain"] == pytest.approx(gains[key])
    admissible = ranked[ranked["admissible"]]
    for _, block in admissible.groupby("model"):
        assert np.all(np.diff(block["expected_gain"].to_numpy()) <= 0)
    assert "expected_gain" in stdout


def _missing_column(frame):
    return frame.drop(columns=["eval_language"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "{csv}", "--observed-frac", "0.1", "--out", "{out}"], "observes 1"),
        (["predict", "{csv}", "--observed-frac", "abc", "--out", "{out}"], "not a valid float"),
        (["predict", "{csv}", "--method", "lowrnak", "--out", "{out}"], "did you mean 'lowrank'"),
        (["predict", "{bad}", "--out", "{out}"], "missing column(s) eval_language"),
        (["predict", "{csv}", "--hide", "z:de", "--out", "{out}"], "source z:de is not in"),
        (["recommend", "{csv}", "--targets", "x:zh", "--out", "{out}"], "target x:zh is not in"),
        (["recommend", "{csv}", "--targets", "x-fr", "--out", "{out}"], "'x-fr' is not TASK:LANG"),
        (["recommend", "{csv}", "--targets", "x:fr", "--harm-budget", "lots", "--out", "{out}"],
         "'lots' is not a valid float"),
        (["recommend", "{csv}", "--targets", "x:fr", "--harm-budget", "-2", "--out", "{out}"],
         "--harm-budget"),
        (["recommend", "{csv}", "--targets", "x:fr", "--protect", "q:de", "--out", "{out}"],
         "target q:de is not in"),
        (["recommend", "{bad}", "--targets", "x:fr", "--out", "{out}"], "missing column(s)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_written(
    args, message, small_csv, tmp_path, monkeypatch, capsys
):
    bad = tmp_path / "bad.csv"
    _missing_column(pd.read_csv(small_csv)).to_csv(bad, index=False)
    out = tmp_path / "out"
    filled = [a.format(csv=small_csv, bad=bad, out=out) for a in args]
    code, _, err = run_cli(monkeypatch, capsys, *filled)
    assert (code, len(err.strip().splitlines())) == (2, 1) and message in err, err
    assert not out.exists()


def test_recommend_needs_enough_measured_sources(tmp_path, monkeypatch, capsys):
    frame = paper_shaped_table(**SMALL, seed=4)
    keep = frame["fine_tuned_language"].eq("de") & frame["fine_tuned_dataset"].eq("x")
    frame[keep | frame["model_name"].eq("b-2b")].to_csv(tmp_path / "few.csv", index=False)
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, "recommend", tmp_path / "few.csv", "--targets",
                           "x:fr", "--out", out)  # fmt: skip
    assert code == 2 and "model a-1b has 1 measured sources" in err and not out.exists()
