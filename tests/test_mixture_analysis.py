"""The mixture analyses on small hand-made tables: curves, k90, seen vs unseen, multi- vs single-task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferlab.analysis import run_analysis, table_from_frame
from transferlab.analysis.bootstrap import cell_ci, items_from_frame
from transferlab.analysis.mixture_scaling import sweeps_from_frame

K0, K2, K4 = "mix(t:en=4)", "mix(t:de=2,t:en=4)", "mix(t:de=4,t:en=4)"
MULTI = "mix(t:de=2,t:en=4,u:de=2,u:en=4)"
TARGETS = [(task, lang) for task in ("t", "u") for lang in ("en", "de", "fr")]
# Δ (pp) on the t targets: en is fixed, de is added, fr is never trained on
DELTAS = {
    K0: {"en": 10.0, "de": 0.0, "fr": 0.0},
    K2: {"en": 10.0, "de": 6.0, "fr": 3.8},
    K4: {"en": 10.0, "de": 10.0, "fr": 4.0},
    MULTI: {"en": 8.0, "de": 4.0, "fr": 1.8},
}


def _languages(label: str) -> str:
    return "+".join(sorted({part.split(":")[1].split("=")[0] for part in label[4:-1].split(",")}))


def _per_seed() -> pd.DataFrame:
    rows = []
    for source, deltas in DELTAS.items():
        for task, language in TARGETS:
            delta = deltas[language] if task == "t" else 0.0
            for seed, offset in ((1, -1.0), (2, 1.0)):  # SD √2 over two seeds: SE 1
                d = delta + offset
                rows.append(
                    {
                        "model_name": "m",
                        "model_size": "1",
                        "fine_tuned_dataset": source,
                        "fine_tuned_language": _languages(source),
                        "eval_dataset": task,
                        "eval_language": language,
                        "seed": seed,
                        "score": 0.5 + d / 100,
                        "score_base": 0.5,
                        "score_norm": 0.5 + d / 100,
                        "score_norm_base": 0.5,
                        "delta_score": d,
                        "delta_score_norm": d,
                        "source": source,
                    }
                )
    return pd.DataFrame(rows)


def _sweeps() -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            ["s", k, source, "en", "de", "t", False]
            for k, source in ((0, K0), (2, K2), (4, K4))
        ],
        columns=[
            "mixture", "per_language", "source", "fixed_languages", "added_languages", "tasks",
            "disjoint_ids",
        ],
    )  # fmt: skip
    return sweeps_from_frame(frame, "mixtures.csv")


def test_curves_k90_and_the_seen_unseen_gap_on_a_hand_made_sweep():
    table = table_from_frame(_per_seed(), "results_per_seed.csv", sweeps=_sweeps())
    result = run_analysis(table, n_boot=100)
    curves = result.tables["mixture_scaling"].set_index(["per_language", "target_language"])
    t_curves = curves[curves["target_task"] == "t"]
    assert t_curves.loc[(2, "de"), "delta"] == pytest.approx(6.0)
    assert t_curves.loc[(2, "de"), "score"] == pytest.approx(0.56)
    assert t_curves.loc[(2, "de"), "delta_se"] == pytest.approx(1.0)  # SD √2 / √2 seeds
    assert bool(t_curves.loc[(4, "de"), "seen"]) and not bool(t_curves.loc[(4, "fr"), "seen"])
    assert not curves.loc[curves["target_task"] == "u", "on_task"].any()

    k90 = result.tables["mixture_k90"].set_index(["target_task", "target_language"])
    assert k90.loc[("t", "de"), "k90"] == 4  # gains 0, 6, 10: 90% of 10 is first reached at 4
    assert k90.loc[("t", "fr"), "k90"] == 2  # gains 0, 3.8, 4.0: 3.6 is reached at 2
    assert np.isnan(k90.loc[("t", "en"), "k90"])  # flat: no gain to reach
    assert k90.loc[("t", "de"), "gain_max"] == pytest.approx(0.10)

    gaps = result.tables["mixture_seen_unseen"].set_index("per_language")
    assert gaps["seen_mean"].tolist() == pytest.approx([5.0, 8.0, 10.0])
    assert gaps["unseen_mean"].tolist() == pytest.approx([0.0, 3.8, 4.0])
    assert gaps["gap"].tolist() == pytest.approx([5.0, 4.2, 6.0])
    assert gaps["n_seen"].tolist() == [2, 2, 2] and gaps["n_unseen"].tolist() == [1, 1, 1]
    assert gaps["gap_low"].isna().all()  # no items: no item CI
    correlation = result.tables["mixture_seen_unseen_correlation"].iloc[0]
    assert correlation["spearman"] == pytest.approx(1.0) and correlation["n_points"] == 3
    # mixtures count in the regimes by the closest-part rule; roles see no single cell here
    regimes = result.tables["regimes"].set_index("regime")
    # MT-ML: a part is the target (1 + 2 + 2 + 4); MT-CL: t:fr for all, t:de for k=0, u:fr
    assert regimes.loc[["MT-ML", "MT-CL", "CT-ML", "CT-CL"], "n"].tolist() == [9, 6, 5, 4]
    assert result.tables["roles_language"]["donor"].isna().all()


def _items(correct: dict[tuple[str, str], int]) -> pd.DataFrame:
    """Ten items per target: the base gets none right, a source the first `correct` of them."""
    rows = []
    for task, language in TARGETS:
        for doc in range(10):
            rows.append(("m", "", "", "", task, language, f"d{doc}", 0, 0))
            for source, seed in ((K2, 1), (MULTI, 1)):
                right = int(doc < correct.get((source, task), 0))
                rows.append(("m", seed, source, _languages(source), task, language, f"d{doc}",
                             right, right))  # fmt: skip
    columns = [
        "model_name", "seed", "fine_tuned_dataset", "fine_tuned_language", "eval_dataset",
        "eval_language", "doc_id", "correct", "correct_norm",
    ]  # fmt: skip
    return items_from_frame(pd.DataFrame(rows, columns=columns), "items.csv.gz")


def test_multi_task_vs_single_task_is_paired_per_item_with_its_ci():
    correct = {(K2, "t"): 6, (MULTI, "t"): 5}
    items = _items(correct)
    rows = []
    for source in (K2, MULTI):
        for task, language in TARGETS:
            s = correct.get((source, task), 0) / 10
            rows.append(
                {
                    "model_name": "m", "model_size": "1", "fine_tuned_dataset": source,
                    "fine_tuned_language": _languages(source), "eval_dataset": task,
                    "eval_language": language, "seed": 1, "score": s, "score_base": 0.0,
                    "score_norm": s, "score_norm_base": 0.0, "delta_score": 100 * s,
                    "delta_score_norm": 100 * s,
                }
            )  # fmt: skip
    table = table_from_frame(pd.DataFrame(rows), "results_per_seed.csv", items=items)
    result = run_analysis(table, n_boot=400, seed=3)
    per_target = result.tables["mixture_multitask"]
    assert per_target["single_task_source"].unique().tolist() == [K2]
    assert per_target["target_task"].unique().tolist() == ["t"]
    assert per_target["difference"].tolist() == pytest.approx([-10.0] * 3)  # 50 − 60 on each
    summary = result.tables["mixture_multitask_summary"].iloc[0]
    assert summary["n_targets"] == 3 and summary["difference"] == pytest.approx(-10.0)
    # one item of ten differs, so a resample holds it 0–3 times: the CI ends at 0 and below −10
    assert summary["ci_high"] == pytest.approx(0.0) and summary["ci_low"] < -10.0
    assert per_target["ci_high"].tolist() == pytest.approx([0.0] * 3)

    # a single cell's item CI in the curves is exactly cell_ci's (one resampling of the items)
    ci = cell_ci(items, "delta_score_norm_mean", n_boot=400, seed=3)
    both = ci[(ci["fine_tuned_dataset"] == MULTI) & (ci["eval_dataset"] == "t")]
    assert both["delta"].tolist() == pytest.approx([50.0] * 3)
