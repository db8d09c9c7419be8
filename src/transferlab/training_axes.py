"""Training axes: list values in a study's ``training`` section, crossed with the sources.

``training: {lora_r: [8, 32, 64]}`` asks for every source trained at each rank. Any field of
``TrainSettings`` can be an axis; a field whose value is itself a list (``target_modules``) is an
axis when it is given a list of lists.
"""

from __future__ import annotations

import itertools
import typing
from typing import Any

from transferlab.errors import UserError
from transferlab.training.settings import LORA_ONLY, TrainSettings, make_settings


def _is_sequence_field(name: str) -> bool:
    field = TrainSettings.model_fields.get(name)
    return field is not None and typing.get_origin(field.annotation) in (tuple, list)


def split_axes(training: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Return a ``training`` mapping's fixed settings and its axes (the list-valued keys)."""
    fixed, axes = {}, {}
    for key, value in training.items():
        is_axis = isinstance(value, list) and (
            not _is_sequence_field(key) or all(isinstance(v, list) for v in value)
        )
        (axes if is_axis else fixed)[key] = value
    return fixed, axes


def _text(value: Any) -> str:
    return "+".join(map(str, value)) if isinstance(value, (list, tuple)) else f"{value}"


def training_variants(
    base: TrainSettings, axes: dict[str, list[Any]], where: str
) -> list[tuple[str, TrainSettings]]:
    """Return (name, settings) per combination of the axes, in axis order; ``[("", base)]``
    without axes. The name (``lora_r=8,method=full``) tells the variants apart in results."""
    if not axes:
        return [("", base)]
    for key, values in axes.items():
        if not values:
            raise UserError(where, f"training.{key}: the list is empty", "give at least one value")
        if len({_text(v) for v in values}) < len(values):
            raise UserError(where, f"training.{key} lists a value twice", "list each value once")
    variants = []
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo, strict=True))
        name = ",".join(f"{k}={_text(v)}" for k, v in values.items())
        chosen = {**base.model_dump(), **values}
        if chosen.get("method") == "full":  # the LoRA settings apply to the LoRA variants only
            chosen = {k: v for k, v in chosen.items() if k not in LORA_ONLY}
        settings = make_settings(chosen, f"{where}: training ({name})")
        variants.append((name, settings))
    return variants
