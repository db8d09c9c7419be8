"""A PEFT adapter folder on disk: its files, their check, and its content hash.

Training writes these folders and scoring reads them; both name the same files and hash them
the same way, so a hash recorded at training time matches the one checked before scoring.
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


def adapter_hash(adapter_dir: Path | str) -> str:
    """Return a content hash of an adapter's weights and the config fields that shape them."""
    adapter_dir = Path(adapter_dir)
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


def check_adapter_files(adapter_dir: Path) -> tuple[dict[str, Any], Path]:
    """Return (adapter config, weights file) of a PEFT adapter folder, or raise UserError."""
    where = str(adapter_dir)
    if not adapter_dir.is_dir():
        raise UserError(
            where, "no such adapter folder", "pass a folder that `transferlab train` wrote"
        )
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
