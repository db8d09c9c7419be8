"""A study with mixture sweeps end to end: exports, regimes of mixtures, growth, the analysis."""

from __future__ import annotations

import pandas as pd
import pytest

from study_tiny import write_study
from transferlab.analysis import read_results, run_analysis
from transferlab.analysis.command import analyze_results
from transferlab.runner import run_study
from transferlab.store import Store

SWEEPS = [
    {
        "name": "en+k",
        "fixed": {"alpha:en": 4},
        "add": {"languages": ["de"], "per_language": [0, 2, 4]},
    },
    {
        "name": "multitask",
        "fixed": {"alpha:en": 4, "beta:en": 4},
        "add": {"languages": ["de"], "per_language": [2]},
    },
]


@pytest.fixture
def study(tmp_path, tiny_model_dir):
    return write_study(
        tmp_path, tiny_model_dir, languages=("en", "de", "zh"), sources=["alpha:en"],
        mixtures=SWEEPS,
    )  # fmt: skip


def _trainings(out) -> list[str]:
    store = Store(out)
    try:
        starts = {key for key, event, _, _ in store.events() if event == "start"}
        return sorted(starts & set(store.adapters()))
    finally:
        store.close()


def test_a_sweep_study_exports_mixtures_and_grows_by_only_the_new_jobs(study):
    out = study.parent / "out"
    assert run_study(study, progress=False).failed == 0
    per_seed = pd.read_csv(out / "results_per_seed.csv", keep_default_na=False)
    sources = sorted(set(per_seed["source"]))
    assert sources == [
        "alpha:en",
        "mix(alpha:de=2,alpha:en=4)",
        "mix(alpha:de=2,alpha:en=4,beta:de=2,beta:en=4)",
        "mix(alpha:de=4,alpha:en=4)",
        "mix(alpha:en=4)",
    ]
    single = per_seed[per_seed["source"] == "alpha:en"]
    assert set(single["fine_tuned_dataset"]) == {"alpha"}  # a cell fills the paper's columns
    mix = per_seed[per_seed["source"] == "mix(alpha:de=2,alpha:en=4)"].set_index(
        ["eval_dataset", "eval_language"]
    )
    assert set(mix["fine_tuned_dataset"]) == {"mix(alpha:de=2,alpha:en=4)"}
    assert set(mix["fine_tuned_language"]) == {"de+en"}
    assert set(mix["source_parts"]) == {"alpha:de=2;alpha:en=4"}
    # the closest regime of any part
    assert mix.loc[("alpha", "en"), "regime"] == "MT-ML"
    assert mix.loc[("alpha", "zh"), "regime"] == "MT-CL"
    assert mix.loc[("beta", "de"), "regime"] == "CT-ML"
    assert mix.loc[("beta", "zh"), "regime"] == "CT-CL"
    sweeps = pd.read_csv(out / "mixtures.csv")
    assert sweeps[["mixture", "per_language"]].values.tolist() == [
        ["en+k", 0],
        ["en+k", 2],
        ["en+k", 4],
        ["multitask", 2],
    ]
    table = read_results(out)
    result = run_analysis(table, n_boot=200)
    curves = result.tables["mixture_scaling"]
    assert len(curves) == 3 * 6 + 1 * 6  # every point on every target cell
    assert set(curves.loc[curves["target_language"] == "zh", "seen"]) == {False}
    gaps = result.tables["mixture_seen_unseen"]
    assert len(gaps) == 3 + 2  # per k and on-task target task: alpha; alpha and beta
    multi = result.tables["mixture_multitask_summary"]
    assert multi[["single_task_source", "target_task", "n_targets"]].values.tolist() == [
        ["mix(alpha:de=2,alpha:en=4)", "alpha", 3]
    ]
    roles = result.tables["roles_language"].set_index("language")
    cells = table.cells
    mtcl = cells[(cells["source_task"] == "alpha") & (cells["regime"] == "MT-CL")]
    assert len(mtcl) == 2  # roles see the single-cell source only, not the mixtures' MT-CL rows
    assert roles.loc["en", "donor"] == pytest.approx(mtcl["delta_score_norm_mean"].mean())
    assert roles["donor"].drop("en").isna().all()

    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Training-data mixtures" in report and "fig-mixture-scaling" in report
    analyze_results(out, study.parent / "analysis")
    written = {p.name for p in (study.parent / "analysis").iterdir()}
    assert {"mixture_scaling.csv", "mixture_seen_unseen.csv", "mixture_k90.csv"} <= written
    assert {"mixture_multitask_summary.csv", "mixture_scaling.png"} <= written

    first = _trainings(out)
    assert len(first) == 5
    # a new k, a new rank: only their trainings run; a study language: only evaluations
    bigger = [*SWEEPS]
    bigger[0] = {**SWEEPS[0], "add": {"languages": ["de"], "per_language": [0, 2, 4, 6]}}
    grown = run_study(study, overrides=[f"mixtures={_yaml(bigger)}"], progress=False)
    assert grown.failed == 0 and len(_trainings(out)) == 6
    # a language added to the sweep: new mixtures for every k > 0, k = 0 is the same source
    bigger[0] = {**bigger[0], "add": {"languages": ["de", "zh"], "per_language": [0, 2, 4, 6]}}
    grown = run_study(study, overrides=[f"mixtures={_yaml(bigger)}"], progress=False)
    assert grown.failed == 0 and len(_trainings(out)) == 6 + 3
    ranked = run_study(
        study, overrides=[f"mixtures={_yaml(bigger)}", "training.lora_r=[4,8]"], progress=False
    )
    assert ranked.failed == 0 and len(_trainings(out)) == 9 + 6  # r=4 is the finished study
    per_seed = pd.read_csv(out / "results_per_seed.csv", keep_default_na=False)
    assert set(per_seed["model_name"]) == {"tiny"}  # the rank is a column of its own
    assert per_seed.groupby("lora_r").size().to_dict() == {
        4: len(per_seed) // 2,
        8: len(per_seed) // 2,
    }


def _yaml(value) -> str:
    import json

    return json.dumps(value)  # JSON is YAML: one --set value
