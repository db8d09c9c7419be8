"""Training engine: settings, tokenisation, batching, the loss, and what a finished run leaves."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cpu_facts import expected_auto_dtype
from training_toy import learnable_copy, one_thread, toy_examples
from transferlab.errors import UserError
from transferlab.grid import Cell
from transferlab.models import load_model
from transferlab.tasks.types import MCItem, TrainExample
from transferlab.training import TrainSettings, apply_overrides, make_settings, train_adapter
from transferlab.training.data import collate, encode_examples, epoch_batches
from transferlab.training.loop import ScoredLoss, evaluate


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def learnable_dir(tiny_model_dir, tmp_path_factory):
    return learnable_copy(tiny_model_dir, tmp_path_factory.mktemp("learnable"))


# --- settings -------------------------------------------------------------------------------


def test_defaults_are_the_reference_recipe():
    s = TrainSettings()
    assert (s.lora_r, s.lora_alpha, s.lora_dropout) == (32, 64, 0.0)
    assert set(s.target_modules) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    }  # fmt: skip
    assert (s.epochs, s.warmup_ratio, s.lr_scheduler, s.optimizer) == (3, 0.1, "linear", "adamw")
    assert (s.learning_rate, s.batch_size, s.grad_accumulation) == (5e-5, 8, 1)
    assert s.dtype == "auto" and s.select_best


def test_set_overrides_are_typed_and_unknown_keys_suggest_the_right_one():
    s = apply_overrides(
        ["learning_rate=1e-4", "epochs=2", "group_by_length=false", "target_modules=q_proj,v_proj"]
    )
    assert (s.learning_rate, s.epochs, s.group_by_length) == (1e-4, 2, False)
    assert s.target_modules == ("q_proj", "v_proj")
    assert apply_overrides(["max_steps=null"], base=s).epochs == 2  # base kept
    with pytest.raises(
        UserError, match=r"unknown training setting 'learnig_rate'.*'learning_rate'"
    ):
        apply_overrides(["learnig_rate=1e-4"])
    with pytest.raises(UserError, match=r"'epochs'.*got 'many'"):
        apply_overrides(["epochs=many"])
    with pytest.raises(UserError, match="not key=value"):
        apply_overrides(["epochs"])
    with pytest.raises(UserError, match="dtype"):
        make_settings({"dtype": "float16"}, where="study.yaml")


# --- tokenisation and batches ---------------------------------------------------------------


def test_training_targets_are_exactly_the_scored_continuation(tiny_gemma_dir):
    from transformers import AutoTokenizer

    from transferlab.tokenization import Encoder

    tok = AutoTokenizer.from_pretrained(tiny_gemma_dir)
    examples = [
        TrainExample("a", "Question: Which continent is Asia in?\nAnswer:", " B"),
        TrainExample("b", "Frage: Auf welchem Kontinent liegt Frankreich? Antwort: ", "Europa"),
        TrainExample("c", "Question: What is seven plus five?\nAnswer:", " twelve", "all"),
    ]
    encoded = encode_examples(tok, examples, max_length=512)
    scorer = Encoder(tok, 512)
    for example, enc in zip(examples[:2], encoded[:2], strict=True):
        context, continuation = scorer.pair(example.prompt, example.target)
        assert list(enc.input_ids) == context + continuation
        assert list(enc.input_ids[enc.loss_start :]) == continuation
    # trailing space of the prompt moves into the target, as lm-eval does
    assert tok.decode(encoded[1].input_ids[encoded[1].loss_start :]).startswith(" Europa")
    assert encoded[2].loss_start == 1  # loss on every token after the first
    short = encode_examples(tok, examples[:1], max_length=8)[0]
    assert len(short.input_ids) == 8 and short.truncated
    assert short.input_ids[short.loss_start :] == encoded[0].input_ids[encoded[0].loss_start :]
    with pytest.raises(UserError, match="adds no tokens"):
        encode_examples(tok, [TrainExample("d", "Answer:", "")], 512)


def test_batches_are_seeded_length_grouped_and_cover_every_example():
    lengths = [5 + (i * 7) % 40 for i in range(100)]
    plan = epoch_batches(lengths, batch_size=8, seed=3, epoch=0, group_batches=4)
    assert sorted(i for b in plan for i in b) == list(range(100))
    assert plan == epoch_batches(lengths, batch_size=8, seed=3, epoch=0, group_batches=4)
    assert plan != epoch_batches(lengths, batch_size=8, seed=3, epoch=1, group_batches=4)
    assert plan != epoch_batches(lengths, batch_size=8, seed=4, epoch=0, group_batches=4)
    grouped_pad = sum(len(b) * max(lengths[i] for i in b) for b in plan)
    random_plan = epoch_batches(lengths, 8, 3, 0, group_by_length=False)
    random_pad = sum(len(b) * max(lengths[i] for i in b) for b in random_plan)
    assert grouped_pad < 0.8 * random_pad
    # Lengths a token apart share a bucket: they still mix instead of forming batches apart.
    near = [32 + i % 2 for i in range(96)]
    mixed = epoch_batches(near, batch_size=8, seed=3, epoch=0, bucket_tokens=8)
    assert sum(len({near[i] for i in b}) == 2 for b in mixed) >= len(mixed) // 2
    split = epoch_batches(near, batch_size=8, seed=3, epoch=0, bucket_tokens=1)
    assert all(len({near[i] for i in b}) == 1 for b in split)


# --- the loss -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gemma3-softcap"])
def test_loss_at_scored_positions_equals_the_models_own_loss(arch, tiny_model_dir, tiny_gemma_dir):
    loaded = load_model(str(tiny_model_dir if arch == "llama" else tiny_gemma_dir))
    if arch == "gemma3-softcap":
        loaded.model.config.final_logit_softcapping = 2.0  # small, so the cap really bites
    examples = toy_examples(5) + [TrainExample("all", "Question: x?\nAnswer:", " twelve", "all")]
    encoded = encode_examples(loaded.tokenizer, examples, 512)
    batch = collate(encoded, loaded.tokenizer.pad_token_id)
    labels = torch.full_like(batch["input_ids"], -100)
    for row, e in enumerate(encoded):
        labels[row, e.loss_start : len(e.input_ids)] = torch.tensor(e.input_ids[e.loss_start :])
    with torch.no_grad():
        ours = ScoredLoss(loaded.model, "float32", "cpu").loss_sum(batch) / len(batch["targets"])
        theirs = loaded.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels
        ).loss
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


# --- a finished run -------------------------------------------------------------------------


def test_training_fits_the_toy_task_and_the_scorer_sees_the_adapter(learnable_dir, tmp_path):
    from transferlab.scoring import ModelState, score

    loaded = load_model(str(learnable_dir))
    train, validation = toy_examples(48, seed=1), toy_examples(12, start=100, seed=2)
    probe = loaded.tokenizer("Question: Which continent", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits_before = loaded.model(probe).logits
    untrained = evaluate(
        ScoredLoss(loaded.model, "float32", "cpu"),
        loaded.model,
        encode_examples(loaded.tokenizer, validation, 1024),
        16,
        0,
    )
    settings = TrainSettings(learning_rate=1e-2, epochs=5, warmup_ratio=0.0, dtype="float32")
    outcome = train_adapter(
        loaded, train, validation, tmp_path / "adapter", settings, seed=5, progress=False
    )

    val = [e["val_loss"] for e in outcome.metadata["history"]["epochs"]]
    assert len(val) == 5 and val[-1] < val[0] < untrained
    assert val[-1] < 0.2 * untrained
    assert outcome.metadata["best_val_loss"] == min(val)
    assert outcome.metadata["best_epoch"] == 1 + val.index(min(val))
    # The base model is handed back unchanged, without LoRA layers, ready for scoring.
    assert not any("lora" in name for name, _ in loaded.model.named_modules())
    with torch.no_grad():
        assert torch.equal(loaded.model(probe).logits, logits_before)

    # The scorer loads the adapter, and its log-likelihood of each gold answer is exactly the
    # validation loss training recorded: the trained tokens are the scored tokens.
    items = [
        MCItem(e.doc_id, e.prompt, ("A", "B", "C", "D"), "ABCD".index(e.target.strip()))
        for e in validation
    ]
    results = score(
        loaded,
        [ModelState("base"), ModelState.for_adapter(outcome.adapter_dir)],
        {Cell("toy", "en"): items},
        progress=False,
    )
    base = [r for r in results if r.model_state == "base"]
    tuned = [r for r in results if r.model_state != "base"]
    assert all(b.loglikelihoods != t.loglikelihoods for b, t in zip(base, tuned, strict=True))
    n_tokens = sum(e.n_loss_tokens for e in encode_examples(loaded.tokenizer, validation, 1024))
    recorded = -sum(r.loglikelihoods[r.gold] for r in tuned) / n_tokens
    assert recorded == pytest.approx(outcome.metadata["best_val_loss"], rel=1e-4)
    assert sum(r.metrics["acc"] for r in tuned) > sum(r.metrics["acc"] for r in base)


def test_metadata_records_what_determined_the_adapter(tiny_gemma_dir, tmp_path):
    loaded = load_model(str(tiny_gemma_dir))
    provenance = {"source": "toy:en", "task": "toy", "language": "en", "task_hash": "abc123"}
    settings = TrainSettings(epochs=2, logging_steps=2)
    outcome = train_adapter(
        loaded, toy_examples(20), toy_examples(6, 50), tmp_path / "a", settings, 17, provenance,
        progress=False,
    )  # fmt: skip
    files = sorted(p.name for p in outcome.adapter_dir.iterdir())
    assert {"adapter_model.safetensors", "adapter_config.json", "transferlab.json"} <= set(files)
    meta = json.loads((outcome.adapter_dir / "transferlab.json").read_text())
    assert meta == json.loads(json.dumps(outcome.metadata))
    assert meta["status"] == "complete" and meta["adapter_hash"] == outcome.adapter_hash
    assert meta["base_model"]["model_hash"] == loaded.model_hash
    assert meta["base_model"]["ref"] == str(tiny_gemma_dir)
    assert meta["provenance"] == provenance and meta["seed"] == 17
    # "auto" is recorded as the dtype it resolved to on this machine
    assert meta["settings"] == {**settings.model_dump(mode="json"), "dtype": expected_auto_dtype()}
    assert set(meta["versions"]) == {"python", "torch", "transformers", "peft", "transferlab"}
    assert meta["dtype"] == "bfloat16" and meta["batch_size"] == 8
    assert meta["data"]["n_train"] == 20 and meta["data"]["n_validation"] == 6
    assert meta["optimizer_steps"] == 2 * math.ceil(20 / 8)
    assert [e["epoch"] for e in meta["history"]["epochs"]] == [1, 2]
    assert [s["step"] for s in meta["history"]["steps"]] == [
        2,
        3,
        4,
        6,
    ]  # every 2nd step and each epoch's end
    assert all(math.isfinite(s["loss"]) for s in meta["history"]["steps"])
    assert meta["best_epoch"] in (1, 2) and meta["tokens_per_s"] > 0
    assert meta["wall_time_s"] >= meta["train_time_s"] > 0
    assert not (tmp_path / "a.partial").exists()
