"""`transferlab train`: one (task, language) source → one adapter folder, summarised in a few lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transferlab.errors import UserError, did_you_mean
from transferlab.grid import Cell, Source
from transferlab.training.engine import TrainOutcome, train_adapter
from transferlab.training.settings import apply_overrides


def train_command(
    model_ref: str,
    task_ref: str,
    language: str,
    out_dir: Path | str,
    seed: int = 42,
    overrides: Sequence[str] = (),
) -> str:
    """Return a summary of the adapter trained on ``task_ref`` in ``language`` (see train_adapter)."""
    import torch

    from transferlab.models import load_model
    from transferlab.tasks import get_task

    settings = apply_overrides(list(overrides))
    task = get_task(task_ref)
    if language not in task.languages:
        raise UserError(
            task_ref,
            f"language {language!r} is not one of the task's{did_you_mean(language, list(task.languages))}",
            f"choose one of: {', '.join(task.languages)}",
        )
    train = task.train_examples(language, "train")
    validation = task.train_examples(language, "validation")
    source = Source.single(Cell(task.name, language))
    provenance = {
        "source": str(source),
        "task": task.name,
        "task_ref": str(task_ref),
        "language": language,
        "task_hash": task.content_hash(language),
    }
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = load_model(model_ref, dtype="float32", device=device)
    outcome = train_adapter(
        loaded, train, validation, Path(out_dir), settings, seed, provenance, progress=True
    )
    return summarize(outcome)


def summarize(outcome: TrainOutcome) -> str:
    """Return a few human-readable lines about a finished training run."""
    meta = outcome.metadata
    epochs = meta["history"]["epochs"]
    train_losses = ", ".join(f"{e['train_loss']:.4f}" for e in epochs)
    val_losses = ", ".join("-" if e["val_loss"] is None else f"{e['val_loss']:.4f}" for e in epochs)
    best = meta["best_val_loss"]
    best_text = f" (validation loss {best:.4f})" if best is not None else ""
    return "\n".join(
        [
            f"Wrote {'full weights' if meta.get('method') == 'full' else 'adapter'} "
            f"{outcome.adapter_dir} (hash {outcome.adapter_hash})",
            f"  source {meta['provenance'].get('source', '?')}, model {meta['base_model']['ref']}, "
            f"seed {meta['seed']}",
            f"  {meta['optimizer_steps']} optimizer steps over {meta['epochs_done']} epoch(s); "
            f"kept epoch {meta['best_epoch']}{best_text}",
            f"  loss per epoch: train {train_losses}; validation {val_losses}",
            f"  {meta['tokens_per_s']:.0f} tokens/s, wall {meta['wall_time_s']:.1f} s, "
            f"dtype {meta['dtype']}, batch {meta['effective_batch_size']}",
            f"  method {meta.get('method', 'lora')}, {meta.get('s_per_step', 0):.2f} s/step, "
            f"peak memory {meta.get('peak_rss_mb', 0):.0f} MB (process RSS)",
        ]
    )
