"""Greedy generation: identical to lm-evaluation-harness's generate_until, batched or alone."""

from __future__ import annotations

import json
import shutil

import lm_eval
import pytest
import yaml

from test_scoring import make_lora
from transferlab.generation import GenerationRequest, cut_at_stops, generate, stop_strings
from transferlab.generation.engine import (
    MAX_PACKED_ROWS,
    MAX_STATES_PER_PASS,
    SHARED_PREFIX_MIN,
    batch_rows,
    shared_prefix,
    state_packs,
)
from transferlab.models import load_model
from transferlab.scoring.adapters import ModelState
from transferlab.tokenization import Encoder

CONTEXTS = [
    "Frage: Wie viel ist 2 + 3? Antwort:",
    "प्रश्न: दो और तीन कितने होते हैं? उत्तर:",
    "问题：二加三是多少？答案：",
    "سؤال: كم يساوي اثنان زائد ثلاثة؟",
    "Q: 2+3?",
    "Question: how many legs does a spider have? Answer:",
]
MAX_NEW = 12


def _requests(until=()) -> list[GenerationRequest]:
    return [GenerationRequest(c, tuple(until), MAX_NEW) for c in CONTEXTS]


def _stops_from(texts: list[str]) -> list[str]:
    """Stop strings that occur in the unstopped outputs (two characters, mid-generation)."""
    stops = []
    for text in sorted(texts, key=len, reverse=True)[:3]:
        if len(text) >= 6:
            stops.append(text[3:5])
    return stops


def _lm_eval_generations(model_dir, adapter, until, tmp_path, contexts=CONTEXTS) -> list[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": c, "target": "5"}, ensure_ascii=False) + "\n"
                            for c in contexts), encoding="utf-8")  # fmt: skip
    task = {
        "task": "tl_gen",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{text}}",
        "doc_to_target": "{{target}}",
        "target_delimiter": "",
        "generation_kwargs": {"until": list(until), "max_gen_toks": MAX_NEW, "do_sample": False},
        "metric_list": [{"metric": "exact_match"}],
    }
    (tmp_path / "tl_gen.yaml").write_text(yaml.safe_dump(task, allow_unicode=True), "utf-8")
    from lm_eval.tasks import TaskManager

    args = f"pretrained={model_dir},dtype=float32" + (f",peft={adapter}" if adapter else "")
    out = lm_eval.simple_evaluate(model="hf", model_args=args, tasks=["tl_gen"],
                                  task_manager=TaskManager(include_path=str(tmp_path)),
                                  log_samples=True, batch_size=1, device="cpu")  # fmt: skip
    samples = sorted(out["samples"]["tl_gen"], key=lambda s: s["doc_id"])
    return [s["resps"][0][0] for s in samples]


@pytest.mark.parametrize("model", ["tiny_model_dir", "tiny_gemma_dir"])
def test_generations_are_lm_evals_with_and_without_adapter(request, model, tmp_path):
    model_dir = request.getfixturevalue(model)
    adapter = make_lora(model_dir, tmp_path / "lora", seed=7)
    loaded = load_model(str(model_dir))
    states = [ModelState("base"), ModelState("lora", adapter)]
    free = generate(loaded, states[:1], _requests(), batch_size=4, progress=False)["base"]
    until = _stops_from(free)
    assert until, free  # the random model produced text to stop in
    ours = generate(loaded, states, _requests(until), batch_size=4, progress=False)
    assert any(a != b for a, b in zip(free, ours["base"], strict=True))  # the stops cut something
    for state, adapter_dir in (("base", None), ("lora", adapter)):
        theirs = _lm_eval_generations(model_dir, adapter_dir, until, tmp_path / state)
        assert ours[state] == theirs, state
    assert ours["base"] != ours["lora"]


def test_a_batch_gives_what_each_prompt_gives_alone(tiny_gemma_dir):
    loaded = load_model(str(tiny_gemma_dir))
    free = generate(loaded, [ModelState("base")], _requests(), batch_size=6, progress=False)["base"]
    requests = _requests(_stops_from(free))  # rows stop at different steps and leave the batch
    batched = generate(loaded, [ModelState("base")], requests, batch_size=6, progress=False)
    alone = generate(loaded, [ModelState("base")], requests, batch_size=1, progress=False)
    assert batched == alone


# prompts that open alike, as a few-shot task's do (short: the tiny model's window is 64 tokens)
OPENING = "Q: 1+1? A: 2\nQ: 2+2? A: 4\n"
OPENED = [
    OPENING + c for c in ("Q: 3+4? A:", "Q: 5+1? A:", "问：二加三？答：", "सवाल: 2+3?", "Q: 9?")
]


def test_rows_that_open_alike_share_the_opening_and_give_what_each_gives_alone(
    tiny_gemma_dir, tmp_path
):
    adapter = make_lora(tiny_gemma_dir, tmp_path / "lora", seed=7)
    loaded = load_model(str(tiny_gemma_dir))
    encoder = Encoder(loaded.tokenizer, 64)
    window = loaded.model.config.sliding_window - MAX_NEW
    assert shared_prefix([encoder.encode(c) for c in OPENED], window) >= SHARED_PREFIX_MIN
    requests = [GenerationRequest(c, (), MAX_NEW) for c in OPENED]
    states = [ModelState("base"), ModelState("lora", adapter)]
    batched = generate(loaded, states, requests, batch_size=len(requests), progress=False)
    alone = generate(loaded, states, requests, batch_size=1, progress=False)  # nothing shared
    assert batched == alone
    assert batched["lora"] == _lm_eval_generations(tiny_gemma_dir, adapter, (), tmp_path, OPENED)


def test_a_shared_opening_needs_its_length_and_room_in_the_window():
    rows = [[2, 7, 7, 7, 5], [2, 7, 7, 7, 6, 1]]
    assert shared_prefix(rows) == 0  # 4 tokens: under the minimum
    long = [[2] + [7] * 20 + [5], [2] + [7] * 20 + [6, 1], [2] + [7] * 18]
    assert shared_prefix(long) == 18  # every row keeps a token of its own
    assert shared_prefix(long, limit=23) == 18 and shared_prefix(long, limit=22) == 0  # 23 long


def test_rows_that_open_alike_are_batched_together_in_near_equal_batches():
    opening = list(range(100, 100 + SHARED_PREFIX_MIN))
    math = [opening + [1] * n for n in (5, 9, 7, 3, 8)]  # indices 0-4: one task's few-shot rows
    other = [[7, 8] + [2] * n for n in (20, 4, 12)]  # 5-7: nothing in common
    contexts = [math[0], other[0], math[1], math[2], other[1], math[3], other[2], math[4]]
    # the 5 alike rows (0, 2, 3, 5, 7) in 2 + 3, longest first; the other 3 in one batch
    assert batch_rows(contexts, batch_size=4) == [[2, 7], [3, 0, 5], [1, 6, 4]]
    assert batch_rows(contexts, batch_size=2) == [[2], [7, 3], [1], [0, 5], [6, 4]]
    assert batch_rows(contexts[:1], batch_size=4) == [[0]]


def test_states_sharing_forward_passes_give_what_each_gives_alone(tiny_gemma_dir, tmp_path):
    loaded = load_model(str(tiny_gemma_dir))
    states = [ModelState("base"), ModelState("a", make_lora(tiny_gemma_dir, tmp_path / "a", seed=7)),
              ModelState("b", make_lora(tiny_gemma_dir, tmp_path / "b", seed=8))]  # fmt: skip
    assert [len(pack) for pack in state_packs(states, batch_size=4)] == [3]
    free = generate(loaded, states[:1], _requests(), batch_size=4, progress=False)["base"]
    # rows that stop at different steps, and rows that share an opening (its cache per state)
    requests = _requests(_stops_from(free)) + [GenerationRequest(c, (), MAX_NEW) for c in OPENED]
    together = generate(loaded, states, requests, batch_size=4, progress=False)
    for state in states:  # one state per call: nothing shared with another state
        alone = generate(loaded, [state], requests, batch_size=4, progress=False)
        assert together[state.name] == alone[state.name], state.name
    assert together["a"] != together["b"] != together["base"]


def test_states_are_packed_up_to_the_row_limit_and_other_adapters_run_alone(tiny_gemma_dir,
                                                                            tmp_path):  # fmt: skip
    lora = make_lora(tiny_gemma_dir, tmp_path / "lora", seed=7)
    dora = tmp_path / "dora"
    shutil.copytree(lora, dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps(config | {"use_dora": True}))
    states = [ModelState("base"), *(ModelState(f"l{k}", lora) for k in range(4))]
    packs = state_packs([*states, ModelState("d", dora)], batch_size=MAX_PACKED_ROWS // 2)
    # 5 joinable states, 2 per pack: near-equal packs of 1, 2, 2; DoRA alone
    assert [[s.name for s in pack] for pack in packs] == [["base"], ["l0", "l1"], ["l2", "l3"],
                                                         ["d"]]  # fmt: skip
    # one prompt per batch: at most MAX_STATES_PER_PASS states share a pass (10 → 5 + 5)
    many = [ModelState(f"s{k}") for k in range(MAX_STATES_PER_PASS + 2)]
    assert [len(pack) for pack in state_packs(many, batch_size=1)] == [5, 5]


def test_stops_are_the_tasks_plus_eos_and_cut_in_turn(tiny_gemma_dir):
    tokenizer = load_model(str(tiny_gemma_dir)).tokenizer
    eos = tokenizer.decode([tokenizer.eos_token_id], skip_special_tokens=False)
    assert stop_strings(tokenizer, ["Frage:", ""]) == ["Frage:", eos]
    assert cut_at_stops("7\n\nFrage: 8", ["\n\n", "Frage:"]) == "7"
    assert cut_at_stops("7 Frage: 8\n\n9", ["\n\n", "Frage:"]) == "7 "


def test_an_adapter_state_never_copies_the_vocabulary_matrix_per_row(tiny_gemma_dir, tmp_path):
    # With the base frozen by PEFT, a strided last-position hidden state made torch multiply
    # the output layer as a batched product over an expanded (copied) weight, one per row.
    import torch

    adapter = make_lora(tiny_gemma_dir, tmp_path / "lora", seed=7)
    loaded = load_model(str(tiny_gemma_dir))
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    with torch.profiler.profile(record_shapes=True) as profile:
        out = generate(
            loaded,
            [ModelState("lora", adapter)],
            _requests(),
            batch_size=6,
            progress=False,
            bf16_screen=False,
        )  # the full logits: the plain path
    assert len(out["lora"]) == len(CONTEXTS)
    batched_heads = [e for e in profile.key_averages(group_by_input_shape=True)
                     if e.key == "aten::bmm" and any(vocab in s for s in e.input_shapes if s)]  # fmt: skip
    assert not batched_heads
