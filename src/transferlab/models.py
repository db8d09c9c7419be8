"""Resolve a model reference and load it: HF id or local folder (GGUF files and packaged presets
are added by the evaluation engine)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.errors import UserError


@dataclass
class LoadedModel:
    """A loaded causal LM with its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    ref: str  # the reference the user gave
    path: Path  # the local folder the weights were read from
    model_hash: str  # content hash of config + weights (see model_hash)
    dtype: str  # "float32" | "bfloat16"
    device: str  # "cpu" | "cuda" | "cuda:N"


def model_hash(folder: Path) -> str:
    """Return a short content hash of a model folder (config and weight file digests)."""
    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if file.suffix in {".json", ".safetensors", ".bin", ".model"} and file.is_file():
            digest.update(file.name.encode())
            digest.update(_file_digest(file).encode())
    return digest.hexdigest()[:16]


def _file_digest(file: Path) -> str:
    # Hashing GBs of weights on every load is slow; cache the digest beside the file, keyed by
    # size and mtime so a rewritten file is hashed again.
    stat = file.stat()
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    cache = file.parent / ".transferlab-digests.json"
    known: dict[str, Any] = {}
    if cache.exists():
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
    entry = known.get(file.name)
    if entry and entry.get("stamp") == stamp:
        return entry["sha256"]
    sha = hashlib.sha256()
    with file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            sha.update(block)
    known[file.name] = {"stamp": stamp, "sha256": sha.hexdigest()}
    try:
        cache.write_text(json.dumps(known))
    except OSError:
        pass  # read-only model folders are fine; we just hash again next time
    return sha.hexdigest()


def resolve_model(ref: str) -> Path:
    """Return the local folder holding the model named by ``ref``."""
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(
                ref,
                "folder has no config.json, so it is not a model",
                "pass a Hugging Face model folder",
            )
        return path
    raise UserError(ref, "unknown model reference", "pass a local model folder")


def load_model(
    ref: str, dtype: str = "float32", device: str = "cpu", trust_remote_code: bool = False
) -> LoadedModel:
    """Return the model named by ``ref`` loaded in ``dtype`` on ``device``, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model(ref)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch_dtype, trust_remote_code=trust_remote_code
    )
    model.to(device).eval()
    return LoadedModel(model, tokenizer, ref, folder, model_hash(folder), dtype, device)
