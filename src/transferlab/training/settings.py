"""Training hyperparameters (the reference study's recipe by default) and ``--set`` overrides."""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from transferlab.errors import UserError, did_you_mean

# The seven projections of a transformer block, in the names Llama-style models use; other
# architectures are mapped onto these in ``lora.py``.
_EXPONENT_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")

ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Settings that only shape a LoRA adapter: naming one with ``method: full`` is a mistake.
LORA_ONLY = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")
METHODS = ("lora", "full")


class TrainSettings(BaseModel):
    """Every knob of one fine-tune; defaults are PROTOCOL.md §1 (library defaults elsewhere)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # lora: a PEFT adapter on the frozen base; full: every weight of the model is trained
    method: Literal["lora", "full"] = "lora"
    # LoRA
    lora_r: int = Field(32, gt=0)
    lora_alpha: float = Field(64, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = Field(ALL_PROJECTIONS, min_length=1)
    # Schedule and optimiser (AdamW with the transformers Trainer defaults)
    epochs: int = Field(3, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps")
    learning_rate: float = Field(5e-5, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    optimizer: Literal["adamw"] = "adamw"
    weight_decay: float = Field(0.0, ge=0)
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    adam_epsilon: float = Field(1e-8, gt=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    # Batches
    batch_size: int = Field(8, gt=0)
    grad_accumulation: int = Field(1, gt=0)
    eval_batch_size: int = Field(16, gt=0)
    max_length: int = Field(1024, gt=1, description="tokens; longer prompts lose their start")
    group_by_length: bool = True
    length_group_batches: int = Field(
        16, gt=0, description="batches whose examples are sorted by length together"
    )
    length_bucket_tokens: int = Field(
        8, gt=0, description="lengths within one such bucket count as equal when grouping"
    )
    # Numerics and bookkeeping
    # auto: bf16 autocast where the device computes bf16 natively, else fp32 (hardware.py)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    select_best: bool = Field(True, description="keep the epoch with the best validation loss")
    logging_steps: int = Field(10, gt=0)
    min_train_items: int = Field(10, gt=0)

    @model_validator(mode="after")
    def _no_lora_settings_when_full(self) -> TrainSettings:
        named = [k for k in LORA_ONLY if k in self.model_fields_set]
        if self.method == "full" and named:
            raise PydanticCustomError(
                "lora_with_full",
                "method full trains every weight, so the LoRA setting(s) {named} do not apply",
                {"named": ", ".join(named)},
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # The method joined the settings after studies had been keyed by their dump: the
        # default stays out of it, so those keys, fingerprints and records are unchanged. A full
        # fine-tune leaves the LoRA settings out: they do not shape it (and a dump reloads).
        data = handler(self)
        if data.get("method") == "lora":
            del data["method"]
        elif data.get("method") == "full":
            for key in LORA_ONLY:
                data.pop(key, None)
        return data

    @property
    def effective_batch_size(self) -> int:
        """Return examples per optimizer step."""
        return self.batch_size * self.grad_accumulation


def coerce_value(text: str) -> Any:
    """Return a ``--set`` value with its YAML type (int, float, bool, null, list), else the text."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _EXPONENT_FLOAT.match(text):
        return float(text)  # YAML 1.1 reads "5e-5" (no dot) as a string
    return text if isinstance(value, dict) else value


def make_settings(values: dict[str, Any], where: str = "training settings") -> TrainSettings:
    """Return validated settings from a plain mapping, or raise UserError naming the bad key."""
    known = list(TrainSettings.model_fields)
    for key in values:
        if key not in known:
            raise UserError(
                where,
                f"unknown training setting {key!r}{did_you_mean(key, known)}",
                f"known settings: {', '.join(known)}",
            )
    values = dict(values)
    modules = values.get("target_modules")
    if isinstance(modules, str):
        values["target_modules"] = tuple(m.strip() for m in modules.split(",") if m.strip())
    try:
        return TrainSettings(**values)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "lora_with_full":
            raise UserError(
                where,
                f"training: {first['msg']}",
                "remove them, or train with method lora",
            ) from None
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise UserError(
            where,
            f"training setting {field!r}: {first['msg']} (got {first.get('input')!r})",
            "give a valid value",
        ) from None


def apply_overrides(
    overrides: list[str] | tuple[str, ...],
    base: TrainSettings | None = None,
    where: str = "--set",
) -> TrainSettings:
    """Return ``base`` (default: the reference recipe) with ``key=value`` overrides applied."""
    # Only what was set: defaults stay defaults (``method: full`` refuses LoRA keys set explicitly).
    values = base.model_dump(exclude_unset=True) if base is not None else {}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(where, f"{item!r} is not key=value", "write e.g. --set epochs=2")
        values[key] = coerce_value(text.strip())
    return make_settings(values, where)
