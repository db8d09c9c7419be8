"""Model states (the base model, or the base with one PEFT adapter) and switching between them.

Adapters are checked against the loaded base before anything runs, and applied with PEFT without
merging: the base weights stay loaded once, each adapter is loaded, activated, scored and
removed, and the base model is restored unchanged at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.adapter_files import adapter_hash, check_adapter_files
from transferlab.compat import quiet_peft
from transferlab.errors import UserError
from transferlab.models import LoadedModel, read_safetensors_header

log = logging.getLogger(__name__)

__all__ = ["AdapterSwitch", "ModelState", "adapter_hash", "check_adapter", "check_adapter_files"]


@dataclass(frozen=True)
class ModelState:
    """What is scored: the base model (``adapter_dir`` None) or the base plus one adapter."""

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


def check_adapter(loaded: LoadedModel, adapter_dir: Path) -> None:
    """Raise UserError unless ``adapter_dir`` is a complete PEFT adapter for ``loaded``'s model."""
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
    if weights.suffix == ".safetensors":
        _check_shapes(loaded, weights, config)


def _check_shapes(loaded: LoadedModel, weights: Path, config: dict[str, Any]) -> None:
    """Raise UserError when the adapter's tensors do not fit the base model's modules."""
    try:
        header = read_safetensors_header(weights)
    except (OSError, ValueError) as error:
        raise UserError(
            weights, f"unreadable safetensors file ({error})", "train it again"
        ) from error
    model = loaded.model
    fix = f"evaluate it with the base model it was trained on ({config.get('base_model_name_or_path', '?')})"
    for key, entry in header.items():
        if key == "__metadata__":
            continue
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
        shape = entry["shape"]
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

    @contextlib.contextmanager
    def active(self, state: ModelState) -> Iterator[None]:
        """Make ``state`` the model's behaviour inside the block."""
        if state.adapter_dir is None:
            if self.peft is None:
                yield
            else:
                with self.peft.disable_adapter():
                    yield
            return
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
        self.peft.set_adapter(name)
        self.peft.eval()
        try:
            yield
        finally:
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
