"""Mixture sources: drawing, keys, the single-part parity with a plain source, per-part validation."""

from __future__ import annotations

import hashlib
import json

import pytest

from study_tiny import write_study
from transferlab.config import load_study
from transferlab.errors import UserError
from transferlab.grid import Cell, Source
from transferlab.jobs.train import run_training
from transferlab.mixtures import draw_items
from transferlab.plan import plan_study

EN, DE, ZH = Cell("alpha", "en"), Cell("alpha", "de"), Cell("alpha", "zh")
POOL = [f"alpha-{i}" for i in range(6, 18)]


def test_a_draw_is_seeded_nested_in_pool_order_and_disjoint_when_asked():
    pools = {EN: POOL, DE: POOL, ZH: POOL}
    small = draw_items(Source.mixture({EN: 4, DE: 3}), pools, seed=1)
    again = draw_items(Source.mixture({DE: 3, EN: 4}), pools, seed=1)
    larger = draw_items(Source.mixture({EN: 4, DE: 6}), pools, seed=1)
    other_seed = draw_items(Source.mixture({EN: 4, DE: 3}), pools, seed=2)
    assert small == again  # the same mixture however written
    assert [len(small[EN]), len(small[DE])] == [4, 3]
    assert set(small[DE]) < set(larger[DE]) and small[EN] == larger[EN]  # k grows, items stay
    assert small != other_seed
    assert all(ids == sorted(ids, key=POOL.index) for ids in small.values())  # pool order
    whole = draw_items(Source.mixture({EN: len(POOL)}), pools, seed=5)
    assert whole[EN] == POOL

    disjoint = draw_items(Source.mixture({EN: 6, DE: 3, ZH: 3}, disjoint_ids=True), pools, 1)
    assert not set(disjoint[EN]) & set(disjoint[DE])
    assert not set(disjoint[DE]) & set(disjoint[ZH]) and not set(disjoint[EN]) & set(disjoint[ZH])
    assert (
        disjoint[EN] == draw_items(Source.mixture({EN: 6}), pools, 1)[EN]
    )  # first part draws first
    overlapping = draw_items(Source.mixture({EN: 6, DE: 6}), pools, 1)
    assert set(overlapping[EN]) & set(overlapping[DE])  # without the option, IDs may repeat


def test_labels_name_counts_and_the_disjoint_option_and_parse_back():
    mix = Source.mixture({EN: 8, DE: 2}, disjoint_ids=True)
    assert mix.label == "mix(alpha:en=8,alpha:de=2;disjoint_ids)"  # draw order kept
    assert Source.parse(mix.label) == mix
    plain = Source.mixture({DE: 2, EN: 8})
    assert plain.label == "mix(alpha:de=2,alpha:en=8)" and Source.parse(plain.label) == plain
    assert Source.mixture({EN: 12}).label == "mix(alpha:en=12)" != Source.single(EN).label


@pytest.fixture
def mixture_study(tmp_path, tiny_model_dir):
    return write_study(
        tmp_path,
        tiny_model_dir,
        tasks=("alpha",),
        sources=[
            "alpha:en",
            {"parts": {"alpha:en": "all"}},
            {"parts": {"alpha:en": 6, "alpha:de": 3}},
            {"parts": {"alpha:en": 6, "alpha:de": 3}, "disjoint_ids": True},
            {"parts": {"alpha:en": 6, "alpha:de": 4}},
            {"parts": {"alpha:en": 3, "alpha:de": 1}, "total": 8},
        ],
    )


def test_drawn_ids_are_in_the_key_and_recorded_with_the_adapter(mixture_study):
    jobs = {j.source.label: j for j in plan_study(load_study(mixture_study)).train_jobs}
    assert list(jobs) == [
        "alpha:en",
        "mix(alpha:en=10)",  # the whole pool: the 12-item pool less 2 for validation
        "mix(alpha:de=3,alpha:en=6)",
        "mix(alpha:en=6,alpha:de=3;disjoint_ids)",
        "mix(alpha:de=4,alpha:en=6)",
        "mix(alpha:de=2,alpha:en=6)",  # weights 3:1 of a total of 8
    ]
    assert len({j.key for j in jobs.values()}) == 6  # disjoint_ids and counts change the key
    again = {j.source.label: j for j in plan_study(load_study(mixture_study)).train_jobs}
    assert {k: j.key for k, j in again.items()} == {k: j.key for k, j in jobs.items()}
    mix = jobs["mix(alpha:de=3,alpha:en=6)"]
    assert {str(c): len(ids) for c, ids in mix.items} == {"alpha:de": 3, "alpha:en": 6}
    assert mix.provenance["items"] == {str(c): list(ids) for c, ids in mix.items}
    assert jobs["alpha:en"].items == () and "items" not in jobs["alpha:en"].provenance


def _weights_hash(folder) -> str:
    return hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()


def test_a_one_part_mixture_of_the_whole_pool_trains_the_single_cells_bytes(
    mixture_study, tmp_path
):
    jobs = {j.source.label: j for j in plan_study(load_study(mixture_study)).train_jobs}
    single = run_training(jobs["alpha:en"], tmp_path / "single", progress=False)
    whole = run_training(jobs["mix(alpha:en=10)"], tmp_path / "whole", progress=False)
    assert _weights_hash(single.adapter_dir) == _weights_hash(whole.adapter_dir)
    assert single.adapter_hash == whole.adapter_hash

    mix = jobs["mix(alpha:de=3,alpha:en=6)"]
    first = run_training(mix, tmp_path / "mix1", progress=False)
    second = run_training(mix, tmp_path / "mix2", progress=False)
    assert _weights_hash(first.adapter_dir) == _weights_hash(second.adapter_dir)  # same IDs, bytes
    meta = json.loads((first.adapter_dir / "transferlab.json").read_text())
    assert meta["provenance"]["items"] == {str(c): list(ids) for c, ids in mix.items}
    assert meta["data"]["n_train"] == 9
    epoch = meta["history"]["epochs"][0]
    parts = epoch["val_loss_parts"]
    assert sorted(parts) == ["alpha:de", "alpha:en"]
    # the overall loss pools the parts' tokens: as many items per part here, one token each
    assert epoch["val_loss"] == pytest.approx(sum(parts.values()) / 2)
    assert (
        "val_loss_parts"
        not in json.loads((single.adapter_dir / "transferlab.json").read_text())["history"][
            "epochs"
        ][0]
    )


def test_training_axes_are_list_values_of_any_setting_crossed_in_order():
    from transferlab.training.settings import TrainSettings
    from transferlab.training_axes import split_axes, training_variants

    fixed, axes = split_axes(
        {"epochs": 2, "lora_r": [8, 32], "target_modules": [["q_proj"], ["q_proj", "v_proj"]]}
    )
    assert fixed == {"epochs": 2} and list(axes) == ["lora_r", "target_modules"]
    _, none = split_axes({"target_modules": ["q_proj", "v_proj"]})  # a list setting, not an axis
    assert none == {}
    variants = training_variants(TrainSettings(epochs=2), axes, "study.yaml")
    assert [name for name, _ in variants] == [
        "lora_r=8,target_modules=q_proj",
        "lora_r=8,target_modules=q_proj+v_proj",
        "lora_r=32,target_modules=q_proj",
        "lora_r=32,target_modules=q_proj+v_proj",
    ]
    assert variants[3][1].lora_r == 32 and variants[3][1].target_modules == ("q_proj", "v_proj")
    assert all(settings.epochs == 2 for _, settings in variants)
    with pytest.raises(UserError, match="unknown training setting 'lora_rank'"):
        training_variants(TrainSettings(), {"lora_rank": [8]}, "study.yaml")
