"""Model states (the base model, the base with one PEFT adapter, or fully fine-tuned weights)
and switching between them.

Trained folders are checked against the loaded base before anything runs. Adapters are applied
with PEFT without merging: the base weights stay loaded once, each adapter is loaded, activated,
scored and removed. A full fine-tune's weights are copied into the loaded model for its block
and the base weights copied back after it. The base model is unchanged at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.adapter_files import (
    adapter_hash,
    check_adapter_files,
    full_weight_files,
    state_method,
)
from transferlab.compat import quiet_peft
from transferlab.errors import UserError
from transferlab.models import LoadedModel, read_safetensors_header

log = logging.getLogger(__name__)

__all__ = [
    "AdapterSwitch",
    "ModelState",
    "adapter_hash",
    "check_adapter",
    "check_adapter_files",
    "mixable",
]


@dataclass(frozen=True)
class ModelState:
    """What is scored: the base model (``adapter_dir`` None), or a trained folder: the base
    plus one adapter, or a full fine-tune of the base (``adapter_files.state_method``)."""

    name: str
    adapter_dir: Path | None = None

    @classmethod
    def for_adapter(cls, adapter_dir: Path | str) -> ModelState:
        """Return the state of ``adapter_dir``, named after the folder."""
        path = Path(adapter_dir)
        return cls(path.resolve().name, path)


def _adapter_module_path(key: str) -> tuple[str, str] | None:
    # PEFT saves "base_model.model.<module path>.lora_A.weight" (adapter name stripped).
    marker = key.find(".lora_")
    if marker < 0:
        return None
    path = key[:marker]
    path = path.removeprefix("base_model.model.")
    return path, key[marker + 1 :]


def mixable(state: ModelState) -> bool:
    """Return whether the state's rows can share a forward pass with other states' rows: the
    base model and LoRA adapters without DoRA (PEFT's mixed-adapter batches)."""
    if state.adapter_dir is None:
        return True
    if state_method(state.adapter_dir) == "full":
        return False
    config, _weights = check_adapter_files(state.adapter_dir)
    return str(config.get("peft_type", "")).upper() == "LORA" and not config.get("use_dora")


def check_adapter(loaded: LoadedModel, adapter_dir: Path) -> None:
    """Raise UserError unless ``adapter_dir`` is a complete trained folder for ``loaded``'s model."""
    config, weights = check_adapter_files(adapter_dir)
    meta_file = adapter_dir / "transferlab.json"
    if meta_file.exists():
        try:
            base = json.loads(meta_file.read_text()).get("base_model") or {}
        except ValueError:
            base = {}
        trained_on = base.get("model_hash")
        if trained_on and trained_on != loaded.model_hash:
            raise UserError(
                meta_file,
                f"base_model.model_hash: adapter was trained on {base.get('ref', '?')} "
                f"({trained_on}), not on {loaded.ref} ({loaded.model_hash})",
                "evaluate it with the model it was trained on",
            )
    if state_method(adapter_dir) == "full":
        _check_full_weights(loaded, adapter_dir)
    elif weights.suffix == ".safetensors":
        _check_shapes(loaded, weights, config)


def _check_full_weights(loaded: LoadedModel, folder: Path) -> None:
    """Raise UserError unless the folder's tensors are exactly the base model's parameters."""
    params = dict(loaded.model.named_parameters(remove_duplicate=False))
    fix = "evaluate it with the base model it was fine-tuned from"
    found: set[str] = set()
    for file in full_weight_files(folder):
        for key, shape in _tensor_shapes(file).items():
            if key not in params:
                raise UserError(file, f"{key}: the base model {loaded.ref} has no such weight", fix)
            if shape != list(params[key].shape):
                raise UserError(
                    file,
                    f"{key}: shape {shape} but {loaded.ref}'s is {list(params[key].shape)}",
                    fix,
                )
            found.add(key)
    # A tied weight is saved once, under either of its names.
    missing = [n for n, p in params.items() if n not in found and not _tied_to(p, params, found)]
    if missing:
        raise UserError(folder, f"weights missing for {missing[0]} ({len(missing)} in all)", fix)


def _tied_to(param: Any, params: dict[str, Any], found: set[str]) -> bool:
    return any(params[name] is param for name in found)


def _tensor_shapes(file: Path) -> dict[str, list[int]]:
    """Return each tensor's shape from a safetensors header, or raise UserError."""
    try:
        header = read_safetensors_header(file)
    except (OSError, ValueError) as error:
        raise UserError(file, f"unreadable safetensors file ({error})", "train it again") from error
    return {k: list(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def _check_shapes(loaded: LoadedModel, weights: Path, config: dict[str, Any]) -> None:
    """Raise UserError when the adapter's tensors do not fit the base model's modules."""
    model = loaded.model
    fix = f"evaluate it with the base model it was trained on ({config.get('base_model_name_or_path', '?')})"
    for key, shape in _tensor_shapes(weights).items():
        located = _adapter_module_path(key)
        if located is None:
            continue
        path, part = located
        try:
            module = model.get_submodule(path)
        except AttributeError:
            raise UserError(
                weights, f"{key}: the base model {loaded.ref} has no module {path!r}", fix
            ) from None
        in_features = getattr(module, "in_features", None)
        out_features = getattr(module, "out_features", None)
        if in_features is None or len(shape) != 2:
            continue
        if part.startswith("lora_A.") and shape[1] != in_features:
            expected, got = in_features, shape[1]
        elif part.startswith("lora_B.") and shape[0] != out_features:
            expected, got = out_features, shape[0]
        else:
            continue
        raise UserError(
            weights,
            f"{key}: shape {shape} needs a {got}-wide layer but {loaded.ref}'s {path} is "
            f"{expected}-wide, so the adapter belongs to a different base model",
            fix,
        )


class AdapterSwitch:
    """Activates model states one after another on one loaded base model."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.peft: Any = None
        self._count = 0

    def active(self, state: ModelState) -> contextlib.AbstractContextManager[None]:
        """Make ``state`` the model's behaviour inside the block."""
        if state.adapter_dir is None:
            return self._base()
        if state_method(state.adapter_dir) == "full":
            return self._full_weights(state.adapter_dir)
        return self._adapter(state)

    @contextlib.contextmanager
    def _base(self) -> Iterator[None]:
        # Each adapter is deleted after its block, so the wrapper holds none: removing its
        # (empty) LoRA layers gives the base; PEFT's disable_adapter needs an active adapter.
        self.close()
        yield

    @contextlib.contextmanager
    def _full_weights(self, folder: Path) -> Iterator[None]:
        """Copy a full fine-tune's weights into the loaded model; copy the base back after."""
        import torch
        from safetensors.torch import load_file

        self.close()  # LoRA layers would rename the modules the weights are for
        params = dict(self.loaded.model.named_parameters(remove_duplicate=False))
        saved: dict[str, Any] = {}
        try:
            with torch.no_grad():
                for file in full_weight_files(folder):
                    for name, tensor in load_file(file).items():
                        target = params[name]
                        saved[name] = target.detach().clone()
                        target.copy_(tensor)  # cast to the loaded dtype as from_pretrained does
            yield
        finally:
            with torch.no_grad():
                for name, tensor in saved.items():
                    params[name].copy_(tensor)

    @contextlib.contextmanager
    def _adapter(self, state: ModelState) -> Iterator[None]:
        name = self._load(state)
        self.peft.set_adapter(name)
        self.peft.eval()
        try:
            yield
        finally:
            self.peft.delete_adapter(name)

    def _load(self, state: ModelState) -> str:
        """Load the state's adapter beside any others; return its PEFT name."""
        # PEFT adapter names are module attribute names; folder names may not be.
        name = f"state{self._count}"
        self._count += 1
        with quiet_peft():
            if self.peft is None:
                from peft import PeftModel

                self.peft = PeftModel.from_pretrained(
                    self.loaded.model, str(state.adapter_dir), adapter_name=name, is_trainable=False
                )
            else:
                self.peft.load_adapter(
                    str(state.adapter_dir), adapter_name=name, is_trainable=False
                )
        return name

    @contextlib.contextmanager
    def together(self, states: list[ModelState]) -> Iterator[list[str] | None]:
        """Make several states answer in one forward pass inside the block.

        Yields each state's name for PEFT's mixed-adapter batches (``adapter_names=``, one per
        row; ``__base__`` is the base model), to be passed through ``self.peft``; for one state
        it activates that state and yields None. Every state must be `mixable`.
        """
        if len(states) == 1:
            with self.active(states[0]):
                yield None
            return
        names: list[str] = []
        try:
            for state in states:
                names.append("__base__" if state.adapter_dir is None else self._load(state))
            self.peft.eval()
            yield names
        finally:
            with warnings.catch_warnings():  # as each deleted adapter hands "active" on
                warnings.filterwarnings("ignore", "Adapter .* was active which is now deleted")
                for name in names:
                    if name != "__base__":
                        self.peft.delete_adapter(name)

    def close(self) -> None:
        """Remove every adapter layer, leaving the base model as it was loaded."""
        if self.peft is not None:
            self.loaded.model = self.peft.unload()
            self.peft = None

    def __enter__(self) -> AdapterSwitch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
