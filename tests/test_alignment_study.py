"""A study's `alignment:` section: one job per model state, stored, resumable, exported, reported."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli
from study_tiny import write_study
from transferlab.alignment import align_command
from transferlab.alignment.command import COLUMNS
from transferlab.exports import ALIGNMENT_EXTRA_COLUMNS
from transferlab.report import build_report
from transferlab.runner import run_study, study_status
from transferlab.store import DB_NAME, Store

ALIGNMENT = {
    "languages": ["en", "de", "zh"],
    "layers": [1, 2],
    "methods": ["proc", "none"],
    "retrieval": ["cosine"],
}


# A recipe strong enough to move the tiny model's answers, so the transfer Δs differ.
RECIPE = ["training.learning_rate=0.05", "training.epochs=2"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))


def _starts(out) -> list[tuple[str, str]]:
    store = Store(out)
    try:
        kinds = {key: record.kind for key, record in store.jobs().items()}
        return [(kinds[key], key) for key, event, _, _ in store.events() if event == "start"]
    finally:
        store.close()


def test_a_study_aligns_every_model_state_once_and_exports_what_align_computes(
    tmp_path, tiny_model_dir
):
    study = write_study(tmp_path, tiny_model_dir)
    out = tmp_path / "out"
    assert run_study(study, overrides=RECIPE, progress=False).failed == 0
    assert not (out / "alignment.csv").exists()  # no alignment: section, no alignment jobs
    assert "align_s" not in json.loads((out / "run_info.json").read_text())["timings"]
    trained = len(_starts(out))

    # Adding the section adds the alignment jobs alone: trainings and scores keep their keys.
    study = write_study(tmp_path, tiny_model_dir, alignment=ALIGNMENT)
    assert "alignment: 0 of 5 model state(s) aligned; 5 to go" in study_status(
        study, overrides=RECIPE
    )
    assert run_study(study, overrides=RECIPE, progress=False).failed == 0
    starts = _starts(out)
    assert [kind for kind, _ in starts[trained:]] == ["align"] * 5
    assert "alignment: 5 of 5 model state(s) aligned; 0 to go" in study_status(
        study, overrides=RECIPE
    )
    assert json.loads((out / "run_info.json").read_text())["timings"]["align_s"] > 0

    table = pd.read_csv(out / "alignment.csv", keep_default_na=False)
    assert list(table.columns) == COLUMNS + ALIGNMENT_EXTRA_COLUMNS
    # 5 states (base + 2 tasks × 2 languages × 1 seed) × 6 ordered pairs × 2 layers × 2 methods
    assert len(table) == 5 * 6 * 2 * 2 and set(table["n_test"]) == {353}
    assert set(table["model_state"]) == {"base"} | {
        f"{task}:{lang}.seed1" for task in ("alpha", "beta") for lang in ("en", "de")
    }
    tuned = table[table["model_state"] == "alpha:de.seed1"]
    assert set(tuned["fine_tuned_dataset"]) == {"alpha"}
    assert set(tuned["fine_tuned_language"]) == {"de"} and set(tuned["seed"].astype(int)) == {1}

    # The job's numbers are those `transferlab align` gives for the committed adapter.
    store = Store(out)
    try:
        folder = next(
            p for p, _, meta in store.adapters().values() if p.name.startswith("alpha-de.seed1.")
        )
    finally:
        store.close()
    direct = align_command(str(tiny_model_dir), [folder], ["en", "de", "zh"], tmp_path / "direct",
                           layers=[1, 2], methods=["proc", "none"], retrievals=["cosine"],
                           dtype="float32", progress=False)  # fmt: skip
    keys = ["source_language", "target_language", "layer", "method", "retrieval"]
    for state, name in (("base", "base"), ("alpha:de.seed1", folder.name)):
        ours = table[table["model_state"] == state].set_index(keys)[["p1", "p5", "p10", "mrr"]]
        theirs = direct[direct["model_state"] == name].set_index(keys)[["p1", "p5", "p10", "mrr"]]
        pd.testing.assert_frame_equal(ours.sort_index(), theirs.sort_index(), atol=1e-12)

    _check_report(out)

    # A rerun finds everything done.
    outcome = run_study(study, overrides=RECIPE, progress=False)
    assert "0 job(s) finished this run" in outcome.summary
    assert len(_starts(out)) == len(starts)


def _committed_alignments(out) -> int:
    try:
        with sqlite3.connect(f"file:{out / DB_NAME}?mode=ro", uri=True, timeout=0.1) as db:
            return db.execute("SELECT count(*) FROM alignment_jobs").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or busy
        return 0


def test_a_run_killed_between_alignment_jobs_resumes_to_the_same_table(tmp_path, tiny_model_dir):
    reference = write_study(tmp_path / "reference", tiny_model_dir, alignment=ALIGNMENT)
    assert run_study(reference, overrides=RECIPE, progress=False).failed == 0

    out = tmp_path / "killed" / "out"
    assert run_study(write_study(tmp_path / "killed", tiny_model_dir), overrides=RECIPE,
                     progress=False).failed == 0  # fmt: skip
    study = write_study(tmp_path / "killed", tiny_model_dir, alignment=ALIGNMENT)
    sets = [arg for pair in RECIPE for arg in ("--set", pair)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.Popen(
        [sys.executable, "-c", "from transferlab.cli import main; main()", "run", str(study),
         *sets],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while run.poll() is None and _committed_alignments(out) == 0:
        assert time.monotonic() < deadline, "no alignment job committed"
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait()
    done_at_kill = _committed_alignments(out)
    assert 1 <= done_at_kill < 5, "the kill did not land between alignment jobs"

    assert run_study(study, overrides=RECIPE, progress=False).failed == 0
    starts = [key for kind, key in _starts(out) if kind == "align"]
    assert len(set(starts)) == 5 and len(starts) <= 5 + 1  # only the killed job started again
    store = Store(out)
    try:
        committed = [key for key, event, _, _ in store.events() if event == "commit"]
        assert len(committed) == len(set(committed))  # nothing committed twice
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    assert (out / "alignment.csv").read_bytes() == (
        tmp_path / "reference" / "out" / "alignment.csv"
    ).read_bytes()


@pytest.mark.parametrize(
    ("alignment", "expected"),
    [
        ({"languages": ["en", "xx"]}, "alignment.languages: the bundled dictionary has no entries"),
        ({"layers": [0, 99]}, "alignment.layers: layer 99 is out of range for model tiny"),
        ({"methods": ["procrustes"]}, "alignment.methods.0"),
        ({"template": "no slot"}, "alignment.template"),
    ],
)
def test_bad_alignment_settings_are_one_line_and_write_nothing(
    alignment, expected, tmp_path, tiny_model_dir, monkeypatch, capsys
):
    study = write_study(tmp_path, tiny_model_dir, alignment=alignment)
    code, _, stderr = run_cli(monkeypatch, capsys, "run", study)
    assert code == 2 and expected in stderr and str(study) in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def _table_rows(html: str, table_id: str) -> list[list[str]]:
    """Return the text of every body cell of the report table ``table_id``, row by row."""
    block = re.search(rf'id="{table_id}">(.*?)</table>', html, re.S).group(1)
    body = block.split("<tbody>")[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in body.split("<tr>")[1:]]


def _shown(value: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f}".replace("-", "\u2212")


def _check_report(out):
    """The run's report has the alignment section, with numbers recomputed here by hand."""
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<section id="alignment">' in html and "Cross-lingual alignment" in html
    table = pd.read_csv(out / "alignment.csv", keep_default_na=False)
    results = pd.read_csv(out / "results_per_seed.csv")
    chosen = table[(table["method"] == "proc") & (table["retrieval"] == "cosine")]
    base = chosen[chosen["model_state"] == "base"]
    layer = int(base.groupby("layer")["mrr"].mean().idxmax())  # the layer the section leads with
    at = chosen[chosen["layer"] == layer]
    base_mrr = at[at["model_state"] == "base"].set_index(["source_language", "target_language"])

    # Alignment after each fine-tune: mean MRR over the pairs from the trained language.
    rows = {r[0]: r for r in _table_rows(html, "table-alignment-change-tiny")}
    assert len(rows) == 4
    tuned = at[(at["model_state"] == "alpha:de.seed1") & (at["source_language"] == "de")]
    before = [
        base_mrr.loc[(s, t), "mrr"]
        for s, t in zip(tuned["source_language"], tuned["target_language"], strict=True)
    ]
    change = 100 * (tuned["mrr"].mean() - np.mean(before))
    assert rows["alpha:de.seed1"][1:4] == [f"{np.mean(before):.3f}", f"{tuned['mrr'].mean():.3f}",
                                           _shown(change)]  # fmt: skip

    # Change in alignment against the measured MT-CL Δ, one point per adapter and target.
    points = []
    mtcl = results[(results["regime"] == "MT-CL")]
    for r in mtcl.itertuples():
        state = f"{r.fine_tuned_dataset}:{r.fine_tuned_language}.seed{r.seed}"
        pair = (r.fine_tuned_language, r.eval_language)
        mine = at[(at["model_state"] == state) & (at["source_language"] == pair[0])
                  & (at["target_language"] == pair[1])]  # fmt: skip
        points.append((100 * (mine["mrr"].iloc[0] - base_mrr.loc[pair, "mrr"]),
                       r.delta_score_norm))  # fmt: skip
    x, y = np.array(points).T
    correlation = _table_rows(html, "table-alignment-change-transfer-tiny")
    row = next(r for r in correlation if r[0] == str(layer))
    assert row[1] == "4" and row[2] == _shown(np.corrcoef(x, y)[0, 1])
    # `transferlab report` on the run folder draws the same section from alignment.csv.
    assert build_report(out).count('<section id="alignment">') == 1


def _hand_table():
    """Base and two adapters (t:de, t:en) aligning en, de, fr at one layer, and their MT-CL Δs."""
    mrr = {("base", "de", "en"): 0.5, ("base", "de", "fr"): 0.4, ("base", "en", "de"): 0.6,
           ("base", "en", "fr"): 0.3, ("t:de.seed1", "de", "en"): 0.55,
           ("t:de.seed1", "de", "fr"): 0.42, ("t:en.seed1", "en", "de"): 0.63,
           ("t:en.seed1", "en", "fr"): 0.36}  # fmt: skip
    rows = []
    for (state, source, target), value in mrr.items():
        language = "" if state == "base" else state[2:4]
        rows.append({"model_state": state, "source_language": source, "target_language": target,
                     "layer": 1, "method": "proc", "retrieval": "cosine", "p1": value,
                     "p5": 1.0, "p10": 1.0, "mrr": value, "n_test": 10, "model_name": "m",
                     "seed": "" if state == "base" else 1,
                     "fine_tuned_dataset": "" if state == "base" else "t",
                     "fine_tuned_language": language})  # fmt: skip
    cells = pd.DataFrame({
        "model": "m", "source_task": "t", "target_task": "t", "regime": "MT-CL",
        "source_language": ["de", "de", "en", "en"], "target_language": ["en", "fr", "de", "fr"],
        "delta": [4.0, 1.0, 2.0, 5.0],
    })  # fmt: skip
    return pd.DataFrame(rows), cells


def test_change_and_base_alignment_are_correlated_with_the_transfer_of_the_same_pairs():
    from transferlab.alignment.study import base_vs_transfer, change_vs_transfer, view

    alignment, cells = _hand_table()
    assert view(alignment) == view(alignment[alignment["model_state"] == "base"])
    change = change_vs_transfer(alignment, cells, "delta", n_boot=100).iloc[0]
    x = [5.0, 2.0, 3.0, 6.0]  # 100 × (tuned − base) for de→en, de→fr, en→de, en→fr
    assert change["n"] == 4
    assert change["pearson_r"] == pytest.approx(np.corrcoef(x, [4.0, 1.0, 2.0, 5.0])[0, 1])
    base = base_vs_transfer(alignment, cells, "delta", n_boot=100).iloc[0]
    assert base["pearson_r"] == pytest.approx(np.corrcoef([0.5, 0.4, 0.6, 0.3], [4, 1, 2, 5])[0, 1])
    assert base["spearman_low"] <= base["spearman_rho"] <= base["spearman_high"]
