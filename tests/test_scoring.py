"""The scorer: packed rows give the numbers of separate full forwards; adapters swap cleanly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from transferlab.errors import UserError
from transferlab.grid import Cell
from transferlab.models import load_model
from transferlab.scoring import ModelState, choose, score
from transferlab.scoring.adapters import check_adapter
from transferlab.scoring.packing import pack_rows
from transferlab.scoring.requests import choice_groups
from transferlab.tasks.types import MCItem
from transferlab.tokenization import Encoder, resolve_max_length

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

ITEMS = [
    MCItem(
        "hi-1",
        "प्रश्न: फ्रांस किस महाद्वीप में है? उत्तर:",
        ("यूरोप", "एशिया", "अफ्रीका महाद्वीप", "ओशिनिया"),
        0,
    ),
    MCItem(
        "en-letters",
        "Question: Which continent is France in?\nA) Europe\nB) Asia\nC) Africa\nD) Oceania\n"
        "Answer:",
        ("A", "B", "C", "D"),
        2,
    ),
    MCItem("empty-context", "", ("Europa", "Asien"), 1),
    MCItem("zh-trailing-space", "问题：法国位于哪个大洲？答案： ", ("欧洲", "亚洲大陆"), 0, ""),
    MCItem("ar", "سؤال: في أي قارة تقع فرنسا؟ الجواب:", ("أوروبا", "آسيا", "أفريقيا"), 0),
    # Choices that begin with the same tokens share them in the packed row.
    MCItem("shared-prefix", "Antwort:", ("Europa", "Europa Europa", "Europa Asien", "Asien"), 2),
    MCItem(
        "long",
        "Frage: Auf welchem Kontinent liegt Frankreich? Antwort: Europa. " * 5 + "Frage:",
        ("Auf welchem Kontinent", "Europa " * 12),
        1,
    ),
]


def make_lora(base_dir: Path, out_dir: Path, seed: int, rank: int = 4) -> Path:
    """Write a LoRA adapter on all projections with random, nonzero A and B (it changes outputs)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=PROJECTIONS, init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # PEFT's random init is tiny; make the adapter matter
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.2)
    peft_model.save_pretrained(out_dir)
    return out_dir


def reference_loglikelihoods(model, tokenizer, items) -> list[list[float]]:
    """Per choice, one full forward of context + continuation and a full-vocabulary log-softmax."""
    encoder = Encoder(tokenizer, resolve_max_length(model.config, tokenizer))
    out = []
    for item in items:
        values = []
        for choice in item.choices:
            ctx, cont = encoder.pair(item.context, item.target_delimiter + choice)
            ids = torch.tensor([ctx + cont])[:, :-1]
            with torch.no_grad():
                logprobs = torch.log_softmax(model(ids).logits[0].float(), -1)
            picked = logprobs[len(ctx) - 1 :].gather(1, torch.tensor(cont)[:, None])
            values.append(float(picked.sum()))
        out.append(values)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("adapters")
    return [make_lora(tiny_model_dir, root / f"lora-{seed}", seed) for seed in (1, 2)]


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_gemma_dir"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_packed_rows_match_separate_full_forwards(request, fixture, batch_size):
    loaded = load_model(str(request.getfixturevalue(fixture)))
    results = score(
        loaded, [ModelState("base")], {Cell("t", "xx"): ITEMS}, batch_size, progress=False
    )
    expected = reference_loglikelihoods(loaded.model, loaded.tokenizer, ITEMS)
    assert [r.doc_id for r in results] == [i.doc_id for i in ITEMS]
    encoder = Encoder(loaded.tokenizer, resolve_max_length(loaded.model.config, loaded.tokenizer))
    (shared,) = choice_groups(encoder, 0, ITEMS[5], "t")
    (row,) = pack_rows([shared])
    flat = len(shared.context) + sum(len(c) - 1 for c in shared.continuations)
    assert len(row) < flat  # choices that start alike share slots
    for result, item, values in zip(results, ITEMS, expected, strict=True):
        assert result.loglikelihoods == pytest.approx(values, abs=1e-4)
        pred, pred_norm = choose(values, item.choices)
        assert (result.metrics["acc"], result.metrics["acc_norm"]) == (
            int(pred == item.gold),
            int(pred_norm == item.gold),
        )


def test_sliding_window_layers_are_respected(tmp_path):
    """A Gemma-3 model with local and global layers and rows longer than the local window."""
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from tiny_model import build_tiny_model

    folder = build_tiny_model(tmp_path / "src", arch="gemma3")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = Gemma3TextConfig.from_pretrained(folder)
    config.sliding_window = 8
    config.layer_types = ["sliding_attention", "full_attention"]
    torch.manual_seed(3)
    Gemma3ForCausalLM(config).save_pretrained(tmp_path / "mixed")
    tokenizer.save_pretrained(tmp_path / "mixed")
    loaded = load_model(str(tmp_path / "mixed"))
    results = score(loaded, [ModelState("base")], {Cell("t", "de"): ITEMS}, 3, progress=False)
    expected = reference_loglikelihoods(loaded.model, loaded.tokenizer, ITEMS)
    for result, values in zip(results, expected, strict=True):
        assert result.loglikelihoods == pytest.approx(values, abs=1e-4)


def test_rows_share_prompt_prefixes_and_respect_their_size(tiny_model_dir):
    tokenizer = load_model(str(tiny_model_dir)).tokenizer
    encoder = Encoder(tokenizer, 512)
    first, second = (
        choice_groups(encoder, i, MCItem(str(i), f"Question: Which continent is {c} in?\nAnswer:", ch, 0), "t")[0]
        for i, (c, ch) in enumerate([("France", ("Europe", "Asia")), ("Spain", ("Europa", "Asien"))])
    )  # fmt: skip
    (together,) = pack_rows([first, second])
    alone = [len(pack_rows([unit])[0]) for unit in (first, second)]
    assert len(together) < sum(alone)  # "Question: Which continent is" is computed once
    assert [len(row.units) for row in pack_rows([first, second], max_tokens=max(alone))] == [1, 1]
    rows = pack_rows([first, second] * 20, max_tokens=64)
    assert all(len(row) <= 64 for row in rows) and sum(len(r.units) for r in rows) == 40


@pytest.mark.parametrize(
    ("fixture", "cap"),
    [
        ("tiny_gemma_dir", 2.0),  # Gemma applies final-logit softcapping: done on the head path
        ("tiny_model_dir", 0.5),  # Llama ignores the setting: the self-check falls back
    ],
)
def test_logit_softcapping_and_the_fallback_to_full_logits(request, fixture, cap, tmp_path, caplog):
    folder = tmp_path / "model"
    shutil.copytree(request.getfixturevalue(fixture), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "final_logit_softcapping": cap}))
    loaded = load_model(str(folder))
    results = score(loaded, [ModelState("base")], {Cell("t", "x"): ITEMS}, 4, progress=False)
    expected = reference_loglikelihoods(loaded.model, loaded.tokenizer, ITEMS)
    for result, values in zip(results, expected, strict=True):
        assert result.loglikelihoods == pytest.approx(values, abs=1e-4)
    assert ("computing full logits" in caplog.text) == (fixture == "tiny_model_dir")


def test_adapters_scored_in_one_process_without_merging(tiny_model_dir, adapters):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    loaded = load_model(str(tiny_model_dir))
    states = [ModelState("base")] + [ModelState.for_adapter(a) for a in adapters]
    targets = {Cell("t", "hi"): ITEMS[:2], Cell("t", "zh"): ITEMS[2:]}
    results = score(loaded, states, targets, batch_size=2, progress=False)
    by_state = {s.name: [r for r in results if r.model_state == s.name] for s in states}
    assert [len(v) for v in by_state.values()] == [len(ITEMS)] * 3
    assert [(r.task, r.language) for r in by_state["base"]][:3] == [("t", "hi")] * 2 + [("t", "zh")]

    base_expected = reference_loglikelihoods(loaded.model, loaded.tokenizer, ITEMS)
    for result, values in zip(by_state["base"], base_expected, strict=True):
        assert result.loglikelihoods == pytest.approx(values, abs=1e-4)
    for adapter in adapters:
        fresh = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        with_adapter = PeftModel.from_pretrained(fresh, adapter).eval()
        expected = reference_loglikelihoods(with_adapter, loaded.tokenizer, ITEMS)
        got = by_state[adapter.name]
        for result, values, base in zip(got, expected, base_expected, strict=True):
            assert result.loglikelihoods == pytest.approx(values, abs=1e-4)
            assert result.loglikelihoods != pytest.approx(base, abs=1e-2)  # it really changed

    # The base model comes back unchanged: no adapter layers left, same numbers as before.
    assert not any("lora" in name for name, _ in loaded.model.named_modules())
    again = score(loaded, [ModelState("base")], targets, batch_size=2, progress=False)
    assert [r.loglikelihoods for r in again] == [r.loglikelihoods for r in by_state["base"]]


def test_bfloat16_stays_close_to_float32(tiny_model_dir):
    fp32 = score(load_model(str(tiny_model_dir)), [ModelState("base")], {Cell("t", "x"): ITEMS})
    bf16 = score(
        load_model(str(tiny_model_dir), dtype="bfloat16"),
        [ModelState("base")],
        {Cell("t", "x"): ITEMS},
        progress=False,
    )
    for a, b in zip(fp32, bf16, strict=True):
        assert b.loglikelihoods == pytest.approx(a.loglikelihoods, rel=0.05, abs=0.5)


def test_acc_norm_divides_by_characters_like_lm_eval():
    # "ab" is 2 characters and 2 bytes; "éé" is 2 characters but 4 bytes. Per character the
    # second wins (-3 / 2 > -4 / 2); per byte the first would (-4 / 2 < -3 / 4).
    assert choose([-4.0, -3.0], ["ab", "éé"]) == (1, 1)
    assert choose([-3.0, -5.0], ["abcdef", "éé"]) == (0, 0)
    assert choose([-6.0, -3.0], ["abcdef", "x"]) == (1, 0)
    assert choose([-1.0, -1.0], ["a", "b"]) == (0, 0)  # ties go to the first choice


def _rewrite_json(file: Path, **changes) -> None:
    data = json.loads(file.read_text())
    data.update(changes)
    file.write_text(json.dumps(data))


def test_adapter_for_another_base_model_is_rejected(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig.from_pretrained(tiny_model_dir)
    config.hidden_size, config.intermediate_size = 32, 48
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "other-base")
    adapter = make_lora(tmp_path / "other-base", tmp_path / "other-lora", seed=0)
    loaded = load_model(str(tiny_model_dir))
    with pytest.raises(UserError, match="different base model"):
        check_adapter(loaded, adapter)
    with pytest.raises(UserError, match="different base model"):
        score(loaded, [ModelState.for_adapter(adapter)], {Cell("t", "x"): ITEMS}, progress=False)


def test_adapter_config_naming_missing_modules_is_rejected(tiny_model_dir, adapters, tmp_path):
    from safetensors.torch import load_file, save_file

    renamed = tmp_path / "renamed"
    shutil.copytree(adapters[0], renamed)
    weights = load_file(renamed / "adapter_model.safetensors")
    save_file(
        {k.replace("self_attn", "attention"): v for k, v in weights.items()},
        renamed / "adapter_model.safetensors",
    )
    with pytest.raises(UserError, match="has no module"):
        check_adapter(load_model(str(tiny_model_dir)), renamed)


def test_adapter_missing_weights_or_trained_on_other_hash(tiny_model_dir, adapters, tmp_path):
    loaded = load_model(str(tiny_model_dir))
    broken = tmp_path / "no-weights"
    shutil.copytree(adapters[0], broken)
    (broken / "adapter_model.safetensors").unlink()
    with pytest.raises(UserError, match="weights are missing"):
        check_adapter(loaded, broken)
    with pytest.raises(UserError, match="not a PEFT adapter"):
        check_adapter(loaded, tiny_model_dir)

    foreign = tmp_path / "foreign"
    shutil.copytree(adapters[0], foreign)
    (foreign / "transferlab.json").write_text(
        json.dumps({"base_model": {"ref": "gemma-3-270m", "model_hash": "0123456789abcdef"}})
    )
    with pytest.raises(UserError, match="trained on gemma-3-270m"):
        check_adapter(loaded, foreign)


def test_item_errors_name_the_target(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir))
    bad_gold = MCItem("q7", "Question:", ("a", "b"), 5)
    with pytest.raises(UserError, match=r"t:xx.*q7.*gold index 5"):
        score(loaded, [ModelState("base")], {Cell("t", "xx"): [bad_gold]}, progress=False)
    empty_choice = MCItem("q8", "Question:", ("a", ""), 0, target_delimiter="")
    with pytest.raises(UserError, match="q8.*no tokens"):
        score(loaded, [ModelState("base")], {Cell("t", "xx"): [empty_choice]}, progress=False)
