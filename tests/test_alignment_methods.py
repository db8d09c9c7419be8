"""BLI methods against independent computations: PROC, PROC-B's growth, ranks with ties, CSLS."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group

from transferlab.alignment.mapping import bootstrap_procrustes, normalize, procrustes
from transferlab.alignment.relate import (
    alignment_vs_transfer,
    by_layer,
    change_after_finetuning,
    pair_matrix,
)
from transferlab.alignment.retrieval import bli_scores, gold_ranks, similarity_matrix


def test_proc_equals_scipy_and_its_reverse_is_the_transpose():
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    expected, _ = orthogonal_procrustes(source, target)
    found = procrustes(source, target)
    np.testing.assert_allclose(found, expected, atol=1e-6)
    np.testing.assert_allclose(found @ found.T, np.eye(16), atol=1e-10)
    np.testing.assert_allclose(procrustes(target, source), found.T, atol=1e-10)


def test_proc_recovers_a_known_rotation():
    rng = np.random.default_rng(1)
    rotation = ortho_group.rvs(8, random_state=2)
    source = rng.normal(size=(50, 8))
    np.testing.assert_allclose(procrustes(source, source @ rotation), rotation, atol=1e-10)


def _rotated_and_shuffled(n: int = 10, d: int = 3):
    """Source rows, and target rows that are the same points rotated, in another order."""
    rng = np.random.default_rng(3)
    source = rng.normal(size=(n, d))
    rotation = ortho_group.rvs(d, random_state=4)
    order = rng.permutation(n)  # target row order[i] is source row i, rotated
    target = np.empty_like(source)
    target[order] = source @ rotation
    return source, target, order, rotation


def test_proc_b_grows_by_half_each_round_and_stops_below_one_percent():
    source, target, order, rotation = _rotated_and_shuffled()
    seed = [(i, int(order[i])) for i in range(3)]  # 3 pairs pin a 3-d rotation down
    result = bootstrap_procrustes(source, target, seed)
    # Round by round: |D| = 3 → min(int(1.5·3), 10k) = 4 → 6 → 9 → 13 capped by the 10 mutual
    # pairs → 10 → (15, again 10) → 10 < 1.01·10: stop.
    assert result.sizes == (3, 4, 6, 9, 10, 10)
    assert set(result.dictionary) == {(i, int(order[i])) for i in range(10)}
    np.testing.assert_allclose(result.weights, rotation, atol=1e-8)


def test_proc_b_stops_at_its_limit():
    source, target, order, _ = _rotated_and_shuffled()
    seed = [(i, int(order[i])) for i in range(3)]
    # 3 → 4 → min(6, 5) = 5 → the fit on 5 pairs reaches the limit: stop.
    assert bootstrap_procrustes(source, target, seed, limit=5).sizes == (3, 4, 5)


def test_ranks_with_ties_match_xling_evals_reversed_argsort():
    sims = np.array(
        [
            [0.9, 0.5, 0.9, 0.1],  # gold 0 ties with column 2, which comes first: rank 2
            [0.2, 0.8, 0.3, 0.8],  # gold 3 ties with column 1, gold comes first: rank 1
            [0.7, 0.6, 0.5, 0.4],  # gold 3 is last: rank 4
        ]
    )
    gold = np.array([0, 3, 3])
    ranks = gold_ranks(sims, gold)
    assert list(ranks) == [2, 1, 4]
    xling = [int(np.where(np.argsort(row, kind="stable")[::-1] == g)[0][0]) + 1
             for row, g in zip(sims, gold, strict=True)]  # fmt: skip
    assert list(ranks) == xling
    scores = bli_scores(ranks)
    assert scores == pytest.approx(
        {"p1": 1 / 3, "p5": 1.0, "p10": 1.0, "mrr": (0.5 + 1 + 0.25) / 3}
    )


def test_csls_is_twice_the_cosine_minus_both_neighbourhood_means():
    rng = np.random.default_rng(5)
    queries, targets, pool = (
        rng.normal(size=(4, 6)),
        rng.normal(size=(15, 6)),
        rng.normal(size=(12, 6)),
    )

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    cos = unit(queries) @ unit(targets).T
    expected = np.empty_like(cos)
    for i in range(4):
        r_t = np.mean(sorted(cos[i])[-3:])
        for j in range(15):
            r_s = np.mean(sorted(unit(pool) @ unit(targets)[j])[-3:])
            expected[i, j] = 2 * cos[i, j] - r_t - r_s
    found = similarity_matrix(queries, targets, "csls", all_queries=pool, k=3)
    np.testing.assert_allclose(found, expected, atol=1e-12)


def test_normalization_steps_apply_in_order():
    x = np.array([[3.0, 4.0], [1.0, 0.0]])
    np.testing.assert_allclose(normalize(x, ["unit"]), [[0.6, 0.8], [1.0, 0.0]])
    np.testing.assert_allclose(normalize(x, ["unit", "center"]), [[-0.2, 0.4], [0.2, -0.4]])
    np.testing.assert_allclose(normalize(x, []), x)


def _alignment_rows():
    rows = []
    for state, shift in (("base", 0.0), ("de-adapter", 0.1)):
        for (src, trg), mrr in {("de", "en"): 0.5, ("en", "de"): 0.4, ("de", "zh"): 0.2,
                                ("zh", "de"): 0.1}.items():  # fmt: skip
            for layer in (0, 1):
                rows.append({"model_state": state, "source_language": src, "target_language": trg,
                             "layer": layer, "method": "proc", "retrieval": "cosine",
                             "p1": mrr / 2 + shift, "p5": 1.0, "p10": 1.0,
                             "mrr": mrr + layer * 0.1 + shift, "n_test": 10})  # fmt: skip
    return pd.DataFrame(rows)


def test_change_after_finetuning_is_the_adapter_minus_the_base_in_points():
    change = change_after_finetuning(_alignment_rows())
    assert set(change["model_state"]) == {"de-adapter"} and len(change) == 8
    row = change[(change["source_language"] == "de") & (change["target_language"] == "zh")
                 & (change["layer"] == 1)].iloc[0]  # fmt: skip
    assert (row["mrr"], row["mrr_base"]) == pytest.approx((0.4, 0.3))
    assert row["delta_mrr"] == pytest.approx(10.0) and row["delta_p1"] == pytest.approx(10.0)


def test_by_layer_averages_over_pairs_and_pair_matrix_pivots():
    curves = by_layer(_alignment_rows())
    base0 = curves[(curves["model_state"] == "base") & (curves["layer"] == 0)].iloc[0]
    assert base0["mean"] == pytest.approx((0.5 + 0.4 + 0.2 + 0.1) / 4) and base0["n_pairs"] == 4
    matrix = pair_matrix(_alignment_rows(), "base", 1, "proc", "cosine")
    assert matrix.loc["de", "zh"] == pytest.approx(0.3) and np.isnan(matrix.loc["de", "de"])


def test_alignment_vs_transfer_correlates_pairs_present_in_both():
    alignment = _alignment_rows()
    alignment = alignment[alignment["model_state"] == "base"]
    transfer = pd.DataFrame(
        {
            "source_language": ["de", "en", "de", "zh", "de"],
            "target_language": ["en", "de", "zh", "de", "fr"],  # de→fr has no alignment row
            "delta": [3.0, 1.0, 2.0, -1.0, 9.0],
        }  # fmt: skip
    )
    table = alignment_vs_transfer(alignment, transfer, n_boot=200)
    row = table[table["layer"] == 0].iloc[0]
    x, y = np.array([0.5, 0.4, 0.2, 0.1]), np.array([3.0, 1.0, 2.0, -1.0])
    assert row["n"] == 4
    assert row["pearson_r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert row["spearman_rho"] == pytest.approx(np.corrcoef([4, 3, 2, 1], [4, 2, 3, 1])[0, 1])
    assert row["pearson_low"] <= row["pearson_r"] <= row["pearson_high"]


def test_proc_b_given_procs_fit_as_its_first_round_is_unchanged():
    source, target, order, _ = _rotated_and_shuffled(n=40, d=6)
    seed = [(i, int(order[i])) for i in range(8)]
    s_rows, t_rows = zip(*seed, strict=True)
    first = procrustes(source[list(s_rows)], target[list(t_rows)])
    alone, reused = (bootstrap_procrustes(source, target, seed, first=f) for f in (None, first))
    assert alone.sizes == reused.sizes and alone.dictionary == reused.dictionary
    np.testing.assert_array_equal(alone.weights, reused.weights)


def test_proc_with_fewer_seed_pairs_than_dimensions_leaves_unspanned_directions_in_place():
    # Seed pairs in the first 20 of 60 coordinates: PROC there, and the identity on the 40
    # coordinates no pair spans (the optimal map nearest the identity).
    rng = np.random.default_rng(5)
    source, target = np.zeros((30, 60)), np.zeros((30, 60))
    source[:, :20], target[:, :20] = rng.normal(size=(30, 20)), rng.normal(size=(30, 20))
    found = procrustes(source, target)
    expected, _ = orthogonal_procrustes(source[:, :20], target[:, :20])
    np.testing.assert_allclose(found[:20, :20], expected, atol=1e-10)
    np.testing.assert_allclose(found[20:, 20:], np.eye(40), atol=1e-10)
    np.testing.assert_allclose(found[:20, 20:], 0, atol=1e-10)
    np.testing.assert_allclose(found @ found.T, np.eye(60), atol=1e-10)


def test_proc_with_fewer_seed_pairs_than_dimensions_does_not_depend_on_torch_threads():
    # 150 pairs in 400 dimensions: 250 directions no pair spans, whose map must not change
    # with the number of threads a job runs with.
    import torch

    rng = np.random.default_rng(6)
    source, target = rng.normal(size=(150, 400)), rng.normal(size=(150, 400))
    previous = torch.get_num_threads()
    try:
        found = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            found.append(procrustes(source, target))
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_array_equal(found[0], found[1])
    assert torch.get_num_threads() == previous
