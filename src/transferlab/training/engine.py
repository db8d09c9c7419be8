"""train_adapter: one LoRA fine-tune from examples to a finished, self-describing adapter folder."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transferlab.errors import RunError, UserError
from transferlab.tasks.types import TrainExample
from transferlab.training.data import data_fingerprint, encode_examples
from transferlab.training.loop import NonFiniteLoss, Progress, ScoredLoss, fit, make_optimizer
from transferlab.training.lora import attach_lora, detach_lora, resolve_target_modules
from transferlab.training.outputs import (
    ADAPTER_WEIGHTS,
    METADATA_FILE,
    fingerprint,
    library_versions,
    load_checkpoint,
    partial_dir,
    publish_adapter,
    read_metadata,
    save_checkpoint,
    write_json,
)
from transferlab.training.settings import TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    """A finished adapter: its folder, content hash and the contents of its transferlab.json."""

    adapter_dir: Path
    adapter_hash: str
    metadata: dict[str, Any]


def _check_inputs(
    train: Sequence[TrainExample],
    validation: Sequence[TrainExample],
    settings: TrainSettings,
    where: str,
) -> None:
    if len(train) < settings.min_train_items:
        raise UserError(
            where,
            f"only {len(train)} training items; at least {settings.min_train_items} are needed",
            "train on a source with more items",
        )
    seen: set[str] = set()
    for example in (*train, *validation):
        if example.doc_id in seen:
            raise UserError(where, f"doc_id {example.doc_id!r} occurs twice", "make doc_ids unique")
        seen.add(example.doc_id)


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0  # padded positions are masked out and never read


def train_adapter(
    loaded: Any,
    train: Sequence[TrainExample],
    validation: Sequence[TrainExample],
    out_dir: Path | str,
    settings: TrainSettings | None = None,
    seed: int = 42,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
) -> TrainOutcome:
    """Return the LoRA adapter trained on ``train`` (best validation epoch), written to ``out_dir``.

    Resumes from ``<out_dir>.partial/`` when an identical run was interrupted; returns the
    existing adapter when ``out_dir`` already holds this exact run. ``loaded.model`` is left
    without LoRA layers afterwards, ready for scoring or the next run.
    """
    import torch

    settings = settings or TrainSettings()
    out_dir = Path(out_dir)
    provenance = dict(provenance or {})
    where = str(provenance.get("source") or "training data")
    _check_inputs(train, validation, settings, where)
    tokenizer = loaded.tokenizer
    pad_id = _pad_id(tokenizer)
    train_enc = encode_examples(tokenizer, train, settings.max_length)
    val_enc = encode_examples(tokenizer, validation, settings.max_length)
    targets = resolve_target_modules(
        loaded.model, settings.target_modules, f"target_modules (model {loaded.ref})"
    )
    data_hash = data_fingerprint(train_enc, val_enc)
    run_key = fingerprint(
        {
            "settings": settings.model_dump(mode="json"),
            "seed": seed,
            "model_hash": loaded.model_hash,
            "data": data_hash,
            "targets": targets,
            "device": loaded.device,
            "weights_dtype": loaded.dtype,
        }
    )
    existing = read_metadata(out_dir) if out_dir.is_dir() else None
    if existing and existing.get("fingerprint") == run_key and (out_dir / ADAPTER_WEIGHTS).exists():
        log.info("%s already holds this run's adapter; not training again", out_dir)
        return TrainOutcome(out_dir, existing["adapter_hash"], existing)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(out_dir, "already exists and holds something else", "choose another --out")

    work = partial_dir(out_dir)
    segment_start = time.perf_counter()
    peft_model = attach_lora(loaded.model, settings, targets, seed)
    try:
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        loss = ScoredLoss(peft_model.get_base_model(), settings.dtype, loaded.device)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        optimizer, scheduler = make_optimizer(params, settings, len(train_enc))
        state, best, resumed_from = Progress(), None, None
        checkpoint = load_checkpoint(work, run_key)
        if checkpoint is not None:
            set_peft_model_state_dict(peft_model, checkpoint["adapter"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            torch.set_rng_state(checkpoint["rng"])
            state, best = Progress(**checkpoint["progress"]), checkpoint["best_adapter"]
            resumed_from = state.epochs_done
            log.info("resuming %s after epoch %d", out_dir, resumed_from)
        elif work.exists():
            shutil.rmtree(work)

        def on_epoch_end(state: Progress, improved: bool) -> None:
            nonlocal best, segment_start
            weights = {
                k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()
            }
            if improved:
                best = weights
            now = time.perf_counter()
            state.wall_seconds += now - segment_start
            segment_start = now
            save_checkpoint(
                work,
                {
                    "fingerprint": run_key,
                    "progress": state.to_dict(),
                    "adapter": weights,
                    "best_adapter": best,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                },
            )

        base_meta = {
            "base_model": {
                "ref": loaded.ref,
                "path": str(loaded.path),
                "model_hash": loaded.model_hash,
                "model_type": getattr(loaded.model.config, "model_type", None),
            },
            "provenance": provenance,
            "seed": seed,
            "settings": settings.model_dump(mode="json"),
            "target_modules": targets,
            "fingerprint": run_key,
            "data": {
                "n_train": len(train_enc),
                "n_validation": len(val_enc),
                "data_hash": data_hash,
                "train_tokens_per_epoch": sum(len(e.input_ids) for e in train_enc),
                "train_loss_tokens_per_epoch": sum(e.n_loss_tokens for e in train_enc),
                "n_truncated": sum(e.truncated for e in (*train_enc, *val_enc)),
            },
            "dtype": settings.dtype,
            "batch_size": settings.batch_size,
            "effective_batch_size": settings.effective_batch_size,
            "device": loaded.device,
            "torch_threads": torch.get_num_threads(),
            "resumed_from_epoch": resumed_from,
            "versions": library_versions(),
        }
        try:
            state = fit(
                peft_model,
                loss,
                train_enc,
                val_enc,
                settings,
                seed,
                pad_id,
                optimizer,
                scheduler,
                state,
                on_epoch_end,
                show_progress=progress,
            )
        except NonFiniteLoss as error:
            work.mkdir(parents=True, exist_ok=True)
            failure = {
                **base_meta,
                **_results(state, segment_start),
                "status": "failed",
                "failure": str(error),
                "last_good_epoch": state.epochs_done or None,
            }
            write_json(work / METADATA_FILE, failure)
            kept = f"the checkpoint after epoch {state.epochs_done} is kept in {work}"
            raise RunError(
                f"{where}: {error}; stopped ({kept if state.epochs_done else 'no epoch finished'})"
            ) from None
        metadata = {**base_meta, **_results(state, segment_start), "status": "complete"}
        digest = publish_adapter(peft_model, best, work, out_dir, metadata)
    finally:
        detach_lora(peft_model)
        loaded.model.eval()
    log.info("trained %s (best epoch %s)", out_dir, state.best_epoch)
    return TrainOutcome(out_dir, digest, {**metadata, "adapter_hash": digest})


def _results(state: Progress, segment_start: float) -> dict[str, Any]:
    wall = state.wall_seconds + (time.perf_counter() - segment_start)
    return {
        "history": {"steps": state.steps, "epochs": state.epochs},
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val_loss,
        "optimizer_steps": state.global_step,
        "epochs_done": state.epochs_done,
        "train_time_s": round(state.train_seconds, 3),
        "wall_time_s": round(wall, 3),
        "train_tokens": state.train_tokens,
        "tokens_per_s": round(state.train_tokens / max(state.train_seconds, 1e-9), 2),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
