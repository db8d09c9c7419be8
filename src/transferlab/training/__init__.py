"""LoRA fine-tuning of one source: the reference recipe by default, deterministic, resumable.

``train_adapter`` takes examples (the caller decides where they come from: one cell, or a
mixture of cells) and writes a PEFT adapter folder with a ``transferlab.json`` that records
everything that determined it.
"""

from transferlab.training.command import summarize, train_command
from transferlab.training.engine import TrainOutcome, train_adapter
from transferlab.training.outputs import adapter_hash, partial_dir
from transferlab.training.settings import TrainSettings, apply_overrides, make_settings

__all__ = [
    "TrainOutcome",
    "TrainSettings",
    "adapter_hash",
    "apply_overrides",
    "make_settings",
    "partial_dir",
    "summarize",
    "train_adapter",
    "train_command",
]
