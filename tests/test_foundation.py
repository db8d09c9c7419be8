"""The package's foundation: grid regimes, the tiny model fixture, the CLI's error contract."""

from __future__ import annotations

import pytest

from transferlab.grid import Cell, Regime, Source, regime_of


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


def test_tiny_model_tokenizes_every_script_into_several_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for word in ["أوروبا", "यूरोप", "欧洲大陆", "Europa"]:
        ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        assert len(ids) >= 2
        assert tokenizer.decode(ids) == " " + word
