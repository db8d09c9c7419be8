"""What a fine-tune trains and writes: a LoRA adapter on the frozen base, or every weight.

``start(method, loaded, settings, targets, seed)`` returns a ``Trainee``: the module the loop
trains, its trainable state (for checkpoints and the best epoch), how that state is written as
the finished folder, and how the loaded base is given back unchanged afterwards, so one loaded
model can train and score many states in one process whatever the method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from transferlab.training.lora import attach_lora, detach_lora, resolve_target_modules
from transferlab.training.settings import TrainSettings


class Trainee(Protocol):
    """One run's trainable model."""

    model: Any  # what the loop calls .train() / .parameters() on
    causal_lm: Any  # the Hugging Face causal LM whose body and head compute the loss

    def weights(self) -> dict[str, Any]:
        """Return a detached copy of the trainable state."""

    def load(self, weights: dict[str, Any]) -> None:
        """Put ``weights`` (from ``weights()``) into the model."""

    def save(self, weights: dict[str, Any], folder: Path) -> None:
        """Write the model with ``weights`` as a finished folder (safetensors)."""

    def release(self) -> None:
        """Give the loaded base model back as it was before training."""


def target_modules(method: str, loaded: Any, settings: TrainSettings) -> list[str]:
    """Return the modules a LoRA run adapts (a full fine-tune adapts no module: ``[]``)."""
    if method == "full":
        return []
    return resolve_target_modules(
        loaded.model, settings.target_modules, f"target_modules (model {loaded.ref})"
    )


class LoraTrainee:
    """A PEFT adapter attached to the frozen base; the folder is the adapter alone."""

    def __init__(self, loaded: Any, settings: TrainSettings, targets: list[str], seed: int):
        self.loaded = loaded
        self.model = attach_lora(loaded.model, settings, targets, seed)
        self.causal_lm = self.model.get_base_model()

    def weights(self) -> dict[str, Any]:
        from peft import get_peft_model_state_dict

        return {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.model).items()}

    def load(self, weights: dict[str, Any]) -> None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(self.model, weights)

    def save(self, weights: dict[str, Any], folder: Path) -> None:
        self.load(weights)
        self.model.save_pretrained(folder, safe_serialization=True)

    def release(self) -> None:
        detach_lora(self.model)
        self.loaded.model.eval()


class FullTrainee:
    """Every parameter of the loaded model trained in place; the folder is a whole model.

    The base weights are copied first and put back by ``release``, so the loaded model is
    the base again afterwards (at the cost of one more copy of the weights in memory).
    """

    def __init__(self, loaded: Any, settings: TrainSettings, targets: list[str], seed: int):
        import torch

        self.loaded = loaded
        self.model = self.causal_lm = loaded.model
        # named_parameters() lists a tied embedding / LM head once, so it is copied once.
        self.params = dict(self.model.named_parameters())
        self.requires_grad = {name: p.requires_grad for name, p in self.params.items()}
        self.base = self.weights()
        for p in self.params.values():
            p.requires_grad_(True)
        torch.manual_seed(seed)  # the same global generator state as a LoRA run starts from

    def weights(self) -> dict[str, Any]:
        return {name: p.detach().clone() for name, p in self.params.items()}

    def load(self, weights: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(weights[name])

    def save(self, weights: dict[str, Any], folder: Path) -> None:
        self.load(weights)
        self.model.save_pretrained(folder, safe_serialization=True)
        # A tokenizer beside the weights makes the folder a model in its own right.
        self.loaded.tokenizer.save_pretrained(folder)

    def release(self) -> None:
        self.load(self.base)
        for name, p in self.params.items():
            p.requires_grad_(self.requires_grad[name])
            p.grad = None
        self.base = {}
        self.model.eval()


TRAINEES: dict[str, type] = {"lora": LoraTrainee, "full": FullTrainee}


def start(
    method: str, loaded: Any, settings: TrainSettings, targets: list[str], seed: int
) -> Trainee:
    """Return the trainee of ``method`` (``lora`` | ``full``) on ``loaded``'s model."""
    return TRAINEES[method](loaded, settings, targets, seed)
