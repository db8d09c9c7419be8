"""`transferlab analyze` and `export` end to end: outputs, round trip, the paper's full grid
shape, and every kind of bad input (exit 2, one line on stderr, nothing written)."""

from __future__ import annotations

import gzip
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis_tables import hand_grid, paper_grid
from cli_runner import run_cli
from transferlab.analysis import read_results, run_analysis

CONTRACT_HEADERS = {
    "regimes.csv": "regime,n,mean,median,pct_positive,pct_harm",
    "roles_language.csv": "language,donor,donor_se,recipient,recipient_se",
    "roles_task.csv": "task,donor,donor_se,recipient,recipient_se",
    "variance.csv": "subset,component,share_pct",
    "consistency.csv": "regime,grouping,median,q1,q3,n_sources",
    "onoff_task.csv": "model,source_task,source_language,on_task,off_task,off_task_harm_pct",
}
ITEMS_HEADER = (
    "model_name,seed,fine_tuned_dataset,fine_tuned_language,eval_dataset,eval_language,"
    "doc_id,correct,correct_norm\n"
)


FIGURES = ["roles_language", "roles_task", "matrix_language", "matrix_task", "onoff_task"]


def write_run(directory: Path, frame: pd.DataFrame | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (hand_grid() if frame is None else frame).to_csv(
        directory / "results_per_seed.csv", index=False
    )
    return directory


def test_analyze_writes_every_table_and_figure(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "run")
    code, out, err = run_cli(monkeypatch, capsys, "analyze", run, "--out", tmp_path / "analysis")
    assert code == 0, err
    assert out.splitlines()[0].split() == [
        "regime", "n", "mean", "median", "pct_positive", "pct_harm", "ci_low", "ci_high"
    ]  # fmt: skip
    assert out.splitlines()[1].split()[:6] == ["MT-ML", "8", "3.25", "3.00", "100.00", "0.00"]
    written = tmp_path / "analysis"
    for name, header in CONTRACT_HEADERS.items():
        assert (written / name).read_text().splitlines()[0] == header
    regimes = pd.read_csv(written / "regimes.csv")
    assert regimes["regime"].tolist() == ["MT-ML", "MT-CL", "CT-ML", "CT-CL", "transfer"]
    assert pd.read_csv(written / "variance.csv").shape == (24, 3)
    matrix = pd.read_csv(written / "matrix_language.csv", index_col=0)
    assert matrix.loc["de", "en"] == 2.25
    for name in FIGURES:
        assert (written / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in (
        "harm",
        "matrix_task",
        "cell_ci",
        "models",
        "consistency_sources",
        "distance_pairs",
    ):
        assert (written / f"{name}.csv").is_file()
    distance = pd.read_csv(written / "distance_pairs.csv")
    assert distance[["source_language", "target_language"]].values.tolist() == [
        ["de", "en"],
        ["en", "de"],
    ]
    assert distance["mean_delta"].tolist() == [2.25, -0.75]
    info = (written / "analysis_info.json").read_text()
    assert '"metric": "delta_score_norm_mean"' in info and '"input_sha256"' in info


def test_family_override_and_metric_choice(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "run")
    out_dir = tmp_path / "analysis"
    code, out, err = run_cli(
        monkeypatch, capsys, "analyze", run, "--out", out_dir,
        "--metric", "delta_score", "--family", "qwen-7b=llama",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[1].split()[:3] == ["MT-ML", "8", "1.62"]  # 1.625 = half the headline
    harm = pd.read_csv(out_dir / "harm.csv")
    assert harm.loc[harm["grouping"] == "family", "group"].tolist() == ["llama"]


def test_task_groups_and_language_families(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "run")
    out_dir = tmp_path / "analysis"
    code, _, err = run_cli(
        monkeypatch, capsys, "analyze", run, "--out", out_dir,
        "--task-group", "g=mmlu", "--language-family", "de=A", "--language-family", "en=B",
    )  # fmt: skip
    assert code == 0, err
    # MT-CL Δ with mmlu targets 1, 0, 2, −1; arc targets 2, −2, 4, 0
    mtcl = pd.read_csv(out_dir / "mtcl_by_task_group.csv")
    assert list(mtcl.columns) == ["subset", "n", "mean", "median", "pct_positive", "pct_harm"]
    assert mtcl.values.tolist() == [
        ["all", 8, 0.75, 0.5, 50.0, 25.0],
        ["g", 4, 0.5, 0.5, 50.0, 25.0],
        ["rest", 4, 1.0, 1.0, 50.0, 25.0],
    ]
    roles = pd.read_csv(out_dir / "roles_language_by_task_group.csv")
    assert roles[["task_group", "language", "donor"]].values.tolist() == [
        ["g", "de", 1.5], ["g", "en", -0.5], ["not g", "de", 3.0], ["not g", "en", -1.0]
    ]  # fmt: skip
    correlation = pd.read_csv(out_dir / "donor_correlation_by_task_group.csv")
    assert correlation.columns.tolist() == [
        "task_group", "versus", "spearman_rho", "spearman_p", "n_languages"
    ]  # fmt: skip
    family = pd.read_csv(out_dir / "roles_language_by_family.csv")
    assert family.values.tolist() == [["A", 2.25, -0.75, "de"], ["B", -0.75, 2.25, "en"]]
    for name in ("uplift", "onoff_family", "onoff_task_summary"):
        assert (out_dir / f"{name}.csv").is_file()
    assert pd.read_csv(out_dir / "uplift.csv").columns.tolist() == [
        "mean", "median", "pct_positive", "n"
    ]  # fmt: skip
    subsets = pd.read_csv(out_dir / "variance.csv")["subset"].unique().tolist()
    assert subsets[-2:] == ["g", "not g"]  # no regime reaches 50 rows on this grid
    info = (out_dir / "analysis_info.json").read_text()
    assert '"task_groups": {\n    "g": [\n      "mmlu"' in info


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--task-group", "g"), "--task-group: 'g' is not NAME=TASK[,TASK...]"),
        (("--task-group", "g="), "'g=' is not NAME=TASK[,TASK...]"),
        (("--task-group", "=arc"), "'=arc' is not NAME=TASK[,TASK...]"),
        (("--task-group", "g=arc,,mmlu"), "'g=arc,,mmlu' is not NAME=TASK"),
        (("--task-group", "g=arc", "--task-group", "g=mmlu"), "group 'g' is given twice"),
        (("--task-group", "g=mmlx"), "--task-group: task group 'g': no task 'mmlx'"),
        (("--task-group", "rest=arc"), "'rest' cannot name a task group"),
        (("--task-group", "g=arc", "--task-group", "h=arc"), "task 'arc' is in task groups"),
        (("--language-family", "de"), "--language-family: 'de' is not LANG=FAMILY"),
        (("--language-family", "fr=A"), "no language 'fr' in the results — name one of: de, en"),
    ],
)
def test_bad_task_groups_and_language_families(tmp_path, monkeypatch, capsys, args, message):
    run = write_run(tmp_path / "run")
    out_dir = tmp_path / "analysis"
    code, _, err = run_cli(monkeypatch, capsys, "analyze", run, "--out", out_dir, *args)
    assert (code, len(err.strip().splitlines())) == (2, 1), err
    assert message in err and " — " in err, err
    assert not out_dir.exists()


def test_export_round_trips_into_the_same_analysis(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "run")
    exported = tmp_path / "results.csv"
    code, out, err = run_cli(monkeypatch, capsys, "export", run, "--out", exported)
    assert (code, out.strip()) == (0, f"Wrote 32 rows to {exported}")
    per_seed, paper = read_results(run), read_results(exported)
    assert paper.schema == "paper" and per_seed.schema == "per_seed"
    pd.testing.assert_frame_equal(per_seed.cells, paper.cells, check_dtype=False)
    first, second = run_analysis(per_seed), run_analysis(paper)
    for name, table in first.tables.items():
        pd.testing.assert_frame_equal(table, second.tables[name], check_dtype=False)
    # exporting the paper-schema file again changes nothing
    again = tmp_path / "again.csv"
    assert run_cli(monkeypatch, capsys, "export", exported, "--out", again)[0] == 0
    assert again.read_text() == exported.read_text()


def _drop_column(frame):
    return frame.drop(columns=["eval_language"])


def _unknown_regime(frame):
    frame.loc[3, "regime"] = "MT-XL"
    return frame


def _wrong_regime(frame):
    frame.loc[2, "regime"] = "MT-ML"  # the row is arc:de → arc:en, MT-CL
    return frame


def _duplicate(frame):
    return pd.concat([frame, frame.iloc[[5]]], ignore_index=True)


def _non_numeric(frame):
    frame["delta_score_norm"] = frame["delta_score_norm"].astype(object)
    frame.loc[7, "delta_score_norm"] = "n/a"
    return frame


def _empty(frame):
    return frame.iloc[:0]


def _hole(frame):
    hole = (frame["model_name"] == "qwen-7b") & (frame["fine_tuned_language"] == "de")
    hole &= (frame["fine_tuned_dataset"] == "arc") & (frame["eval_dataset"] == "mmlu")
    return frame[~(hole & (frame["eval_language"] == "en"))]


def _bad_size(frame):
    frame["model_size"] = frame["model_size"].astype(object)
    frame.loc[0, "model_size"] = "one billion"
    return frame


def _fractional_seed(frame):
    frame["seed"] = frame["seed"].astype(float)
    frame.loc[0, "seed"] = 17.5
    return frame


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_drop_column, "missing column(s) eval_language"),
        (_unknown_regime, "unknown regime 'MT-XL' on line 5"),
        (_wrong_regime, "line 4 says regime MT-ML"),
        (_duplicate, "lines 7 and 66 repeat the key"),
        (
            _non_numeric,
            "column 'delta_score_norm' has 1 non-numeric value(s), first 'n/a' on line 9",
        ),
        (_empty, "the table has no rows"),
        (_hole, "model 'qwen-7b', source arc:de has 3 of the 4 targets"),
        (_bad_size, "model_size 'one billion' on line 2 is not a size"),
        (_fractional_seed, "seed"),
    ],
)
def test_bad_tables_exit_2_with_one_line_and_write_nothing(
    tmp_path, monkeypatch, capsys, mutate, message
):
    run = write_run(tmp_path / "run", mutate(hand_grid()))
    out_dir, out_file = tmp_path / "analysis", tmp_path / "exported.csv"
    for args in (("analyze", run, "--out", out_dir), ("export", run, "--out", out_file)):
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2
        assert len(err.strip().splitlines()) == 1
        assert message in err and "results_per_seed.csv" in err
        assert not out_dir.exists() and not out_file.exists()


def test_bad_arguments_and_files(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "run")
    out_dir = tmp_path / "analysis"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    cases = [
        (("--metric", "delta_scor"), "no column 'delta_scor' (did you mean 'delta_score'?)"),
        (("--family", "qwen-7b"), "'qwen-7b' is not MODEL=FAMILY"),
        (("--family", "qwen-8b=qwen"), "unknown model 'qwen-8b' (did you mean 'qwen-7b'?)"),
    ]
    for extra, message in cases:
        code, _, err = run_cli(monkeypatch, capsys, "analyze", run, "--out", out_dir, *extra)
        assert (code, len(err.strip().splitlines())) == (2, 1) and message in err, err
    for source, message in [
        (tmp_path / "missing.csv", "no such file"),
        (empty, "the file is empty"),
        (nothing, "the directory holds no results table"),
    ]:
        code, _, err = run_cli(monkeypatch, capsys, "analyze", source, "--out", out_dir)
        assert (code, len(err.strip().splitlines())) == (2, 1) and message in err, err
    assert not out_dir.exists()


def test_blank_metric_and_bad_items(tmp_path, monkeypatch, capsys):
    paper = paper_grid(models=[("a-1b", "1B"), ("b-2b", "2B")], tasks=["x"], languages=["de", "en"])
    paper.loc[1, "delta_score_norm_mean"] = None
    path = tmp_path / "paper.csv"
    paper.to_csv(path, index=False)
    code, _, err = run_cli(monkeypatch, capsys, "analyze", path, "--out", tmp_path / "a")
    assert code == 2 and "1 row(s) have no value in 'delta_score_norm_mean'" in err
    run = write_run(tmp_path / "run")
    with gzip.open(run / "items.csv.gz", "wt") as handle:
        handle.write(ITEMS_HEADER + "qwen-7b,,,,arc,de,0,2,1\n")
    code, _, err = run_cli(monkeypatch, capsys, "analyze", run, "--out", tmp_path / "b")
    assert code == 2 and "items.csv.gz: column 'correct' holds '2' on line 2" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_items_beside_the_table_give_cell_cis(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "run")
    lines = [f"qwen-7b,,,,arc,en,{doc},0,{doc % 2}\n" for doc in range(4)]
    for seed in (17, 42):
        lines += [f"qwen-7b,{seed},arc,de,arc,en,{doc},0,1\n" for doc in range(4)]
    with gzip.open(run / "items.csv.gz", "wt") as handle:
        handle.write(ITEMS_HEADER + "".join(lines))
    code, _, err = run_cli(monkeypatch, capsys, "analyze", run, "--out", tmp_path / "out")
    assert code == 0, err
    ci = pd.read_csv(tmp_path / "out" / "cell_ci.csv")
    assert ci.iloc[0, :5].tolist() == ["qwen-7b", "arc", "de", "arc", "en"]
    # acc_norm: base right on 2 of 4 items, tuned on all 4 → Δ = 50 pp
    assert ci[["delta", "n_items"]].values.tolist() == [[50.0, 4]]
    assert 0 <= ci["ci_low"][0] <= 50 <= ci["ci_high"][0] <= 100
    with gzip.open(run / "items.csv.gz", "wt") as handle:
        handle.write(ITEMS_HEADER + "".join(lines) + lines[0])
    code, _, err = run_cli(monkeypatch, capsys, "analyze", run, "--out", tmp_path / "again")
    assert code == 2 and "items.csv.gz: line 14 repeats an item already listed" in err
    assert not (tmp_path / "again").exists()


def test_holes_that_allow_the_analysis_are_a_warning(tmp_path, monkeypatch, capsys, caplog):
    frame = hand_grid()
    missing = (frame["model_name"] == "qwen-7b") & (frame["fine_tuned_language"] == "en")
    run = write_run(tmp_path / "run", frame[~missing])  # qwen-7b lacks its two en sources
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(monkeypatch, capsys, "analyze", run, "--out", tmp_path / "out")
    assert code == 0, err
    assert "the grid has 8 hole(s)" in caplog.text
    assert pd.read_csv(tmp_path / "out" / "regimes.csv")["n"].tolist() == [6, 6, 6, 6, 18]


def test_console_script_reports_bad_input_on_one_line(tmp_path):
    run = write_run(tmp_path / "run", _unknown_regime(hand_grid()))
    script = Path(sys.executable).parent / "transferlab"
    done = subprocess.run(
        [script, "analyze", run, "--out", tmp_path / "out"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {run / 'results_per_seed.csv'}: unknown regime 'MT-XL' on line 5 (did you mean 'MT-ML'?) — use one of "
        "MT-ML, MT-CL, CT-ML, CT-CL or leave the column empty (it is derived)"
    ]
    assert not (tmp_path / "out").exists()
