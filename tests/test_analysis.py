"""The analysis engine on hand-computable grids: every number of every table is asserted.

The grid (tests/analysis_tables.py): 2 models × 2 tasks × 2 languages × 2 seeds, mean Δ per
cell in HAND_DELTAS, seeds at Δ ∓ 1, acc Δ = half the headline Δ.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis_tables import hand_grid
from transferlab.analysis import run_analysis, table_from_frame
from transferlab.analysis.aggregate import to_paper_schema
from transferlab.analysis.bootstrap import cell_ci, items_from_frame
from transferlab.analysis.consistency import kendall_tau_b_matrix
from transferlab.analysis.distance import typological_distances
from transferlab.analysis.schema import PAPER_COLUMNS, family_of, parse_size_b, size_bucket
from transferlab.grid import REGIMES


@pytest.fixture(scope="module")
def hand():
    return run_analysis(table_from_frame(hand_grid(), "hand.csv"))


def records(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(row) for row in frame.itertuples(index=False)]


def approx(rows: list[tuple]) -> list[tuple]:
    """Expected rows with their floats compared to 1e-12."""
    return [
        tuple(pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in row)
        for row in rows
    ]


def test_regime_summary_matches_hand_computation(hand):
    regimes = hand.tables["regimes"]
    assert hand.metric == "delta_score_norm_mean"
    expected = [
        # regime, n, mean, median, % positive, % harm (Δ ≤ −1 pp counts, −1 included)
        ("MT-ML", 8, 3.25, 3.0, 100.0, 0.0),
        ("MT-CL", 8, 0.75, 0.5, 50.0, 25.0),
        ("CT-ML", 8, -0.5, -0.5, 37.5, 50.0),
        ("CT-CL", 8, 0.625, 0.5, 50.0, 25.0),
        ("transfer", 24, 7 / 24, 0.0, 100 * 11 / 24, 100 * 8 / 24),
    ]
    got = regimes[["regime", "n", "mean", "median", "pct_positive", "pct_harm"]]
    for row, want in zip(records(got), expected, strict=True):
        assert row[:2] == want[:2]
        assert row[2:] == pytest.approx(want[2:])
    # the bootstrap CI brackets the mean and is reproducible
    assert (regimes["ci_low"] <= regimes["mean"]).all()
    assert (regimes["mean"] <= regimes["ci_high"]).all()
    again = run_analysis(table_from_frame(hand_grid(), "hand.csv")).tables["regimes"]
    assert again[["ci_low", "ci_high"]].equals(regimes[["ci_low", "ci_high"]])


def test_roles_are_per_model_means_averaged_across_models(hand):
    # donor de: llama (2 + 1)/2 = 1.5, qwen (4 + 2)/2 = 3 → 2.25, SE |1.5 − 3|/2 = 0.75
    assert records(hand.tables["roles_language"]) == approx(
        [
            ("de", 2.25, 0.75, -0.75, 0.25),
            ("en", -0.75, 0.25, 2.25, 0.75),
        ]
    )
    # donor arc on CT-ML: llama (−1 − 3)/2 = −2, qwen (1 − 1)/2 = 0 → −1, SE 1
    assert records(hand.tables["roles_task"]) == approx(
        [
            ("arc", -1.0, 1.0, 0.0, 1.5),
            ("mmlu", 0.0, 1.5, -1.0, 1.0),
        ]
    )


def test_onoff_task_per_model_and_source(hand):
    onoff = hand.tables["onoff_task"]
    # one other language on-task, the other task in both languages off-task
    assert (onoff["n_on"] == 1).all() and (onoff["n_off"] == 2).all()
    assert records(onoff.drop(columns=["n_on", "n_off"])) == approx(
        [
            ("llama-1b", "arc", "de", 2.0, -0.5, 50.0),
            ("llama-1b", "arc", "en", -2.0, -1.0, 50.0),
            ("llama-1b", "mmlu", "de", 1.0, 2.0, 0.0),
            ("llama-1b", "mmlu", "en", 0.0, 0.5, 50.0),
            ("qwen-7b", "arc", "de", 4.0, -0.5, 50.0),
            ("qwen-7b", "arc", "en", 0.0, 1.0, 50.0),
            ("qwen-7b", "mmlu", "de", 2.0, -1.0, 50.0),
            ("qwen-7b", "mmlu", "en", -1.0, 0.0, 0.0),
        ]
    )


def test_harm_breakdown_of_mt_cl(hand):
    assert records(hand.tables["harm"]) == approx(
        [
            ("target_language", "de", 4, -0.75, -0.5, 0.0, 50.0),
            ("target_language", "en", 4, 2.25, 2.0, 100.0, 0.0),
            ("target_task", "arc", 4, 1.0, 1.0, 50.0, 25.0),
            ("target_task", "mmlu", 4, 0.5, 0.5, 50.0, 25.0),
            ("size", "L", 4, 1.25, 1.0, 50.0, 25.0),
            ("size", "S", 4, 0.25, 0.5, 50.0, 25.0),
            ("family", "llama", 4, 0.25, 0.5, 50.0, 25.0),
            ("family", "qwen", 4, 1.25, 1.0, 50.0, 25.0),
        ]
    )


def test_mean_delta_matrices_have_a_masked_diagonal(hand):
    language = hand.tables["matrix_language"]
    assert language.index.name == "source_language"
    assert list(language.columns) == ["de", "en"]
    assert language.loc["de", "en"] == 2.25 and language.loc["en", "de"] == -0.75
    assert np.isnan(language.loc["de", "de"]) and np.isnan(language.loc["en", "en"])
    task = hand.tables["matrix_task"]
    assert task.loc["arc", "mmlu"] == -1.0 and task.loc["mmlu", "arc"] == 0.0
    assert np.isnan(np.diag(task.to_numpy())).all()


def test_another_metric_and_models_table(hand):
    acc = run_analysis(table_from_frame(hand_grid(), "hand.csv"), metric="delta_score")
    assert acc.metric == "delta_score_mean"
    assert acc.tables["regimes"]["mean"].tolist() == pytest.approx(
        [1.625, 0.375, -0.25, 0.3125, 7 / 48]
    )
    assert records(hand.tables["models"]) == [
        ("llama-1b", "llama", 1.0, "S"),
        ("qwen-7b", "qwen", 7.0, "L"),
    ]


def test_consistency_is_empty_below_three_recipients(hand):
    consistency = hand.tables["consistency"]
    assert len(consistency) == 12  # 3 regimes × model | family | size | size_bucket
    assert (consistency["n_sources"] == 0).all() and consistency["median"].isna().all()


def test_seed_aggregation_gives_mean_sd_and_se():
    table = table_from_frame(hand_grid(), "hand.csv")
    paper = to_paper_schema(table.cells)
    assert list(paper.columns[: len(PAPER_COLUMNS)]) == list(PAPER_COLUMNS)
    assert len(paper) == 32
    row = paper.iloc[1]  # llama-1b, arc:de → arc:en, Δ 2 ± 1
    assert (row["model_name"], row["eval_language"], row["regime"]) == ("llama-1b", "en", "MT-CL")
    assert row["delta_score_norm_mean"] == 2.0
    assert row["delta_score_norm_std"] == pytest.approx(math.sqrt(2))
    assert row["delta_score_norm_se"] == pytest.approx(1.0)
    assert row["delta_score_se"] == pytest.approx(0.5)
    assert row["score_norm_mean"] == pytest.approx(0.52)
    assert (row["score_norm_base_mean"], row["score_norm_base_std"]) == (0.5, 0.0)
    assert (row["n_seeds"], row["seeds"], row["n_items"]) == (2, "17;42", 400)
    assert row["adapter_hash"] == "llama-1b-arc-de-17;llama-1b-arc-de-42"
    assert row["model_hash"] == "llama-1b-hash"


def _scores(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=float)


def test_kendall_tau_b_matches_scipy_with_ties_and_gaps():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 4, size=(5, 9)).astype(float)  # many ties
    values[1, [0, 4]] = np.nan
    values[3, 2] = np.nan
    tau = kendall_tau_b_matrix(values)
    for u in range(5):
        for v in range(5):
            if u == v:
                continue
            shared = ~np.isnan(values[u]) & ~np.isnan(values[v])
            expected = stats.kendalltau(values[u, shared], values[v, shared]).statistic
            assert tau[u, v] == pytest.approx(expected, nan_ok=True)


def test_consistency_index_by_model_family_and_size():
    # 3 models, one task, 4 languages: each source has 3 recipients (MT-CL)
    languages = ["de", "en", "fr", "hi"]
    orders = {  # Δ over the 3 recipients of each source, in language order
        "llama-1b": [1, 2, 3],
        "llama-8b": [1, 2, 3],
        "qwen-1.5b": [3, 2, 1],
    }
    rows = []
    for model, deltas in orders.items():
        for source in languages:
            targets = [lang for lang in languages if lang != source]
            for target, delta in zip(targets, deltas, strict=True):
                rows.append((model, model.split("-")[1], "arc", source, "arc", target, delta))
            rows.append((model, model.split("-")[1], "arc", source, "arc", source, 5.0))
    frame = pd.DataFrame(
        rows,
        columns=[
            "model_name",
            "model_size",
            "fine_tuned_dataset",
            "fine_tuned_language",
            "eval_dataset",
            "eval_language",
            "delta_score_norm_mean",
        ],
    )
    result = run_analysis(table_from_frame(frame, "consistency.csv"))
    summary = result.tables["consistency"].set_index(["regime", "grouping"])
    # models: τ(llama, llama) = 1, τ(llama, qwen) = −1 twice → CI = −1/3 for every source
    assert tuple(summary.loc[("MT-CL", "model")]) == pytest.approx((-1 / 3, -1 / 3, -1 / 3, 4))
    # families: llama averages to [1, 2, 3], qwen is reversed → τ = −1
    assert tuple(summary.loc[("MT-CL", "family")]) == pytest.approx((-1, -1, -1, 4))
    # exact sizes 1, 1.5 and 8 are one model each: the same index as by model
    assert tuple(summary.loc[("MT-CL", "size")]) == pytest.approx((-1 / 3, -1 / 3, -1 / 3, 4))
    # buckets: S = mean(llama-1b, qwen-1.5b) = [2, 2, 2] is constant → τ undefined, no source
    assert summary.loc[("MT-CL", "size_bucket"), "n_sources"] == 0
    assert summary.loc[("CT-ML", "model"), "n_sources"] == 0


def test_item_bootstrap_ci_is_paired_over_items():
    n = 40
    rows = []

    def add(model, seed, source, target, correct):
        for doc, value in enumerate(correct):
            src = source or ("", "")
            rows.append((model, seed, *src, *target, str(doc), value, value))

    base_a = [0] * n
    add("m", "", None, ("arc", "de"), base_a)
    add("m", "", None, ("arc", "en"), [1] * n)
    # arc:de gains on every item with both seeds: Δ = 100, CI [100, 100]
    for seed in (1, 2):
        add("m", seed, ("arc", "en"), ("arc", "de"), [1] * n)
    # arc:en: 10 of 40 items lost with seed 1 only → Δ = −12.5; the CI follows
    # the bootstrap distribution of the mean of d ∈ {−0.5 × 10, 0 × 30}
    add("m", 1, ("arc", "de"), ("arc", "en"), [0] * 10 + [1] * 30)
    add("m", 2, ("arc", "de"), ("arc", "en"), [1] * n)
    columns = [
        "model_name",
        "seed",
        "fine_tuned_dataset",
        "fine_tuned_language",
        "eval_dataset",
        "eval_language",
        "doc_id",
        "correct",
        "correct_norm",
    ]
    items = items_from_frame(pd.DataFrame(rows, columns=columns).astype(str), "items.csv.gz")
    ci = cell_ci(items, "delta_score_norm_mean", n_boot=20000, seed=1).set_index("eval_language")
    assert ci.loc["de", ["delta", "ci_low", "ci_high"]].tolist() == [100.0, 100.0, 100.0]
    assert not ci.loc["de", "contains_zero"]
    assert ci.loc["en", "delta"] == pytest.approx(-12.5)
    assert ci.loc["en", "n_items"] == n
    # resampling items: the number of lost items is Binomial(40, 1/4); Δ = −50 × k / 40
    low, high = -50 * stats.binom.ppf([0.975, 0.025], n, 0.25) / n
    assert ci.loc["en", "ci_low"] == pytest.approx(low, abs=1.25)
    assert ci.loc["en", "ci_high"] == pytest.approx(high, abs=1.25)
    assert not ci.loc["en", "contains_zero"]
    assert cell_ci(items, "score_norm_mean").empty  # not a Δ the items carry


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("meta-llama/Llama-3.2-1B-Instruct", "llama"),
        ("Qwen/Qwen2.5-7B-Instruct", "qwen"),
        ("google/gemma-3-4b-it", "gemma"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "smollm"),
        ("/models/7b", "7b"),
    ],
)
def test_family_from_model_name(name, family):
    assert family_of(name) == family


@pytest.mark.parametrize(
    ("value", "size", "bucket"),
    [
        (1.5, 1.5, "S"),
        ("1.5B", 1.5, "S"),
        ("8B", 8.0, "L"),
        ("135M", 0.135, "S"),
        ("4b", 4.0, "M"),
        ("7", 7.0, "L"),
        ("1.7B", 1.7, "M"),
        ("9.4528e-05", 9.4528e-05, "S"),
        ("0.0", 0.0, "S"),
    ],
)
def test_model_size_as_number_or_text(value, size, bucket):
    assert parse_size_b(value) == pytest.approx(size)
    assert size_bucket(parse_size_b(value)) == bucket


@pytest.mark.parametrize("value", ["", "big", "1.5T", "-1", -0.5, float("nan"), "1e"])
def test_model_size_rejects_what_is_not_a_size(value):
    assert parse_size_b(value) is None


def test_regime_labels_are_read_case_insensitively():
    frame = hand_grid()
    frame["regime"] = frame["regime"].str.lower()
    table = table_from_frame(frame, "hand.csv")
    assert table.cells["regime"].value_counts().to_dict() == dict.fromkeys(REGIMES, 8)


def test_family_override():
    table = table_from_frame(hand_grid(), "hand.csv").with_families({"qwen-7b": "other"})
    assert table.models["model_family"].tolist() == ["llama", "other"]


def test_typological_distances_from_uriel():
    distances = typological_distances(["de", "en", "es", "it", "zh", "xx"])
    assert len(distances) == 10  # 5 known languages, 'xx' left out
    pair = distances.set_index(["language_a", "language_b"])
    assert (
        (
            (distances[["syntax", "phonology", "inventory"]] >= 0)
            & (distances[["syntax", "phonology", "inventory"]] <= 1)
        )
        .all()
        .all()
    )
    assert pair.loc[("es", "it"), "syntax"] < pair.loc[("es", "zh"), "syntax"]
    assert pair.loc[("de", "en"), "syntax"] < pair.loc[("en", "zh"), "syntax"]
    # zh is Mandarin (cmn), as in the reference study, not URIEL's macrolanguage zho
    as_cmn = typological_distances(["en", "cmn"]).iloc[0]
    as_zho = typological_distances(["en", "zho"]).iloc[0]
    assert pair.loc[("en", "zh")].tolist() == as_cmn[["syntax", "phonology", "inventory"]].tolist()
    assert pair.loc[("en", "zh"), "syntax"] != as_zho["syntax"]


def test_distance_correlation_of_mt_cl_transfer():
    languages = ["de", "en", "es", "it"]
    distances = typological_distances(languages).set_index(["language_a", "language_b"])
    rows = []
    for model, size in (("a-1b", 1), ("b-8b", 8)):
        for source, target in itertools.product(languages, languages):
            key = tuple(sorted((source, target)))
            # transfer falls exactly with syntactic distance (the diagonal is MT-ML)
            delta = 5.0 if source == target else -10 * distances.loc[key, "syntax"]
            rows.append((model, size, "arc", source, "arc", target, delta))
    frame = pd.DataFrame(rows, columns=[*PAPER_COLUMNS[:6], "delta_score_norm_mean"])
    result = run_analysis(
        table_from_frame(frame, "distance.csv"), distances=typological_distances(languages)
    )
    pairs = result.tables["distance_pairs"]
    assert len(pairs) == 12  # ordered pairs of 4 languages
    correlation = result.tables["distance_correlation"].set_index("feature_set")
    assert correlation.loc["syntax", "n_pairs"] == 12
    assert correlation.loc["syntax", "pearson_r"] == pytest.approx(-1.0)
    assert correlation.loc["syntax", "spearman_rho"] == pytest.approx(-1.0)
    assert -1 <= correlation.loc["phonology", "pearson_r"] <= 1
