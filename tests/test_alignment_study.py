"""A study's `alignment:` section: one job per model state, stored, resumable, exported, reported."""

from __future__ import annotations

import pandas as pd
import pytest

from cli_runner import run_cli
from study_tiny import write_study
from transferlab.alignment import align_command
from transferlab.alignment.command import COLUMNS
from transferlab.exports import ALIGNMENT_EXTRA_COLUMNS
from transferlab.runner import run_study, study_status
from transferlab.store import Store

ALIGNMENT = {
    "languages": ["en", "de", "zh"],
    "layers": [0, 2],
    "methods": ["proc", "none"],
    "retrieval": ["cosine"],
}


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
    assert run_study(study, progress=False).failed == 0
    assert not (out / "alignment.csv").exists()  # no alignment: section, no alignment jobs
    trained = len(_starts(out))

    # Adding the section adds the alignment jobs alone: trainings and scores keep their keys.
    study = write_study(tmp_path, tiny_model_dir, alignment=ALIGNMENT)
    assert "alignment: 0 of 5 model state(s) aligned; 5 to go" in study_status(study)
    assert run_study(study, progress=False).failed == 0
    starts = _starts(out)
    assert [kind for kind, _ in starts[trained:]] == ["align"] * 5
    assert "alignment: 5 of 5 model state(s) aligned; 0 to go" in study_status(study)

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
        folder = next(p for p, _, meta in store.adapters().values() if p.name.startswith("alpha-de.seed1."))
    finally:
        store.close()
    direct = align_command(str(tiny_model_dir), [folder], ["en", "de", "zh"], tmp_path / "direct",
                           layers=[0, 2], methods=["proc", "none"], retrievals=["cosine"],
                           dtype="float32", progress=False)  # fmt: skip
    keys = ["source_language", "target_language", "layer", "method", "retrieval"]
    for state, name in (("base", "base"), ("alpha:de.seed1", folder.name)):
        ours = table[table["model_state"] == state].set_index(keys)[["p1", "p5", "p10", "mrr"]]
        theirs = direct[direct["model_state"] == name].set_index(keys)[["p1", "p5", "p10", "mrr"]]
        pd.testing.assert_frame_equal(ours.sort_index(), theirs.sort_index(), atol=1e-12)

    # A rerun finds everything done.
    outcome = run_study(study, progress=False)
    assert "0 job(s) finished this run" in outcome.summary
    assert len(_starts(out)) == len(starts)


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
