"""Where a training run writes: resumable checkpoints beside the output, the adapter at the end.

While training, everything lives in ``<out>.partial/``; the finished adapter folder is built in
there and renamed to ``<out>`` in one step, so ``<out>`` exists only when it is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from transferlab.adapter_files import METADATA_FILE, adapter_hash
from transferlab.fileio import write_json

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


def partial_dir(out_dir: Path) -> Path:
    """Return the working folder of a run whose result goes to ``out_dir``."""
    return out_dir.with_name(out_dir.name + ".partial")


def fingerprint(parts: dict[str, Any]) -> str:
    """Return a hash of everything that determines the trained weights."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(work: Path, payload: dict[str, Any]) -> None:
    """Write the checkpoint atomically (a crash mid-write leaves the previous one)."""
    import torch

    work.mkdir(parents=True, exist_ok=True)
    tmp = work / (CHECKPOINT_FILE + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, work / CHECKPOINT_FILE)


def load_checkpoint(work: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """Return the checkpoint of an interrupted identical run, or None to start afresh."""
    import torch

    file = work / CHECKPOINT_FILE
    if not file.exists():
        return None
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or foreign file is not worth failing the run for
        log.warning("ignoring unreadable checkpoint %s: %s", file, error)
        return None
    if payload.get("fingerprint") != expected_fingerprint:
        log.warning(
            "checkpoint %s is from a different run (settings or data); starting afresh", file
        )
        return None
    return payload


def read_metadata(folder: Path) -> dict[str, Any] | None:
    """Return a folder's transferlab.json, or None if it has none."""
    file = folder / METADATA_FILE
    return json.loads(file.read_text()) if file.exists() else None


def publish_adapter(
    trainee: Any, weights: dict[str, Any], work: Path, out_dir: Path, metadata: dict[str, Any]
) -> str:
    """Write the trained state with ``weights`` and its metadata to ``out_dir`` atomically.

    ``trainee`` (``methods.Trainee``) writes its files; returns the folder's content hash.
    """
    staging = work / "final"
    if staging.exists():
        shutil.rmtree(staging)
    trainee.save(weights, staging)
    # The record says which method wrote the folder, and the hash reads that: record first.
    write_json(metadata, staging / METADATA_FILE)
    digest = adapter_hash(staging)
    write_json({**metadata, "adapter_hash": digest}, staging / METADATA_FILE)
    if out_dir.exists():
        out_dir.rmdir()  # only an empty folder is replaced; the caller checked
    os.replace(staging, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return digest
