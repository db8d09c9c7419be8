"""A trained model state on disk: its files, their check, and its content hash.

A trained folder is either a PEFT adapter (``method: lora``) or the full weights of a fine-tuned
model in safetensors (``method: full``, an ordinary Hugging Face model folder). Training writes
these folders and scoring reads them; both name the same files and hash them the same way, so a
hash recorded at training time matches the one checked before scoring.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from transferlab.errors import UserError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
WEIGHT_FILES = (ADAPTER_WEIGHTS, "adapter_model.bin")
FULL_CONFIG = "config.json"
METADATA_FILE = "transferlab.json"


def full_weight_files(folder: Path) -> list[Path]:
    """Return a full checkpoint's safetensors files in name order (several when sharded)."""
    return sorted(folder.glob("model*.safetensors"))


def state_method(folder: Path | str) -> str:
    """Return how the folder was trained: ``lora`` (a PEFT adapter) or ``full`` (all weights).

    A full fine-tune is a model folder whose ``transferlab.json`` says so: a plain model folder
    passed by mistake (the base itself) is not taken for a trained state.
    """
    folder = Path(folder)
    meta = folder / METADATA_FILE
    if (folder / ADAPTER_CONFIG).exists() or not meta.exists():
        return "lora"
    try:
        method = json.loads(meta.read_text()).get("method")
    except (ValueError, AttributeError):
        return "lora"
    return "full" if method == "full" else "lora"


def is_complete(folder: Path) -> bool:
    """Return whether ``folder`` holds the weights of a trained state (either method)."""
    if state_method(folder) == "full":
        return bool(full_weight_files(folder))
    return (folder / ADAPTER_WEIGHTS).exists()


def adapter_hash(adapter_dir: Path | str) -> str:
    """Return a content hash of a trained state's weights and the config fields that shape them."""
    adapter_dir = Path(adapter_dir)
    if state_method(adapter_dir) == "full":
        return _full_hash(adapter_dir)
    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    # Where the base model lived on the training machine does not change the adapter.
    for key in ("base_model_name_or_path", "revision"):
        config.pop(key, None)
    # PEFT writes target_modules from a set, in an order that follows per-process string hashing.
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    with (adapter_dir / ADAPTER_WEIGHTS).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _full_hash(folder: Path) -> str:
    config = json.loads((folder / FULL_CONFIG).read_text())
    # Where the model was loaded from, and the writing library's version, are not weights.
    for key in ("_name_or_path", "transformers_version"):
        config.pop(key, None)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for file in full_weight_files(folder):
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def check_adapter_files(adapter_dir: Path) -> tuple[dict[str, Any], Path]:
    """Return (config, first weights file) of a trained folder of either method, or raise UserError."""
    where = str(adapter_dir)
    if not adapter_dir.is_dir():
        raise UserError(
            where, "no such adapter folder", "pass a folder that `transferlab train` wrote"
        )
    if state_method(adapter_dir) == "full":
        return _check_full_files(adapter_dir)
    config_file = adapter_dir / ADAPTER_CONFIG
    if not config_file.exists():
        raise UserError(
            where,
            f"no {ADAPTER_CONFIG}, so it is not a PEFT adapter folder",
            "pass an adapter folder",
        )
    try:
        config = json.loads(config_file.read_text())
    except ValueError as error:
        raise UserError(config_file, f"not valid JSON ({error})", "restore the file") from error
    weights = next((adapter_dir / f for f in WEIGHT_FILES if (adapter_dir / f).exists()), None)
    if weights is None:
        raise UserError(
            where,
            f"adapter weights are missing ({' or '.join(WEIGHT_FILES)})",
            "copy the whole adapter folder, or train it again",
        )
    return config, weights


def _check_full_files(folder: Path) -> tuple[dict[str, Any], Path]:
    config_file = folder / FULL_CONFIG
    try:
        config = json.loads(config_file.read_text())
    except ValueError as error:
        raise UserError(config_file, f"not valid JSON ({error})", "restore the file") from error
    weights = full_weight_files(folder)
    if not weights:
        raise UserError(
            folder,
            "full fine-tuned weights are missing (model*.safetensors)",
            "copy the whole folder, or train it again",
        )
    return config, weights[0]
