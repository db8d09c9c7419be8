"""The released analysis's further tables on hand-computable grids: uplift, on/off summaries,
roles by language family, the task-group split and the variance subsets.

The hand grid (tests/analysis_tables.py) is 2 models × 2 tasks (arc, mmlu) × 2 languages; its
MT-CL Δ are llama 2 / −2 (arc de→en, en→de), 1 / 0 (mmlu), qwen 4 / 0 (arc), 2 / −1 (mmlu).
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis_tables import hand_grid
from test_analysis_variance import statsmodels_fit
from transferlab.analysis import run_analysis, table_from_frame
from transferlab.analysis.schema import PAPER_COLUMNS
from transferlab.analysis.summaries import onoff_family
from transferlab.errors import UserError


@pytest.fixture(scope="module")
def hand():
    return run_analysis(table_from_frame(hand_grid(), "hand.csv"), task_groups={"g": ["mmlu"]})


def records(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(row) for row in frame.itertuples(index=False)]


def approx(rows: list[tuple]) -> list[tuple]:
    return [
        tuple(pytest.approx(v, rel=1e-12, nan_ok=True) if isinstance(v, float) else v for v in row)
        for row in rows
    ]


def test_uplift_is_the_transfer_row(hand):
    # 24 transfer cells (all but the 8 MT-ML ones): sum 7, median 0, 11 of them > 0
    assert records(hand.tables["uplift"]) == approx([(7 / 24, 0.0, 100 * 11 / 24, 24)])
    assert list(hand.tables["uplift"].columns) == ["mean", "median", "pct_positive", "n"]


def test_onoff_per_model_and_source_task(hand):
    # the hand grid's sources have 1 on-task and 2 off-task cells: below the released rule
    assert hand.tables["onoff_family"].empty
    # with the rule lowered to what the grid has, the means over de and en of onoff_task:
    # llama arc on (2 − 2)/2, off (−0.5 − 1)/2; mmlu (1 + 0)/2, (2 + 0.5)/2; qwen arc (4 + 0)/2,
    # (−0.5 + 1)/2; mmlu (2 − 1)/2, (−1 + 0)/2
    family = onoff_family(hand.tables["onoff_task"], min_on=1, min_off=2)
    assert records(family) == approx(
        [
            ("llama-1b", "arc", 0.0, -0.75, 2),
            ("llama-1b", "mmlu", 0.5, 1.25, 2),
            ("qwen-7b", "arc", 2.0, 0.25, 2),
            ("qwen-7b", "mmlu", 0.5, -0.5, 2),
        ]
    )
    # one language short of the rule on one side drops that source only
    onoff = hand.tables["onoff_task"].assign(n_on=3, n_off=5)
    onoff.loc[0, "n_off"] = 4  # llama-1b arc:de
    family = onoff_family(onoff).set_index(["model", "source_task"])
    assert tuple(family.loc[("llama-1b", "arc")]) == pytest.approx((-2.0, -1.0, 1))


def test_onoff_task_summary_pools_cells(hand):
    # arc sources: on-task Δ 2, −2, 4, 0; off-task −1, 0, 1, −3, 1, −2, 3, −1
    # mmlu sources: on-task 1, 0, 2, −1; off-task 1, 3, −1, 2, −3, 1, 0, 0
    assert records(hand.tables["onoff_task_summary"]) == approx(
        [
            ("arc", 4, 1.0, 50.0, 25.0, 8, -0.25, 37.5, 50.0),
            ("mmlu", 4, 0.5, 50.0, 25.0, 8, 0.375, 50.0, 25.0),
        ]
    )
    assert list(hand.tables["onoff_task_summary"].columns[1:5]) == [
        "on_n",
        "on_mean",
        "on_pct_positive",
        "on_pct_harm",
    ]


def test_roles_by_language_family(hand, caplog):
    # de and en are both Germanic: donor (2.25 − 0.75)/2, recipient (−0.75 + 2.25)/2
    assert records(hand.tables["roles_language_by_family"]) == approx(
        [("Germanic", 0.75, 0.75, "de,en")]
    )
    table = table_from_frame(hand_grid(), "hand.csv")
    mine = run_analysis(table, language_families={"de": "A", "en": "B"})
    assert records(mine.tables["roles_language_by_family"]) == approx(
        [("A", 2.25, -0.75, "de"), ("B", -0.75, 2.25, "en")]
    )
    with caplog.at_level(logging.WARNING):
        partial = run_analysis(table, language_families={"de": "A"})
    assert records(partial.tables["roles_language_by_family"]) == approx([("A", 2.25, -0.75, "de")])
    assert "no language family for en" in caplog.text


def test_mtcl_by_task_group(hand):
    assert records(hand.tables["mtcl_by_task_group"]) == approx(
        [
            ("all", 8, 0.75, 0.5, 50.0, 25.0),
            ("g", 4, 0.5, 0.5, 50.0, 25.0),  # mmlu targets: 1, 0, 2, −1
            ("rest", 4, 1.0, 1.0, 50.0, 25.0),  # arc targets: 2, −2, 4, 0
        ]
    )


def test_language_roles_by_task_group(hand):
    # mmlu targets: donor de = llama 1, qwen 2 → 1.5 ± 0.5; en: 0, −1 → −0.5 ± 0.5
    # arc targets: donor de = 2, 4 → 3 ± 1; en: −2, 0 → −1 ± 1; recipients mirror them
    assert records(hand.tables["roles_language_by_task_group"]) == approx(
        [
            ("g", "de", 1.5, 0.5, -0.5, 0.5),
            ("g", "en", -0.5, 0.5, 1.5, 0.5),
            ("not g", "de", 3.0, 1.0, -1.0, 1.0),
            ("not g", "en", -1.0, 1.0, 3.0, 1.0),
        ]
    )
    # two shared languages are too few for a rank correlation
    assert records(hand.tables["donor_correlation_by_task_group"]) == approx(
        [("g", "not g", np.nan, np.nan, 2)]
    )


def _grid(models, tasks, languages, delta) -> pd.DataFrame:
    """A paper-schema table with Δ = delta(model, source task, source language, target ...)."""
    rows = [
        (model, size, st, sl, tt, tl, float(delta(model, st, sl, tt, tl)))
        for (model, size), (st, sl), (tt, tl) in itertools.product(
            models, itertools.product(tasks, languages), itertools.product(tasks, languages)
        )
    ]
    return pd.DataFrame(rows, columns=[*PAPER_COLUMNS[:6], "delta_score_norm_mean"])


def test_donor_correlation_between_groups():
    # one model, MT-CL Δ = the source language's donor score in that task, whatever the target
    donors = {"x": {"a": 1, "b": 2, "c": 3}, "y": {"a": 3, "b": 1, "c": 2}}
    frame = _grid(
        [("m-1b", 1)],
        ["x", "y"],
        ["a", "b", "c"],
        lambda m, st, sl, tt, tl: donors[st][sl] if st == tt and sl != tl else 0,
    )
    result = run_analysis(table_from_frame(frame, "grid.csv"), task_groups={"gx": ["x"]})
    roles = result.tables["roles_language_by_task_group"].set_index(["task_group", "language"])
    assert roles.loc["gx", "donor"].tolist() == [1, 2, 3]
    assert roles.loc["not gx", "donor"].tolist() == [3, 1, 2]
    # ranks (1, 2, 3) against (3, 1, 2): ρ = 1 − 6 Σd² / (n (n² − 1)) = 1 − 6·6/24 = −0.5,
    # p from t = ρ √((n − 2) / (1 − ρ²)) with n − 2 degrees of freedom
    rho = -0.5
    t = rho * np.sqrt(1 / (1 - rho**2))
    row = result.tables["donor_correlation_by_task_group"].iloc[0]
    assert (row["task_group"], row["versus"], row["n_languages"]) == ("gx", "not gx", 3)
    assert row["spearman_rho"] == pytest.approx(rho)
    assert row["spearman_p"] == pytest.approx(2 * stats.t.sf(abs(t), 1))


def _statsmodels_shares(rows: pd.DataFrame) -> dict[str, float]:
    """Variance shares of Δ from statsmodels' MixedLM: the released analysis's own model."""
    frame = pd.DataFrame(
        {
            "delta": rows["delta_score_norm_mean"].to_numpy(),
            "model": rows["model_name"].to_numpy(),
            "source": (rows["fine_tuned_dataset"] + ":" + rows["fine_tuned_language"]).to_numpy(),
            "target": (rows["eval_dataset"] + ":" + rows["eval_language"]).to_numpy(),
        }
    )
    fit = statsmodels_fit(frame)
    parts = {
        "model": float(fit.cov_re.iloc[0, 0]),
        "source": float(fit.vcomp[0]),
        "target": float(fit.vcomp[1]),
        "residual": float(fit.scale),
    }
    return {name: 100 * value / sum(parts.values()) for name, value in parts.items()}


def _regimes(frame: pd.DataFrame) -> np.ndarray:
    same_task = frame["fine_tuned_dataset"] == frame["eval_dataset"]
    same_language = frame["fine_tuned_language"] == frame["eval_language"]
    return np.where(
        same_task,
        np.where(same_language, "MT-ML", "MT-CL"),
        np.where(same_language, "CT-ML", "CT-CL"),
    )


def test_variance_on_the_rows_touching_a_group_and_the_rest():
    rng = np.random.default_rng(5)
    models = [("a-1b", 1), ("b-3b", 3), ("c-8b", 8)]
    tasks, languages = ["x", "y", "z"], ["de", "en", "fr"]
    model_effect = dict(zip(models, rng.normal(0, 2, 3), strict=True))
    source_effect = rng.normal(0, 1.5, (3, 3, 3))  # model, task, language
    target_effect = rng.normal(0, 1, (3, 3))

    def delta(m, st, sl, tt, tl):
        i = [name for name, _ in models].index(m)
        source = source_effect[i, tasks.index(st), languages.index(sl)]
        target = target_effect[tasks.index(tt), languages.index(tl)]
        return model_effect[models[i]] + source + target + rng.normal(0, 0.7)

    frame = _grid(models, tasks, languages, delta)
    result = run_analysis(table_from_frame(frame, "grid.csv"), task_groups={"gx": ["x"]})
    frame = frame.assign(regime=_regimes(frame))
    transfer = frame[frame["regime"] != "MT-ML"]
    touches = (transfer["fine_tuned_dataset"] == "x") | (transfer["eval_dataset"] == "x")
    # by hand, per model: 81 cells; 45 touch x (27 from its sources, 18 more to its targets),
    # 3 of them MT-ML; of the 42 transfer cells 6 are MT-CL, 12 CT-ML and 24 CT-CL. Of the 36
    # that do not touch x, 6 are MT-ML, 12 MT-CL, 6 CT-ML, 12 CT-CL. Only gx's CT-CL reaches
    # the 50 rows (3 × 24 = 72) a regime needs within a subset.
    expected = {
        "gx": transfer[touches],
        "gx CT-CL": transfer[touches & (transfer["regime"] == "CT-CL")],
        "not gx": transfer[~touches],
    }
    assert [len(rows) for rows in expected.values()] == [126, 72, 90]
    variance = result.tables["variance"]
    assert list(dict.fromkeys(variance["subset"])) == [
        "all", "MT-ML", "MT-CL", "CT-ML", "CT-CL", "transfer", *expected
    ]  # fmt: skip
    shares = variance.set_index(["subset", "component"])["share_pct"]
    for label, rows in expected.items():
        for component, value in _statsmodels_shares(rows).items():
            assert shares[(label, component)] == pytest.approx(value, abs=0.05), (label, component)


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"g": ["mmlx"]}, "task group 'g': no task 'mmlx' (did you mean 'mmlu'?)"),
        ({"g": []}, "task group 'g' lists no task"),
        ({"all": ["arc"]}, "'all' cannot name a task group"),
        ({"not g": ["arc"]}, "'not g' cannot name a task group"),
        ({"g": ["arc"], "h": ["arc", "mmlu"]}, "task 'arc' is in task groups 'g' and 'h'"),
    ],
)
def test_bad_task_groups(groups, message):
    with pytest.raises(UserError, match="task group") as error:
        run_analysis(table_from_frame(hand_grid(), "hand.csv"), task_groups=groups)
    assert message in str(error.value) and "hand.csv" in str(error.value)
