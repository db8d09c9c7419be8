"""Training runs as users rely on them: reproducible bytes, crash-safe resume, clear failures."""

from __future__ import annotations

import json

import pytest
import torch

from training_toy import one_thread, toy_examples
from transferlab.errors import RunError, UserError
from transferlab.models import load_model
from transferlab.training import TrainSettings, partial_dir, train_adapter


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


SETTINGS = TrainSettings(epochs=3, learning_rate=1e-3, logging_steps=2)
TRAIN, VALIDATION = toy_examples(24, seed=1), toy_examples(6, start=100, seed=2)


class Crash(Exception):
    """Stands for the process dying (OOM kill, power loss) in the middle of a step."""


def _fail_forward_after(model, n_calls: int, error: Exception | None = None):
    """Make the model's embedding misbehave on its n-th training forward (a real fault, no mock).

    With ``error`` None the embedding returns NaN instead, as a diverging model would.
    """
    calls = {"n": 0}

    def hook(module, args, output):
        if not module.training:
            return output
        calls["n"] += 1
        if calls["n"] < n_calls:
            return output
        if error is not None:
            raise error
        return output * float("nan")

    return model.get_input_embeddings().register_forward_hook(hook)


@pytest.fixture(scope="module")
def loaded(tiny_gemma_dir):
    return load_model(str(tiny_gemma_dir))


@pytest.fixture(scope="module")
def reference_run(loaded, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "adapter"
    return train_adapter(loaded, TRAIN, VALIDATION, out, SETTINGS, seed=17, progress=False)


def _weights(outcome) -> bytes:
    return (outcome.adapter_dir / "adapter_model.safetensors").read_bytes()


def test_same_seed_and_data_give_identical_adapter_bytes(loaded, reference_run, tmp_path):
    again = train_adapter(loaded, TRAIN, VALIDATION, tmp_path / "a", SETTINGS, 17, progress=False)
    assert _weights(again) == _weights(reference_run)
    assert again.adapter_hash == reference_run.adapter_hash
    other = train_adapter(loaded, TRAIN, VALIDATION, tmp_path / "b", SETTINGS, 42, progress=False)
    assert _weights(other) != _weights(reference_run)


def test_resume_after_a_crash_gives_the_uninterrupted_result(loaded, reference_run, tmp_path):
    out = tmp_path / "adapter"
    steps_per_epoch = 3  # 24 examples, batch 8
    handle = _fail_forward_after(loaded.model, steps_per_epoch + 2, Crash("killed"))
    try:
        with pytest.raises(Crash):
            train_adapter(loaded, TRAIN, VALIDATION, out, SETTINGS, 17, progress=False)
    finally:
        handle.remove()
    assert not out.exists()  # nothing that looks like a finished adapter
    assert (partial_dir(out) / "checkpoint.pt").exists()
    assert not any("lora" in n for n, _ in loaded.model.named_modules())

    resumed = train_adapter(loaded, TRAIN, VALIDATION, out, SETTINGS, 17, progress=False)
    assert resumed.metadata["resumed_from_epoch"] == 1
    assert _weights(resumed) == _weights(reference_run)
    for key in ("history", "best_epoch", "best_val_loss", "optimizer_steps"):
        assert resumed.metadata[key] == reference_run.metadata[key]
    assert not partial_dir(out).exists()


def test_a_finished_run_is_not_trained_twice_and_a_foreign_folder_is_refused(
    loaded, reference_run, tmp_path
):
    handle = _fail_forward_after(loaded.model, 1, Crash("trained again"))
    try:
        same = train_adapter(
            loaded, TRAIN, VALIDATION, reference_run.adapter_dir, SETTINGS, 17, progress=False
        )
    finally:
        handle.remove()
    assert same.adapter_hash == reference_run.adapter_hash
    with pytest.raises(UserError, match="already exists"):
        train_adapter(
            loaded, TRAIN, VALIDATION, reference_run.adapter_dir, SETTINGS, 18, progress=False
        )


def test_nan_loss_stops_records_the_reason_and_keeps_the_last_good_checkpoint(loaded, tmp_path):
    out = tmp_path / "adapter"
    handle = _fail_forward_after(loaded.model, 4)  # first step of epoch 2
    try:
        with pytest.raises(RunError, match=r"training loss is nan at step 4 \(epoch 2\)"):
            train_adapter(loaded, TRAIN, VALIDATION, out, SETTINGS, 17, progress=False)
    finally:
        handle.remove()
    assert not out.exists()
    work = partial_dir(out)
    record = json.loads((work / "transferlab.json").read_text())
    assert record["status"] == "failed" and "nan" in record["failure"]
    assert record["last_good_epoch"] == 1
    checkpoint = torch.load(work / "checkpoint.pt", weights_only=True)
    assert checkpoint["progress"]["epochs_done"] == 1
    assert all(torch.isfinite(t).all() for t in checkpoint["adapter"].values())


def test_bad_input_is_a_user_error_and_writes_nothing(loaded, tmp_path):
    out = tmp_path / "adapter"
    with pytest.raises(UserError, match="only 9 training items; at least 10"):
        train_adapter(loaded, TRAIN[:9], VALIDATION, out, SETTINGS, 1, {"source": "arc:de"})
    wrong = SETTINGS.model_copy(update={"target_modules": ("q_proj", "gate_prj")})
    with pytest.raises(UserError, match=r"'gate_prj' does not exist.*did you mean 'gate_proj'"):
        train_adapter(loaded, TRAIN, VALIDATION, out, wrong, 1)
    assert not out.exists() and not partial_dir(out).exists()


def test_accumulation_and_max_steps_set_the_number_of_optimizer_steps(loaded, tmp_path):
    accumulated = SETTINGS.model_copy(update={"batch_size": 4, "grad_accumulation": 4})
    run = train_adapter(loaded, TRAIN, VALIDATION, tmp_path / "a", accumulated, 1, progress=False)
    assert run.metadata["optimizer_steps"] == 3 * 2  # 6 batches → 2 steps (4 + 2) per epoch
    assert run.metadata["effective_batch_size"] == 16
    capped = SETTINGS.model_copy(update={"max_steps": 4})
    run = train_adapter(loaded, TRAIN, VALIDATION, tmp_path / "b", capped, 1, progress=False)
    assert run.metadata["optimizer_steps"] == 4 and run.metadata["epochs_done"] == 2
