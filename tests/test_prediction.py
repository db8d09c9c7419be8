"""Prediction of hidden sources: each piece against an independent computation on small tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis_tables import HAND_CELLS, hand_grid
from transferlab.analysis import table_from_frame
from transferlab.analysis.schema import PAPER_COLUMNS
from transferlab.errors import UserError
from transferlab.prediction import methods
from transferlab.prediction.data import make_design, prediction_frame, source_rows
from transferlab.prediction.evaluate import evaluate_predictions
from transferlab.prediction.intervals import conformal_widths, interval_bounds
from transferlab.prediction.recommend import recommend_sources
from transferlab.prediction.scoring import ndcg_at_k, noise_floor, regret_at_k, score_hidden
from transferlab.prediction.splits import given_split, random_splits
from transferlab.prediction.synthetic import paper_shaped_table

SMALL = dict(
    models=[("a-1b", "1B"), ("b-2b", "2B")], tasks=["x", "y"], languages=["de", "en", "fr"]
)


@pytest.fixture(scope="module")
def hand():
    return prediction_frame(table_from_frame(hand_grid(), "hand.csv"))


@pytest.fixture(scope="module")
def small():
    distances = pd.DataFrame(
        {"language_a": ["de", "de", "en"], "language_b": ["en", "fr", "fr"],
         "syntax": [0.2, 0.4, 0.3], "phonology": [0.4, 0.2, 0.5], "inventory": [0.0, 0.3, 0.1]}
    )  # fmt: skip
    table = table_from_frame(paper_shaped_table(**SMALL, seed=3), "small.csv")
    return prediction_frame(table, distances=distances)


def test_prediction_frame_keys_base_and_distances(hand, small):
    assert len(hand) == 2 * 4 * 4 and hand["measured"].all()
    row = hand[(hand["model"] == "qwen-7b") & (hand["source_task"] == "arc")]
    row = row[(row["source_language"] == "de") & (row["target_task"] == "mmlu")]
    row = row.set_index("target_language")
    # HAND_DELTAS qwen-7b arc:de → mmlu:de, mmlu:en = 1, -2; each seed is ±1 around it
    assert row.loc["de", "delta"] == 1 and row.loc["en", "delta"] == -2
    assert row.loc["de", "se"] == pytest.approx(math.sqrt(2) / math.sqrt(2))
    assert row.loc["de", "regime"] == "CT-ML" and row.loc["en", "regime"] == "CT-CL"
    assert (hand["source_base"] == 0.5).all()
    pair = small[(small["source_language"] == "de") & (small["target_language"] == "fr")]
    assert np.allclose(pair["distance"], (0.4 + 0.2 + 0.3) / 3)
    back = small[(small["source_language"] == "fr") & (small["target_language"] == "de")]
    assert np.allclose(back["distance"], (0.4 + 0.2 + 0.3) / 3)
    same = small[small["source_language"] == small["target_language"]]
    assert (same["distance"] == 0).all()


def test_unmeasured_sources_get_rows():
    frame = hand_grid()
    frame = frame[
        ~((frame["fine_tuned_dataset"] == "mmlu") & (frame["fine_tuned_language"] == "en"))
    ]
    grid = prediction_frame(table_from_frame(frame, "holes.csv"))
    assert len(grid) == 32 and (~grid["measured"]).sum() == 2 * 4
    missing = grid[~grid["measured"]]
    assert set(zip(missing["source_task"], missing["source_language"], strict=True)) == {
        ("mmlu", "en")
    }
    assert missing["delta"].isna().all()


def test_regime_target_is_the_mean_of_observed_rows_in_regime_and_target(hand):
    design = make_design(hand)
    observed = ~((hand["source_task"] == "mmlu") & (hand["source_language"] == "en")).to_numpy()
    predicted = methods.predict_regime_target(design, observed)
    for index in np.flatnonzero(~observed):
        entry = hand.iloc[index]
        seen = hand[observed & (hand["model"] == entry["model"]).to_numpy()]
        same = seen[(seen["regime"] == entry["regime"])]
        cell = same[(same["target_task"] == entry["target_task"])
                    & (same["target_language"] == entry["target_language"])]  # fmt: skip
        expected = cell["delta"].mean() if len(cell) else same["delta"].mean()
        assert predicted[index] == pytest.approx(expected)
    # llama mmlu:en → arc:de is CT-CL; the only other CT-CL row onto arc:de is mmlu:en itself,
    # so it falls back to llama's mean over its observed CT-CL entries (HAND_DELTAS):
    # arc:de → mmlu:en 0, arc:en → mmlu:de 1, mmlu:de → arc:en 3
    first = np.flatnonzero(~observed)[0]
    assert hand.iloc[first][["model", "target_task", "target_language"]].tolist() == [
        "llama-1b",
        "arc",
        "de",
    ]
    assert predicted[first] == pytest.approx((0 + 1 + 3) / 3)


def _ridge_by_hand(y, observed, parts, shrinks):
    """Dense ridge with an unpenalised intercept: the normal equations solved with numpy."""
    columns, penalty = [np.ones(len(y))], [0.0]
    for (codes, x), shrink in zip(parts, shrinks, strict=True):
        for group in np.unique(codes[observed]):
            columns.append(np.where(codes == group, 1.0 if x is None else x, 0.0))
            penalty.append(shrink)
    design = np.column_stack(columns)
    fit = design[observed]
    beta = np.linalg.solve(fit.T @ fit + np.diag(penalty), fit.T @ y[observed])
    return design @ beta


@pytest.mark.parametrize("name", ["additive", "completion"])
def test_penalised_methods_are_the_ridge_solution(small, name):
    design = make_design(small)
    rows = source_rows(design)
    observed = random_splits(rows, 0.5, 1, seed=1, min_observed=3)[0][design.row]
    y = small["delta"].to_numpy(float)
    parts = [(design.codes(c), None) for c in methods.ADDITIVE]
    if name == "completion":
        parts += [(design.codes(c), None) for c in methods.SIDE]
        per_regime, per_model = design.codes(("model", "regime")), design.codes(("model",))
        for codes, column in ((per_regime, "distance"), (per_model, "source_base")):
            values = small[column].to_numpy(float)
            means = pd.Series(values[observed]).groupby(codes[observed]).mean()
            parts.append((codes, np.nan_to_num(values - means.reindex(codes).to_numpy())))
    shrinks = [methods.SHRINK] * len(parts)
    shrinks[methods.ADDITIVE.index(("model", "source_task", "source_language"))] = (
        methods.ROW_SHRINK
    )
    expected = _ridge_by_hand(y, observed, parts, shrinks)
    assert np.allclose(methods.METHODS[name](design, observed), expected, atol=1e-6)


def test_hierarchical_is_the_ridge_solution_with_source_task_and_language_effects(small):
    design = make_design(small)
    observed = random_splits(source_rows(design), 0.5, 1, seed=2, min_observed=3)[0][design.row]
    parts = [(design.codes(c), None) for c in methods.HIERARCHICAL]
    shrinks = [methods.SHRINK] * len(parts)
    shrinks[methods.HIERARCHICAL.index(("model", "source_task", "source_language"))] = (
        methods.ROW_SHRINK
    )
    expected = _ridge_by_hand(small["delta"].to_numpy(float), observed, parts, shrinks)
    assert np.allclose(methods.predict_hierarchical(design, observed), expected, atol=1e-6)


def test_stacked_blends_hierarchical_and_lowrank_and_never_reads_hidden_rows(small):
    design = make_design(small)
    observed = random_splits(source_rows(design), 0.5, 1, seed=4, min_observed=3)[0][design.row]
    stacked = methods.predict_stacked(design, observed)
    near = methods.predict_hierarchical(design, observed)
    far = methods.predict_lowrank(design, observed)
    weights = [
        w for w in methods.WEIGHTS if np.allclose(stacked, near + w * (far - near), atol=1e-8)
    ]
    assert weights, "stacked is hierarchical + w × (lowrank − hierarchical) for a w of the grid"
    # the hidden rows' measured Δ play no part: scrambling them changes nothing
    scrambled = small.assign(delta=np.where(observed, small["delta"], -small["delta"] + 7.0))
    again = methods.predict_stacked(make_design(scrambled), observed)
    assert np.allclose(again, stacked)


def test_inner_folds_hold_out_each_observed_row_once_per_model(small):
    design = make_design(small)
    observed = random_splits(source_rows(design), 0.5, 1, seed=4, min_observed=3)[0][design.row]
    folds = methods.inner_folds(design, observed)
    rows = np.concatenate(folds)
    assert sorted(rows) == sorted(np.unique(design.row[observed]))  # each observed row once
    # 3 of 6 sources observed per model: one row per fold, each fold has one row of each model
    assert all(len(f) == 2 for f in folds) and len(folds) == 3


def test_soft_impute_is_a_fixed_point_of_singular_value_shrinkage():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(8, 3)) @ rng.normal(size=(3, 12)) + rng.normal(0, 0.1, (8, 12))
    matrix[rng.random(matrix.shape) < 0.3] = np.nan
    completed = methods.soft_impute(matrix, shrink_frac=0.1, iterations=5000, tol=1e-12)
    missing = np.isnan(matrix)
    assert np.array_equal(completed[~missing], matrix[~missing])
    shrink = 0.1 * np.linalg.norm(np.nan_to_num(matrix), 2)
    u, s, vt = np.linalg.svd(completed, full_matrices=False)
    again = (u * np.maximum(s - shrink, 0)) @ vt
    assert np.allclose(again[missing], completed[missing], atol=1e-8)


def test_lowrank_fills_one_models_hidden_row_from_another_model():
    # what completion leaves of model b's row x:de fills model a's hidden one through soft-impute
    frame = paper_shaped_table(**SMALL, seed=5)
    table = prediction_frame(table_from_frame(frame, "small.csv"))
    design = make_design(table)
    observed = np.ones(len(table), dtype=bool)
    observed[(table["model"] == "a-1b") & (table["source_language"] == "de")] = False
    lowrank = methods.predict_lowrank(design, observed)
    completion = methods.predict_completion(design, observed)
    source, column = design.codes(methods.SOURCE), design.codes(methods.M_TARGET)
    residual = np.full((source.max() + 1, column.max() + 1), np.nan)
    residual[source[observed], column[observed]] = (table["delta"].to_numpy() - completion)[
        observed
    ]
    filled = methods.soft_impute(residual)
    assert np.allclose(lowrank - completion, filled[source, column])
    assert np.allclose(lowrank[observed], table["delta"].to_numpy()[observed])
    hidden = ~observed
    assert not np.allclose(lowrank[hidden], completion[hidden])


def test_random_splits_per_model_and_reproducible(small):
    rows = source_rows(make_design(small))
    first = random_splits(rows, 0.5, 3, seed=7, min_observed=2)
    again = random_splits(rows, 0.5, 3, seed=7, min_observed=2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    for mask in first:  # 6 sources per model, half observed
        assert pd.Series(mask).groupby(rows["model"]).sum().tolist() == [3, 3]
    assert not np.array_equal(first[0], first[1]) or not np.array_equal(first[1], first[2])
    with pytest.raises(UserError, match="observes 1"):
        random_splits(rows, 0.2, 1, seed=0, min_observed=3)
    with pytest.raises(UserError, match="not between 0 and 1"):
        random_splits(rows, 1.0, 1, seed=0, min_observed=3)
    hidden = given_split(rows, [("x", "de"), ("y", "fr")], min_observed=3)
    kept = rows[hidden]
    assert len(kept) == 8 and ("x", "de") not in set(
        zip(kept["source_task"], kept["source_language"], strict=True)
    )
    with pytest.raises(UserError, match="source z:de is not in the table"):
        given_split(rows, [("z", "de")], min_observed=3)


def test_conformal_width_is_the_ceil_rank_residual():
    residuals = np.array([0.5, -1.0, 2.0, -3.0, 4.0, np.nan, 0.1, -0.2, 0.3, 0.4])
    regimes = np.array(["MT-CL"] * 10)
    widths = conformal_widths(residuals, regimes, level=0.8)
    # 9 finite residuals: the ceil(10 · 0.8) = 8th smallest |r| of 0.1 0.2 0.3 0.4 0.5 1 2 3 4
    assert widths["all"] == 3.0 and widths["MT-CL"] == 3.0  # fewer than 30: the pooled width
    assert conformal_widths(residuals, regimes, level=0.95)["all"] == math.inf
    lower, upper = interval_bounds(np.array([1.0]), np.array(["CT-CL"]), widths)
    assert (lower[0], upper[0]) == (-2.0, 4.0)


def test_ndcg_and_regret_by_hand():
    true = np.array([3.0, 2.0, 1.0, 0.0])  # relevance 4 3 2 1
    predicted = np.array([2.0, 3.0, 0.0, 1.0])  # picks candidates 1, 0, 3
    dcg = 3 + 4 / math.log2(3) + 1 / 2
    ideal = 4 + 3 / math.log2(3) + 2 / 2
    assert ndcg_at_k(true, predicted) == pytest.approx(100 * dcg / ideal)
    assert ndcg_at_k(true, true) == pytest.approx(100)
    assert regret_at_k(true, predicted) == 0.0
    assert regret_at_k(true, -true) == pytest.approx(3.0 - 2.0)


def test_score_hidden_by_hand():
    keys = {"model": "m", "target_task": "t", "target_language": "de"}
    hidden = pd.DataFrame(
        [{**keys, "source_task": "s", "source_language": lang, "regime": regime,
          "observed": obs, "predicted": pred, "lower": pred - 1, "upper": pred + 1}
         for lang, regime, obs, pred in [("de", "CT-ML", 4.0, 3.0), ("en", "CT-CL", 1.0, 2.5),
                                         ("fr", "CT-CL", 2.0, 2.0), ("zh", "CT-CL", -1.0, 0.0),
                                         ("it", "CT-CL", 0.0, -0.5)]]
    )  # fmt: skip
    scores = score_hidden(hidden)
    errors = np.array([-1.0, 1.5, 0.0, 1.0, -0.5])
    assert scores["mae"] == pytest.approx(np.abs(errors).mean())
    assert scores["rmse"] == pytest.approx(np.sqrt((errors**2).mean()))
    assert scores["coverage"] == pytest.approx(100 * 4 / 5)  # en misses by 0.5
    true, pred = hidden["observed"].to_numpy(), hidden["predicted"].to_numpy()
    assert scores["spearman"] == pytest.approx(stats.spearmanr(true, pred).statistic)
    assert scores["ndcg3"] == pytest.approx(ndcg_at_k(true, pred))
    assert scores["regret3"] == 0.0  # the best (de) is predicted best


def test_noise_floor():
    floor = noise_floor(pd.Series([0.3, 0.4, np.nan]))
    assert floor["noise_rmse"] == pytest.approx(math.sqrt((0.09 + 0.16) / 2))
    assert floor["noise_mae"] == pytest.approx(math.sqrt(2 / math.pi) * floor["noise_rmse"])


def test_evaluate_predictions_scores_match_the_predictions(small):
    result = evaluate_predictions(small, observed_frac=0.5, n_splits=2, seed=0)
    assert list(result.scores["method"]) == list(methods.METHODS)
    assert (result.scores["n_splits"] == 2).all()
    first = result.per_split[result.per_split["split"] == 0].set_index("method")
    for name, rows in result.predictions.groupby("method"):
        assert len(rows) == 2 * 3 * 6  # 3 hidden sources per model × 6 targets
        error = (rows["predicted"] - rows["observed"]).abs().mean()
        assert first.loc[name, "mae"] == pytest.approx(error)
    means = result.per_split.groupby("method")["mae"].mean()
    assert result.scores.set_index("method")["mae"].to_dict() == pytest.approx(means.to_dict())
    with pytest.raises(UserError, match="unknown method 'lowrnak'"):
        evaluate_predictions(small, methods=["lowrnak"])


def test_recommend_by_hand(hand):
    targets = [("mmlu", "de")]
    ranked = recommend_sources(hand, targets, harm_budget=1.0, max_risk=0.5, model="llama-1b")
    # llama rows of HAND_DELTAS; target mmlu:de is column 2; SE of every cell is 1 (seeds ±1)
    deltas = np.array([[4, 2, -1, 0], [-2, 6, 1, -3], [1, 3, 5, 1], [-1, 2, 0, 3]], dtype=float)
    risk = stats.norm.cdf((-1.0 - np.delete(deltas, 2, axis=1)) / 1.0).max(axis=1)
    expected = pd.DataFrame(
        {"source": [f"{t}:{lang}" for t, lang in HAND_CELLS], "gain": deltas[:, 2], "risk": risk}
    )
    expected["admissible"] = expected["risk"] <= 0.5
    expected = expected.sort_values(["admissible", "gain"], ascending=[False, False])
    got = ranked.assign(source=ranked["source_task"] + ":" + ranked["source_language"])
    assert list(got["source"]) == list(expected["source"])
    assert np.allclose(got["expected_gain"], expected["gain"])
    assert np.allclose(got["risk"], expected["risk"])
    assert (got["status"] == "measured").all() and list(got["rank"]) == [1, 2, 3, 4]
    assert np.allclose(got["gain_sd"], 1.0)
    # protecting only arc:en: the worst protected cell is always arc:en
    guarded = recommend_sources(hand, targets, protect=[("arc", "en")], model="llama-1b")
    assert (guarded["worst_protected"] == "arc:en").all()
    for bad, message in [({"harm_budget": -1}, "--harm-budget"),
                         ({"harm_budget": float("nan")}, "--harm-budget"),
                         ({"model": "nope"}, "unknown model")]:  # fmt: skip
        with pytest.raises(UserError, match=message):
            recommend_sources(hand, targets, **bad)
    with pytest.raises(UserError, match="target mmlu:zh is not in the table"):
        recommend_sources(hand, [("mmlu", "zh")])


def test_recommend_predicts_unmeasured_sources():
    frame = paper_shaped_table(**SMALL, seed=2)
    frame = frame[~((frame["fine_tuned_dataset"] == "y") & (frame["fine_tuned_language"] == "fr"))]
    grid = prediction_frame(table_from_frame(frame, "holes.csv"))
    ranked = recommend_sources(grid, [("y", "fr")], model="a-1b")
    status = ranked.set_index(ranked["source_task"] + ":" + ranked["source_language"])["status"]
    assert status["y:fr"] == "predicted" and (status.drop("y:fr") == "measured").all()
    design = make_design(grid[grid["model"] == "a-1b"].reset_index(drop=True))
    one = design.frame
    predicted = methods.predict_completion(design, one["measured"].to_numpy())
    own = (one["source_task"] == "y") & (one["source_language"] == "fr")
    target = own & (one["target_task"] == "y") & (one["target_language"] == "fr")
    row = ranked[(ranked["source_task"] == "y") & (ranked["source_language"] == "fr")].iloc[0]
    assert row["expected_gain"] == pytest.approx(predicted[target.to_numpy()][0])


def test_paper_shaped_table_schema_and_seed_statistics():
    frame = paper_shaped_table(**SMALL, seed=1)
    assert list(frame.columns) == list(PAPER_COLUMNS) and len(frame) == 2 * 6 * 6
    delta = 100 * (frame["score_norm_mean"] - frame["score_norm_base_mean"])
    assert np.allclose(delta, frame["delta_score_norm_mean"])
    assert np.allclose(frame["delta_score_norm_se"], frame["delta_score_norm_std"] / math.sqrt(3))
    # per-seed Δ are whole multiples of 0.25 pp, so three-seed means are multiples of 1/12
    twelfths = frame["delta_score_norm_mean"] * 12
    assert np.allclose(twelfths, np.round(twelfths))
    again = paper_shaped_table(**SMALL, seed=1)
    pd.testing.assert_frame_equal(frame, again)


def test_active_choice_and_curve(small):
    from transferlab.prediction import active

    design = make_design(small)
    rows = source_rows(design)
    allowed = np.ones(len(rows), dtype=bool)
    start = active.spread_start(rows, allowed, 2, seed=0)
    for _, picked in rows[start].groupby("model"):
        # two sources per model, on both tasks and two different languages
        assert len(picked) == 2 and picked["source_task"].nunique() == 2
        assert picked["source_language"].nunique() == 2
    trained = active.spread_start(rows, allowed, 3, seed=1)
    targets = [("x", "fr")]
    greedy = active.choose_next(design, trained, allowed, 1, "greedy", targets)
    predicted = methods.predict_completion(design, trained[design.row])
    on_target = (small["target_task"] == "x") & (small["target_language"] == "fr")
    gain = pd.Series(predicted[on_target.to_numpy()], index=design.row[on_target.to_numpy()])
    for model, index in rows.groupby("model").groups.items():
        open_rows = [i for i in index if not trained[i]]
        assert np.flatnonzero(greedy & (rows["model"] == model).to_numpy()).tolist() == [
            max(open_rows, key=lambda i: gain[i])
        ]
    uncertain = active.choose_next(design, trained, allowed, 2, "uncertainty", seed=3)
    spread = active.row_uncertainty(design, trained, "completion", 4, 3)
    assert not (uncertain & trained).any() and uncertain.sum() == 2 * 2
    # models in turn; the source cells fewest models have trained come first, then the spread
    cells = list(zip(rows["source_task"], rows["source_language"], strict=True))
    taken = {c: sum(cells[i] == c for i in np.flatnonzero(trained)) for c in set(cells)}
    for model, index in rows.groupby("model").groups.items():
        open_rows = sorted(
            (i for i in index if not trained[i]), key=lambda i: (taken[cells[i]], -spread[i])
        )
        assert set(np.flatnonzero(uncertain & (rows["model"] == model).to_numpy())) == set(
            open_rows[:2]
        )
        for i in open_rows[:2]:
            taken[cells[i]] += 1
    curves = [
        active.active_curve(small, budget=4, batch=1, strategy=s, initial=2, targets=targets)
        for s in active.STRATEGIES
    ]
    for curve in curves:
        assert curve["trained_per_model"].tolist() == [2, 3, 4]
    # every strategy starts from the same spread and check set
    assert len({round(c["check_mae"].iloc[0], 12) for c in curves}) == 1
    with pytest.raises(UserError, match="unknown strategy 'greedyy'"):
        active.choose_next(design, trained, allowed, 1, "greedyy")
    with pytest.raises(UserError, match="greedy needs named targets"):
        active.choose_next(design, trained, allowed, 1, "greedy")


def test_one_seed_noise_comes_from_the_items():
    from transferlab.analysis.bootstrap import items_from_frame

    frame = hand_grid()
    frame = frame[frame["seed"] == 17]
    base = [0, 1, 1, 0, 1]
    tuned = [1, 1, 0, 1, 1]  # paired differences 1 0 -1 1 0
    rows = [("llama-1b", "", "", "", d, b) for d, b in enumerate(base)]
    rows += [("llama-1b", 17, "arc", "de", d, c) for d, c in enumerate(tuned)]
    items = pd.DataFrame(
        [{"model_name": m, "seed": s, "fine_tuned_dataset": t, "fine_tuned_language": lang,
          "eval_dataset": "arc", "eval_language": "en", "doc_id": d, "correct": c,
          "correct_norm": c} for m, s, t, lang, d, c in rows]
    )  # fmt: skip
    table = table_from_frame(frame, "one.csv", items=items_from_frame(items, "items.csv.gz"))
    grid = prediction_frame(table)
    cell = grid[(grid["model"] == "llama-1b") & (grid["source_task"] == "arc")
                & (grid["source_language"] == "de") & (grid["target_language"] == "en")
                & (grid["target_task"] == "arc")]  # fmt: skip
    differences = np.array([1, 0, -1, 1, 0])
    assert cell["se"].iloc[0] == pytest.approx(100 * differences.std(ddof=1) / math.sqrt(5))
    assert grid["se"].notna().sum() == 1  # one seed and no items elsewhere: no noise estimate
