"""LoRA target modules per architecture, and attaching / detaching the adapter with PEFT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transferlab.compat import quiet_peft
from transferlab.errors import UserError, did_you_mean
from transferlab.training.settings import TrainSettings

# Architectures whose projections are not called q_proj ... down_proj: the Llama-style name on
# the left, this architecture's module name on the right (fused projections map many to one).
ARCH_PROJECTIONS: dict[str, dict[str, str]] = {
    "gpt2": {
        "q_proj": "c_attn",
        "k_proj": "c_attn",
        "v_proj": "c_attn",
        "o_proj": "c_proj",
        "gate_proj": "c_fc",
        "up_proj": "c_fc",
        "down_proj": "c_proj",
    },
    "gpt_neox": {
        "q_proj": "query_key_value",
        "k_proj": "query_key_value",
        "v_proj": "query_key_value",
        "o_proj": "dense",
        "gate_proj": "dense_h_to_4h",
        "up_proj": "dense_h_to_4h",
        "down_proj": "dense_4h_to_h",
    },
    "phi": {"o_proj": "dense", "gate_proj": "fc1", "up_proj": "fc1", "down_proj": "fc2"},
    "phi3": {
        "q_proj": "qkv_proj",
        "k_proj": "qkv_proj",
        "v_proj": "qkv_proj",
        "gate_proj": "gate_up_proj",
        "up_proj": "gate_up_proj",
    },
}
ARCH_PROJECTIONS["falcon"] = ARCH_PROJECTIONS["gpt_neox"]


def _linear_leaf_names(model: Any) -> set[str]:
    import torch

    names = set()
    for full_name, module in model.named_modules():
        # transformers' Conv1D (GPT-2) is a linear layer with transposed weights; PEFT handles it.
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
            names.add(full_name.rsplit(".", 1)[-1])
    return names


def resolve_target_modules(model: Any, requested: Sequence[str], where: str) -> list[str]:
    """Return the model's module names for ``requested`` (Llama-style names are mapped)."""
    model_type = getattr(model.config, "model_type", "")
    mapping = ARCH_PROJECTIONS.get(model_type, {})
    available = _linear_leaf_names(model)
    resolved: list[str] = []
    for name in requested:
        actual = mapping.get(name, name)
        if actual not in available:
            raise UserError(
                where,
                f"target module {name!r} does not exist in this {model_type or 'model'}"
                f"{did_you_mean(actual, sorted(available))}",
                f"set target_modules to some of: {', '.join(sorted(available))}",
            )
        if actual not in resolved:
            resolved.append(actual)
    return resolved


def attach_lora(model: Any, settings: TrainSettings, target_modules: list[str], seed: int) -> Any:
    """Return a PEFT model wrapping ``model`` (modified in place) with fresh LoRA weights."""
    import torch
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    # LoRA's A matrices are drawn from the global generator: seed it so weights are reproducible.
    torch.manual_seed(seed)
    with quiet_peft():
        return get_peft_model(model, config)


def detach_lora(peft_model: Any) -> Any:
    """Return the base model with the LoRA layers removed (not merged), ready for reuse."""
    return peft_model.base_model.unload()
