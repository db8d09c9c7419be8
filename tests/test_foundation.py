"""The package's foundation: grid regimes, the tiny model fixture, the CLI's error contract."""

from __future__ import annotations

import pytest

from transferlab.grid import Cell, Regime, Source, regime_of, source_regime


@pytest.mark.parametrize(
    ("source", "target", "regime"),
    [
        (("arc", "en"), ("arc", "en"), Regime.MT_ML),
        (("arc", "en"), ("arc", "de"), Regime.MT_CL),
        (("arc", "en"), ("mmlu", "en"), Regime.CT_ML),
        (("arc", "en"), ("mmlu", "de"), Regime.CT_CL),
    ],
)
def test_regime_of_follows_the_protocol_table(source, target, regime):
    assert regime_of(*source, *target) is regime


def test_cell_round_trips_through_text():
    cell = Cell("global_mmlu", "zh")
    assert Cell.parse(str(cell)) == cell
    assert Source.single(cell).cell == cell
    with pytest.raises(ValueError):
        Cell.parse("no-language")


def test_a_source_has_a_stable_label_and_its_parts():
    de, en = Cell("number_arithmetic", "de"), Cell("number_arithmetic", "en")
    assert Source.single(de).label == str(Source.single(de)) == "number_arithmetic:de"
    assert Source.single(de).parts_text() == "number_arithmetic:de=1"
    mix = Source(((en, 256.0), (de, 32.0)))
    assert mix.label == "mix(number_arithmetic:de=32,number_arithmetic:en=256)"
    assert Source(((de, 32.0), (en, 256.0))).label == mix.label  # however it was written
    assert mix.parts_text() == "number_arithmetic:de=32;number_arithmetic:en=256"
    assert (mix.tasks, mix.languages) == (("number_arithmetic",), ("de", "en"))


@pytest.mark.parametrize(
    ("target", "regime"),
    [
        (("arc", "de"), Regime.MT_ML),  # a part is the target cell
        (("arc", "zh"), Regime.MT_CL),  # a part has the target's task
        (("mmlu", "en"), Regime.CT_ML),  # a part has the target's language
        (("mmlu", "zh"), Regime.CT_CL),
        (("hellaswag", "de"), Regime.CT_ML),
    ],
)
def test_a_mixture_takes_the_closest_regime_of_its_parts(target, regime):
    mix = Source(((Cell("arc", "de"), 1.0), (Cell("copa", "en"), 3.0)))
    assert source_regime(mix, Cell(*target)) is regime
    for cell, _ in mix.parts:  # one cell: the protocol's table
        assert source_regime(Source.single(cell), Cell(*target)) is regime_of(
            cell.task, cell.language, *target
        )


def test_tiny_model_tokenizes_every_script_into_several_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for word in ["أوروبا", "यूरोप", "欧洲大陆", "Europa"]:
        ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        assert len(ids) >= 2
        assert tokenizer.decode(ids) == " " + word
