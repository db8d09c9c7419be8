"""Resolve a model reference (packaged preset, GGUF file, local folder, cached HF id) and load it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.conversion import (
    PRESETS,
    PROVENANCE_FILE,
    gguf_folder,
    preset_folder,
    transferlab_home,
)
from transferlab.errors import UserError, did_you_mean
from transferlab.fileio import sha256_file, write_json
from transferlab.hardware import AUTO, DTYPES, resolve_dtype

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A loaded causal LM with its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    ref: str  # the reference the user gave
    path: Path  # the local folder the weights were read from
    model_hash: str  # content hash of config + weights (see model_hash)
    dtype: str  # "float32" | "bfloat16" (resolved, never "auto")
    device: str  # "cpu" | "cuda" | "cuda:N"


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a model the study tables need, read without loading the weights."""

    ref: str
    name: str  # preset name, or the folder name
    family: str  # e.g. "gemma", "llama", "qwen", "smollm"
    n_params: int  # stored parameters (tied embeddings counted once)
    size_b: float  # n_params in billions
    model_hash: str
    path: Path


# --- hashing ------------------------------------------------------------------------------------


def model_hash(folder: Path) -> str:
    """Return a short content hash of a model folder (config, tokenizer and weight digests)."""
    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        # Dot files (e.g. digest caches older versions kept here) and the conversion record (it
        # holds a timestamp) would make the same weights hash differently on two machines.
        if file.name.startswith(".") or file.name == PROVENANCE_FILE or not file.is_file():
            continue
        if file.suffix in {".json", ".safetensors", ".bin", ".model"}:
            digest.update(file.name.encode())
            digest.update(_file_digest(file).encode())
    return digest.hexdigest()[:16]


def _digest_cache(folder: Path) -> Path:
    # Kept under $TRANSFERLAB_HOME, never in the model folder: that folder may be read-only,
    # shared, or the user's own. One file per folder, named by the folder's absolute path.
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:20]
    return transferlab_home() / "digests" / f"{key}.json"


def _file_digest(file: Path) -> str:
    # Hashing GBs of weights on every load is slow; cache the digest, keyed by size and mtime so
    # a rewritten file is hashed again.
    stat = file.stat()
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    cache = _digest_cache(file.parent)
    known: dict[str, Any] = {}
    if cache.exists():
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
    entry = known.get(file.name)
    if entry and entry.get("stamp") == stamp:
        return entry["sha256"]
    sha = sha256_file(file)
    known[file.name] = {"stamp": stamp, "sha256": sha}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json(known, cache)
    except OSError:
        pass  # an unwritable cache only means hashing again next time
    return sha


# --- resolving references -----------------------------------------------------------------------


HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _hf_cached(ref: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            ref, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE") or None
        )
    except Exception:  # not cached, or not a valid repo id: both mean "not here"
        return None
    return Path(folder)


def resolve_model(ref: str, convert: bool = True) -> Path:
    """Return the local folder holding the model named by ``ref`` (preparing presets once).

    With ``convert=False`` a preset or GGUF file not converted yet raises ``NotPrepared``.
    """
    ref = str(ref)
    if ref in PRESETS:
        return preset_folder(PRESETS[ref], convert)
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return gguf_folder(path.resolve(), convert)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(
                ref,
                "folder has no config.json, so it is not a model",
                "pass a Hugging Face model folder, a .gguf file or a preset "
                f"({', '.join(PRESETS)})",
            )
        return path
    if path.exists():
        raise UserError(
            ref, "file is not a model", "pass a .gguf file, a model folder or a preset name"
        )
    looks_like_path = ref.startswith((".", "/", "~")) or ref.endswith(".gguf")
    if not looks_like_path and HF_ID.match(ref):
        cached = _hf_cached(ref)
        if cached is not None:
            if not (cached / "config.json").exists():
                raise UserError(ref, "cached Hugging Face snapshot has no config.json")
            return cached
        raise UserError(
            ref,
            "not a preset, local folder or GGUF file, and not in the local Hugging Face cache "
            "(the hub is unreachable here)" + did_you_mean(ref, list(PRESETS)),
            f"use a preset ({', '.join(PRESETS)}), a local model folder or a .gguf file",
        )
    raise UserError(
        ref,
        "no such model file or folder" + did_you_mean(ref, list(PRESETS)),
        f"check the path, or use a preset ({', '.join(PRESETS)})",
    )


def read_safetensors_header(file: Path) -> dict[str, Any]:
    """Return the JSON header of a safetensors file (tensor names, dtypes, shapes)."""
    with file.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError("file too short for a safetensors header")
        (length,) = struct.unpack("<Q", raw)
        if length > 100_000_000:
            raise ValueError("implausible safetensors header length")
        return json.loads(fh.read(length))


def _count_parameters(folder: Path) -> int:
    # Read the safetensors headers only: shapes without touching the weights.
    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        header = read_safetensors_header(file)
        for key, entry in header.items():
            if key != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= dim
                total += count
    return total


def model_family(ref: str, folder: Path) -> str:
    """Return the model family of ``ref``: the preset's, else the config's model_type stem."""
    if ref in PRESETS:
        return PRESETS[ref].family
    config = json.loads((folder / "config.json").read_text())
    match = re.match(r"[a-z]+", str(config.get("model_type", "")).lower())
    return match.group(0) if match else "unknown"


def model_info(ref: str, convert: bool = True) -> ModelInfo:
    """Return name, family, parameter count and hash of the model ``ref`` (weights not loaded).

    With ``convert=False`` nothing is converted: an unprepared preset raises ``NotPrepared``.
    """
    folder = resolve_model(ref, convert)
    n_params = _count_parameters(folder)
    name = ref if ref in PRESETS else folder.name
    return ModelInfo(
        ref=ref,
        name=name,
        family=model_family(ref, folder),
        n_params=n_params,
        size_b=round(n_params / 1e9, 3),
        model_hash=model_hash(folder),
        path=folder,
    )


# --- loading ------------------------------------------------------------------------------------


def check_dtype_device(dtype: str, device: str) -> None:
    """Raise UserError unless ``dtype`` is known and ``device`` exists on this machine."""
    import torch

    if dtype not in (AUTO, *DTYPES):
        raise UserError(
            "--dtype", f"unknown dtype {dtype!r}", f"use one of {', '.join((AUTO, *DTYPES))}"
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device", f"{device!r} asked for but no CUDA GPU is visible", "use cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
        raise UserError("--device", f"unknown device {device!r}", "use cpu, cuda or cuda:N")


@contextlib.contextmanager
def _no_loading_bars() -> Iterator[None]:
    # Loading a local folder takes seconds; its per-tensor bar would only clutter stderr, where
    # the CLI promises a single line on bad input.
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_model(
    ref: str, dtype: str = "float32", device: str = "cpu", trust_remote_code: bool = False
) -> LoadedModel:
    """Return the model named by ``ref`` loaded in ``dtype`` on ``device``, in eval mode.

    ``dtype`` ``auto`` loads bf16 where the device computes it natively, else fp32; the returned
    ``LoadedModel.dtype`` is the one actually loaded.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_dtype_device(dtype, device)
    dtype = resolve_dtype(dtype, device)
    folder = resolve_model(ref)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    try:
        with _no_loading_bars():
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch_dtype, trust_remote_code=trust_remote_code
            )
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise UserError(
            ref, f"cannot be loaded as a causal LM: {first_line}", "pass a causal LM model folder"
        ) from error
    model.to(device).eval()
    return LoadedModel(model, tokenizer, str(ref), folder, model_hash(folder), dtype, device)
