"""The training loop: loss only at the scored positions, accumulation, schedule, evaluation."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transferlab.training.data import EncodedExample, collate, epoch_batches, eval_batches
from transferlab.training.settings import TrainSettings


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; the message says where."""


@dataclass
class Progress:
    """Everything about a run's position and history that a checkpoint must restore."""

    epochs_done: int = 0
    global_step: int = 0
    steps: list[dict] = field(default_factory=list)  # one entry per logging step
    epochs: list[dict] = field(default_factory=list)  # one entry per evaluated epoch
    best_epoch: int | None = None
    best_val_loss: float | None = None
    train_seconds: float = 0.0
    train_tokens: int = 0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ScoredLoss:
    """Cross-entropy of a causal LM computed only where labels are: body once, head at K rows.

    Equals what the model's own forward with ``labels`` (-100 elsewhere) returns (in float32;
    under bf16 on CPU the head is more precise), without the (batch × length × vocabulary)
    logits tensor that dominates a 262k-vocabulary model's cost.
    """

    def __init__(self, hf_model: Any, dtype: str, device: str) -> None:
        import torch

        self.body = hf_model.get_decoder()
        self.head = hf_model.get_output_embeddings()
        if self.body is hf_model or self.head is None:
            raise TypeError(f"{type(hf_model).__name__} has no separate decoder and LM head")
        config = hf_model.config.get_text_config()
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.divide_by = getattr(config, "logits_scaling", None)  # Granite
        self.multiply_by = getattr(hf_model, "logit_scale", None)  # Cohere
        self.device = device
        device_type = "cuda" if device.startswith("cuda") else "cpu"
        self.autocast = (
            (lambda: torch.autocast(device_type, dtype=torch.bfloat16))
            if dtype == "bfloat16"
            else contextlib.nullcontext
        )
        # On CPU, autocast would copy the whole (vocabulary × hidden) head to bf16 on every
        # step, which costs more than the float32 product at the few scored rows.
        self.head_in_float32 = device_type == "cpu"

    def loss_sum(self, batch: dict[str, Any]) -> Any:
        """Return the summed token cross-entropy (float32 scalar tensor) of a collated batch."""
        import torch
        import torch.nn.functional as F

        with self.autocast():
            out = self.body(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                use_cache=False,
            )
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        scored = hidden[batch["rows"], batch["cols"]]
        if self.head_in_float32:
            head_context, scored = contextlib.nullcontext(), scored.float()
        else:
            head_context = self.autocast()
        with head_context:
            logits = self.head(scored)
            if self.divide_by:
                logits = logits / self.divide_by
            if self.multiply_by:
                logits = logits * self.multiply_by
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
        return F.cross_entropy(logits.float(), batch["targets"], reduction="sum")


def _loss_totals(
    loss: ScoredLoss, model: Any, examples: Sequence[EncodedExample], batch_size: int, pad_id: int
) -> tuple[float, int]:
    """Return the summed token cross-entropy of ``examples`` and its number of loss tokens."""
    import torch

    was_training = model.training
    model.eval()
    total, n_tokens = 0.0, 0
    lengths = [len(e.input_ids) for e in examples]
    with torch.no_grad():
        for indices in eval_batches(lengths, batch_size):
            batch = collate([examples[i] for i in indices], pad_id, loss.device)
            total += float(loss.loss_sum(batch))
            n_tokens += len(batch["targets"])
    model.train(was_training)
    return total, n_tokens


def evaluate(
    loss: ScoredLoss, model: Any, examples: Sequence[EncodedExample], batch_size: int, pad_id: int
) -> float:
    """Return the mean token cross-entropy over all loss tokens of ``examples``."""
    total, n_tokens = _loss_totals(loss, model, examples, batch_size, pad_id)
    return total / max(n_tokens, 1)


def evaluate_parts(
    loss: ScoredLoss,
    model: Any,
    examples: Sequence[EncodedExample],
    parts: Sequence[str],
    batch_size: int,
    pad_id: int,
) -> tuple[float, dict[str, float]]:
    """Return the mean token cross-entropy over all of ``examples`` and per part.

    The overall loss pools every part's tokens, as one validation set of the parts would.
    """
    totals: dict[str, tuple[float, int]] = {}
    for part in dict.fromkeys(parts):
        subset = [e for e, p in zip(examples, parts, strict=True) if p == part]
        totals[part] = _loss_totals(loss, model, subset, batch_size, pad_id)
    total = sum(t for t, _ in totals.values())
    n_tokens = sum(n for _, n in totals.values())
    return total / max(n_tokens, 1), {p: t / max(n, 1) for p, (t, n) in totals.items()}


def steps_per_epoch(n_examples: int, settings: TrainSettings) -> int:
    """Return optimizer steps per epoch (a last short accumulation group still counts)."""
    n_batches = math.ceil(n_examples / settings.batch_size)
    return max(math.ceil(n_batches / settings.grad_accumulation), 1)


def total_steps(n_examples: int, settings: TrainSettings) -> int:
    """Return the optimizer steps of the whole run."""
    return settings.max_steps or settings.epochs * steps_per_epoch(n_examples, settings)


def make_optimizer(params: list[Any], settings: TrainSettings, n_examples: int) -> tuple[Any, Any]:
    """Return AdamW and its warmup + decay schedule, as the transformers Trainer builds them."""
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.AdamW(
        params,
        lr=settings.learning_rate,
        betas=(settings.adam_beta1, settings.adam_beta2),
        eps=settings.adam_epsilon,
        weight_decay=settings.weight_decay,
    )
    steps = total_steps(n_examples, settings)
    scheduler = get_scheduler(
        settings.lr_scheduler,
        optimizer,
        num_warmup_steps=math.ceil(steps * settings.warmup_ratio),
        num_training_steps=steps,
    )
    return optimizer, scheduler


def _log_window(progress: Progress, losses: list[float], per_epoch: int, scheduler: Any) -> None:
    if losses:
        progress.steps.append(
            {
                "step": progress.global_step,
                "epoch": round(progress.global_step / per_epoch, 4),
                "loss": sum(losses) / len(losses),
                "learning_rate": scheduler.get_last_lr()[0],
            }
        )
        losses.clear()


def fit(
    model: Any,
    loss: ScoredLoss,
    train: Sequence[EncodedExample],
    validation: Sequence[EncodedExample],
    settings: TrainSettings,
    seed: int,
    pad_id: int,
    optimizer: Any,
    scheduler: Any,
    progress: Progress,
    on_epoch_end: Callable[[Progress, bool], None],
    show_progress: bool = True,
    validation_parts: Sequence[str] | None = None,
) -> Progress:
    """Train from ``progress`` to the end; calls ``on_epoch_end(progress, improved)`` per epoch.

    With ``validation_parts`` (one name per validation example, a mixture's parts) the epoch's
    validation loss is also recorded per part; the best epoch is chosen on the overall loss.

    Raises NonFiniteLoss as soon as a step's loss is NaN or infinite (nothing of it applied).
    """
    import torch
    from tqdm.auto import tqdm

    params = [p for p in model.parameters() if p.requires_grad]
    per_epoch = steps_per_epoch(len(train), settings)
    n_steps = total_steps(len(train), settings)
    n_epochs = math.ceil(n_steps / per_epoch)
    lengths = [len(e.input_ids) for e in train]
    bar = tqdm(total=n_steps, initial=progress.global_step, desc="train", disable=not show_progress)
    model.train()
    window_losses: list[float] = []
    try:
        for epoch in range(progress.epochs_done, n_epochs):
            batches = epoch_batches(
                lengths,
                settings.batch_size,
                seed,
                epoch,
                settings.group_by_length,
                settings.length_group_batches,
                settings.length_bucket_tokens,
            )
            epoch_losses: list[float] = []
            ga = settings.grad_accumulation
            for start in range(0, len(batches), ga):
                if progress.global_step >= n_steps:
                    break
                began = time.perf_counter()
                group = [[train[i] for i in b] for b in batches[start : start + ga]]
                n_loss_tokens = sum(e.n_loss_tokens for b in group for e in b)
                step_loss, step_tokens = 0.0, 0
                for examples in group:
                    batch = collate(examples, pad_id, loss.device)
                    value = loss.loss_sum(batch) / n_loss_tokens
                    if not torch.isfinite(value):
                        raise NonFiniteLoss(
                            f"training loss is {float(value.detach())} at step {progress.global_step + 1} "
                            f"(epoch {epoch + 1})"
                        )
                    value.backward()
                    step_loss += float(value.detach())
                    step_tokens += batch["n_tokens"]
                if settings.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                progress.global_step += 1
                progress.train_seconds += time.perf_counter() - began
                progress.train_tokens += step_tokens
                epoch_losses.append(step_loss)
                window_losses.append(step_loss)
                rate = progress.train_tokens / max(progress.train_seconds, 1e-9)
                bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{rate:.0f}", refresh=False)
                bar.update(1)
                if progress.global_step % settings.logging_steps == 0:
                    _log_window(progress, window_losses, per_epoch, scheduler)
            # Close the window at the epoch's end, so a resumed run logs the same steps.
            _log_window(progress, window_losses, per_epoch, scheduler)
            part_losses = None
            if validation_parts is not None:
                val_loss, part_losses = evaluate_parts(
                    loss, model, validation, validation_parts, settings.eval_batch_size, pad_id
                )
            else:
                val_loss = evaluate(loss, model, validation, settings.eval_batch_size, pad_id)
            if not math.isfinite(val_loss) and validation:
                raise NonFiniteLoss(f"validation loss is {val_loss} after epoch {epoch + 1}")
            progress.epochs_done = epoch + 1
            progress.epochs.append(
                {
                    "epoch": epoch + 1,
                    "step": progress.global_step,
                    "train_loss": sum(epoch_losses) / max(len(epoch_losses), 1),
                    "val_loss": val_loss if validation else None,
                    **({"val_loss_parts": part_losses} if part_losses is not None else {}),
                }
            )
            improved = (
                not validation
                or not settings.select_best
                or progress.best_val_loss is None
                or val_loss < progress.best_val_loss
            )
            if improved:
                progress.best_epoch = epoch + 1
                progress.best_val_loss = val_loss if validation else None
            on_epoch_end(progress, improved)
    finally:
        bar.close()
    return progress
