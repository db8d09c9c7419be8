"""train_adapter: one fine-tune (LoRA or full) from examples to a finished, self-describing folder."""

from __future__ import annotations

import logging
import resource
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transferlab.adapter_files import is_complete
from transferlab.errors import RunError, UserError
from transferlab.fileio import write_json
from transferlab.hardware import resolve_dtype
from transferlab.tasks.types import TrainExample
from transferlab.training.data import EncodedExample, data_fingerprint, encode_examples
from transferlab.training.loop import NonFiniteLoss, Progress, ScoredLoss, fit, make_optimizer
from transferlab.training.methods import Trainee, start, target_modules
from transferlab.training.outputs import (
    METADATA_FILE,
    fingerprint,
    load_checkpoint,
    partial_dir,
    publish_adapter,
    read_metadata,
    save_checkpoint,
)
from transferlab.training.settings import TrainSettings
from transferlab.versions import library_versions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    """A finished adapter: its folder, content hash and the contents of its transferlab.json."""

    adapter_dir: Path
    adapter_hash: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class _Plan:
    """What the inputs become before any file is touched."""

    train: list[EncodedExample]
    validation: list[EncodedExample]
    targets: list[str]
    data_hash: str
    run_key: str  # fingerprint of everything that determines the weights
    pad_id: int


def _plan(
    loaded: Any,
    train: Sequence[TrainExample],
    validation: Sequence[TrainExample],
    settings: TrainSettings,
    seed: int,
    where: str,
    validation_parts: Sequence[str] | None = None,
) -> _Plan:
    if validation_parts is not None and len(validation_parts) != len(validation):
        raise ValueError("validation_parts needs one part name per validation example")
    if len(train) < settings.min_train_items:
        raise UserError(
            where,
            f"only {len(train)} training items; at least {settings.min_train_items} are needed",
            "train on a source with more items",
        )
    tokenizer = loaded.tokenizer
    train_enc = encode_examples(tokenizer, train, settings.max_length)
    val_enc = encode_examples(tokenizer, validation, settings.max_length)
    targets = target_modules(settings.method, loaded, settings)
    data_hash = data_fingerprint(train_enc, val_enc)
    identity = {
        "settings": settings.model_dump(mode="json"),
        "seed": seed,
        "model_hash": loaded.model_hash,
        "data": data_hash,
        "targets": targets,
        "device": loaded.device,
        "weights_dtype": loaded.dtype,
    }
    if validation_parts is not None:  # per-part losses are recorded: another run's checkpoint
        identity["validation_parts"] = list(validation_parts)
    run_key = fingerprint(identity)
    pad_id = next(
        (int(t) for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None),
        0,  # padded positions are masked out and never read
    )
    return _Plan(train_enc, val_enc, targets, data_hash, run_key, pad_id)


class _Checkpoints:
    """One run's per-epoch checkpoints in its ``.partial`` folder: saving and resuming."""

    def __init__(
        self, work: Path, run_key: str, trainee: Trainee, optimizer: Any, scheduler: Any
    ) -> None:
        self.work, self.run_key = work, run_key
        self.trainee, self.optimizer, self.scheduler = trainee, optimizer, scheduler
        self.best: dict[str, Any] | None = None
        self.segment_start = time.perf_counter()

    def resume(self) -> tuple[Progress, int | None]:
        """Return the progress to start from (restoring every state) and the epoch resumed after."""
        import torch

        checkpoint = load_checkpoint(self.work, self.run_key)
        if checkpoint is None:
            if self.work.exists():
                shutil.rmtree(self.work)
            return Progress(), None
        self.trainee.load(checkpoint["adapter"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"])
        self.best = checkpoint["best_adapter"]
        state = Progress(**checkpoint["progress"])
        log.info("resuming %s after epoch %d", self.work, state.epochs_done)
        return state, state.epochs_done

    def save(self, state: Progress, improved: bool) -> None:
        """Checkpoint the end of an epoch (the fit loop's ``on_epoch_end``)."""
        import torch

        weights = self.trainee.weights()
        if improved:
            self.best = weights
        self.tick(state)
        save_checkpoint(
            self.work,
            {
                "fingerprint": self.run_key,
                "progress": state.to_dict(),
                "adapter": weights,
                "best_adapter": self.best,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": torch.get_rng_state(),
            },
        )

    def tick(self, state: Progress) -> None:
        """Add the wall time since the last tick to ``state`` (it adds up over resumed runs)."""
        now = time.perf_counter()
        state.wall_seconds += now - self.segment_start
        self.segment_start = now


def train_adapter(
    loaded: Any,
    train: Sequence[TrainExample],
    validation: Sequence[TrainExample],
    out_dir: Path | str,
    settings: TrainSettings | None = None,
    seed: int = 42,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
    validation_parts: Sequence[str] | None = None,
) -> TrainOutcome:
    """Return the state trained on ``train`` (best validation epoch), written to ``out_dir``.

    ``validation_parts`` names each validation example's part (a mixture's cell): the
    validation loss is then also recorded per part, and the best epoch chosen on the overall.

    ``settings.method`` says what is trained and written: ``lora``, a PEFT adapter; ``full``,
    every weight, written as a whole model folder (safetensors). Resumes from
    ``<out_dir>.partial/`` when an identical run was interrupted; returns the existing folder
    when ``out_dir`` already holds this exact run. ``loaded.model`` is left as the base model
    afterwards (no LoRA layers, the base weights), ready for scoring or the next run.
    """
    settings = settings or TrainSettings()
    # The dtype that runs, not "auto", is what the run key and transferlab.json record.
    settings = settings.model_copy(update={"dtype": resolve_dtype(settings.dtype, loaded.device)})
    out_dir = Path(out_dir)
    provenance = dict(provenance or {})
    where = str(provenance.get("source") or "training data")
    plan = _plan(loaded, train, validation, settings, seed, where, validation_parts)
    existing = read_metadata(out_dir) if out_dir.is_dir() else None
    if existing and existing.get("fingerprint") == plan.run_key and is_complete(out_dir):
        log.info("%s already holds this run's adapter; not training again", out_dir)
        return TrainOutcome(out_dir, existing["adapter_hash"], existing)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(out_dir, "already exists and holds something else", "choose another --out")

    work = partial_dir(out_dir)
    trainee = start(settings.method, loaded, settings, plan.targets, seed)
    try:
        try:
            loss = ScoredLoss(trainee.causal_lm, settings.dtype, loaded.device)
        except TypeError as error:
            raise UserError(loaded.ref, str(error), "train a decoder-only causal LM") from None
        params = [p for p in trainee.model.parameters() if p.requires_grad]
        optimizer, scheduler = make_optimizer(params, settings, len(plan.train))
        checkpoints = _Checkpoints(work, plan.run_key, trainee, optimizer, scheduler)
        state, resumed_from = checkpoints.resume()
        described = _describe(loaded, plan, settings, seed, provenance, resumed_from)
        try:
            state = fit(
                trainee.model, loss, plan.train, plan.validation, settings, seed, plan.pad_id,
                optimizer, scheduler, state, checkpoints.save, show_progress=progress,
                validation_parts=validation_parts,
            )  # fmt: skip
        except NonFiniteLoss as error:
            checkpoints.tick(state)
            work.mkdir(parents=True, exist_ok=True)
            write_json(
                {
                    **described,
                    **_results(state),
                    "status": "failed",
                    "failure": str(error),
                    "last_good_epoch": state.epochs_done or None,
                },
                work / METADATA_FILE,
            )
            kept = (
                f"the checkpoint after epoch {state.epochs_done} is kept in {work}"
                if state.epochs_done
                else "no epoch finished"
            )
            raise RunError(f"{where}: {error}; stopped ({kept})") from None
        checkpoints.tick(state)
        metadata = {**described, **_results(state), "status": "complete"}
        digest = publish_adapter(trainee, checkpoints.best, work, out_dir, metadata)
    finally:
        trainee.release()
    log.info(
        "trained %s (%s, best epoch %s): %.1f s wall, %.3f s/step, peak RSS %.0f MB",
        out_dir, settings.method, state.best_epoch, metadata["wall_time_s"],
        metadata["s_per_step"], metadata["peak_rss_mb"],
    )  # fmt: skip
    return TrainOutcome(out_dir, digest, {**metadata, "adapter_hash": digest})


def _describe(
    loaded: Any,
    plan: _Plan,
    settings: TrainSettings,
    seed: int,
    provenance: dict[str, Any],
    resumed_from: int | None,
) -> dict[str, Any]:
    import torch

    return {
        "base_model": {
            "ref": loaded.ref,
            "path": str(loaded.path),
            "model_hash": loaded.model_hash,
            "model_type": getattr(loaded.model.config, "model_type", None),
        },
        "provenance": provenance,
        "seed": seed,
        "method": settings.method,
        "settings": settings.model_dump(mode="json"),
        "target_modules": plan.targets,
        "fingerprint": plan.run_key,
        "data": {
            "n_train": len(plan.train),
            "n_validation": len(plan.validation),
            "data_hash": plan.data_hash,
            "train_tokens_per_epoch": sum(len(e.input_ids) for e in plan.train),
            "train_loss_tokens_per_epoch": sum(e.n_loss_tokens for e in plan.train),
            "n_truncated": sum(e.truncated for e in (*plan.train, *plan.validation)),
        },
        "dtype": settings.dtype,
        "batch_size": settings.batch_size,
        "effective_batch_size": settings.effective_batch_size,
        "device": loaded.device,
        "torch_threads": torch.get_num_threads(),
        "resumed_from_epoch": resumed_from,
        "versions": library_versions(),
    }


def _results(state: Progress) -> dict[str, Any]:
    return {
        "history": {"steps": state.steps, "epochs": state.epochs},
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val_loss,
        "optimizer_steps": state.global_step,
        "epochs_done": state.epochs_done,
        "train_time_s": round(state.train_seconds, 3),
        "wall_time_s": round(state.wall_seconds, 3),
        "train_tokens": state.train_tokens,
        "tokens_per_s": round(state.train_tokens / max(state.train_seconds, 1e-9), 2),
        "s_per_step": round(state.train_seconds / max(state.global_step, 1), 4),
        # The process's peak resident memory so far (Linux reports KiB): what training needed.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
