"""The rank and LoRA-vs-full ablations on small hand-made tables whose values are worked out."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from transferlab.analysis.ablations import (
    ablation_tables,
    method_table,
    rank_table,
    reference_rank,
    reference_rows,
)

SOURCES = [("a", "en"), ("a", "de")]
TARGETS = [("a", "en"), ("a", "de"), ("b", "en"), ("b", "de")]
# transfer Δ per variant, source by source, in TARGETS order without the trained cell
R32 = [2, -1, 0, 4, -3, 1]
R8 = [2 * d - 1 for d in R32]  # a linear function of r32: correlation 1
FULL = [3, -2, -1]  # trained on the first source only (an ablation on a subset)


def _regime(source, target):
    same_task, same_language = source[0] == target[0], source[1] == target[1]
    return {(True, True): "MT-ML", (True, False): "MT-CL", (False, True): "CT-ML"}.get(
        (same_task, same_language), "CT-CL"
    )


def _rows(method, rank, deltas, sources=SOURCES):
    rows, values = [], iter(deltas)
    for source in sources:
        for target in TARGETS:
            trained = source == target
            rows.append(
                {
                    "model": "m",
                    "source_task": source[0],
                    "source_language": source[1],
                    "target_task": target[0],
                    "target_language": target[1],
                    "regime": _regime(source, target),
                    "method": method,
                    "lora_r": rank,
                    "delta": 10.0 if trained else float(next(values)),
                }
            )
    return rows


def _table(*variants):
    cells = pd.DataFrame([row for variant in variants for row in variant])
    cells["lora_r"] = cells["lora_r"].astype("Int64")
    return cells


@pytest.fixture
def cells():
    return _table(
        _rows("lora", 32, R32), _rows("lora", 8, R8), _rows("full", None, FULL, SOURCES[:1])
    )


def test_rank_table_summarises_each_rank_and_correlates_it_with_r32(cells):
    table = rank_table(cells, "delta").set_index("lora_r")
    assert list(table.index) == [8, 32]
    r32 = table.loc[32]
    assert r32["n"] == 6  # the trained cells (MT-ML) are left out
    assert r32["mean"] == pytest.approx(0.5) and r32["median"] == pytest.approx(0.5)
    assert r32["p10"] == pytest.approx(-2.0) and r32["p90"] == pytest.approx(3.0)
    assert r32["pct_harm"] == pytest.approx(100 * 2 / 6)  # −3 and −1: Δ ≤ −1 pp is harm
    assert r32["pct_positive"] == pytest.approx(50.0)
    r8 = table.loc[8]
    assert r8["mean"] == pytest.approx(0.0) and r8["median"] == pytest.approx(0.0)
    assert r8["pct_harm"] == pytest.approx(50.0)
    assert r8["pearson_with_reference"] == pytest.approx(1.0)
    assert r8["spearman_with_reference"] == pytest.approx(1.0)
    assert r8["n_paired"] == 6
    assert set(table["reference_rank"]) == {32}
    assert "reference study" in table["reference_note"].iloc[0]


def test_without_r32_the_smallest_rank_is_the_reference_and_the_table_says_so(cells):
    no32 = cells[cells["lora_r"] != 32].copy()
    no32.loc[no32["lora_r"] == 8, "lora_r"] = 16
    extra = _table(_rows("lora", 64, [-d for d in R8]))
    table = rank_table(pd.concat([no32, extra], ignore_index=True), "delta").set_index("lora_r")
    assert set(table["reference_rank"]) == {16}
    assert "no r = 32" in table["reference_note"].iloc[0]
    assert table.loc[64, "pearson_with_reference"] == pytest.approx(-1.0)
    assert reference_rank(cells, 8) == (8, "r = 8, as asked")
    rank, note = reference_rank(cells, 128)  # a rank the table lacks: the default rule
    assert rank == 32 and note.startswith("r = 128 was asked for") and "reference study" in note


def test_full_against_lora_pairs_only_the_cells_both_trained(cells):
    table = method_table(cells, "delta").set_index("lora_r")
    r32 = table.loc[32]
    assert r32["n_paired"] == 3
    assert r32["mean_lora"] == pytest.approx(1 / 3) and r32["mean_full"] == pytest.approx(0.0)
    assert r32["mean_difference"] == pytest.approx(-1 / 3)  # full − LoRA: [1, −1, −1]
    assert r32["median_difference"] == pytest.approx(-1.0)
    assert r32["pct_sign_agreement"] == pytest.approx(100 * 2 / 3)  # 0 vs −1 disagrees
    # Pearson of [2, −1, 0] and [3, −2, −1]: covariance sum 8, sums of squares 42/9 and 14
    assert r32["pearson"] == pytest.approx(8 / math.sqrt(42 / 9 * 14))
    assert r32["spearman"] == pytest.approx(1.0)
    r8 = table.loc[8]  # [3, −3, −1] against [3, −2, −1]
    assert r8["mean_difference"] == pytest.approx(1 / 3) and r8["median_difference"] == 0
    assert r8["pct_sign_agreement"] == pytest.approx(100.0)


def test_the_main_analysis_reads_the_reference_variant_and_plain_tables_get_no_ablations(cells):
    mask = reference_rows(cells)
    assert set(cells.loc[mask, "lora_r"]) == {32} and mask.sum() == 8
    assert set(ablation_tables(cells, "delta")) == {"ablation_rank", "ablation_method"}
    plain = cells[mask]
    assert reference_rows(plain).all() and ablation_tables(plain, "delta") == {}
    no_variants = plain.drop(columns=["method", "lora_r"])
    assert ablation_tables(no_variants, "delta") == {}
    only_method = _table(_rows("lora", 32, R32), _rows("full", None, FULL, SOURCES[:1]))
    assert set(ablation_tables(only_method, "delta")) == {"ablation_method"}
