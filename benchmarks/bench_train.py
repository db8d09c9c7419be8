"""Training speed: transferlab's trainer against the reference setup, same run, same steps.

(a) reference: transformers ``Trainer`` + PEFT with the PROTOCOL.md settings (LoRA r 32 / alpha 64
    on all projections, AdamW lr 5e-5, linear decay with 10 % warmup, batch 8, bf16 autocast),
    every example padded to 256 tokens, loss masked to the answer (full-vocabulary logits);
(b) ``transferlab.training.train_adapter`` with the same hyperparameters: dynamic padding,
    length-grouped batches, LM head only at the answer positions.

Both train the same tokens for the same number of optimizer steps from the same LoRA
initialisation; both are then scored on the same validation split. Prints seconds, steps/s,
real (non-padding) tokens/s, the speed ratio and both validation losses.

    .venv/bin/python benchmarks/bench_train.py [--steps 40] [--items 300] [--threads 1]

The default is one epoch of month_arithmetic:en (40 steps; the reference side takes about 15
minutes on one core). On a CPU shared with other busy processes pass ``--threads 1``: two torch
threads then mostly wait for each other, which swamps the comparison on both sides.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from transferlab.hardware import describe_cpu_line, resolve_dtype


def _load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--task", default="month_arithmetic")
    parser.add_argument("--language", default="en")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps for each trainer")
    parser.add_argument("--items", type=int, default=None, help="use only this many train items")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    args = parser.parse_args()

    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from transferlab.models import load_model
    from transferlab.tasks import get_task
    from transferlab.training import TrainSettings, train_adapter
    from transferlab.training.data import encode_examples
    from transferlab.training.loop import ScoredLoss, evaluate

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = get_task(args.task)
    train = task.train_examples(args.language, "train")[: args.items]
    validation = task.train_examples(args.language, "validation")
    settings = TrainSettings(
        max_steps=args.steps, max_length=args.max_length, logging_steps=5,
        dtype=resolve_dtype(args.dtype),  # the same autocast for both sides
    )  # fmt: skip
    print(
        f"model {args.model}, source {args.task}:{args.language} ({len(train)} train, "
        f"{len(validation)} validation items), {args.steps} optimizer steps, batch "
        f"{settings.batch_size}, dtype {settings.dtype}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(describe_cpu_line())
    print(f"load average before: {_load_avg()}")

    # --- (a) the reference setup --------------------------------------------------------------
    loaded = load_model(args.model)
    tokenizer, pad_id = loaded.tokenizer, loaded.tokenizer.pad_token_id
    train_enc = encode_examples(tokenizer, train, args.max_length)
    val_enc = encode_examples(tokenizer, validation, args.max_length)

    def padded(encoded):
        rows = []
        for e in encoded:
            n, width = len(e.input_ids), args.max_length
            ids = list(e.input_ids) + [pad_id] * (width - n)
            labels = [-100] * e.loss_start + list(e.input_ids[e.loss_start :])
            labels += [-100] * (width - n)
            rows.append(
                {
                    "input_ids": torch.tensor(ids),
                    "attention_mask": torch.tensor([1] * n + [0] * (width - n)),
                    "labels": torch.tensor(labels),
                }
            )
        return rows

    torch.manual_seed(args.seed)  # the same LoRA initialisation as (b)
    model = get_peft_model(
        loaded.model,
        LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=list(settings.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(work / "reference"),
            per_device_train_batch_size=settings.batch_size,
            per_device_eval_batch_size=settings.eval_batch_size,
            gradient_accumulation_steps=settings.grad_accumulation,
            learning_rate=settings.learning_rate,
            lr_scheduler_type="linear",
            warmup_steps=settings.warmup_ratio,  # < 1: a ratio of the total steps
            max_steps=args.steps,
            bf16=settings.dtype == "bfloat16",
            use_cpu=not torch.cuda.is_available(),
            save_strategy="no",
            eval_strategy="no",
            logging_steps=5,
            report_to=[],
            seed=args.seed,
            remove_unused_columns=False,
            disable_tqdm=True,
        ),
        train_dataset=padded(train_enc),
    )
    began = time.perf_counter()
    trainer.train()
    seconds_a = time.perf_counter() - began
    val_a = trainer.evaluate(eval_dataset=padded(val_enc))["eval_loss"]
    val_a_ours = evaluate(
        ScoredLoss(model.get_base_model(), settings.dtype, loaded.device),
        model,
        val_enc,
        settings.eval_batch_size,
        pad_id,
    )
    model.base_model.unload()
    del trainer, model, loaded

    # --- (b) transferlab ----------------------------------------------------------------------
    loaded = load_model(args.model)
    began = time.perf_counter()
    outcome = train_adapter(
        loaded, train, validation, work / "ours", settings, args.seed, {"source": "bench"}
    )
    seconds_b = time.perf_counter() - began
    meta = outcome.metadata
    val_b = meta["history"]["epochs"][-1]["val_loss"]
    shutil.rmtree(work, ignore_errors=True)

    # Real tokens seen: (b) counts them; (a) saw the same number of examples per step.
    mean_tokens = sum(len(e.input_ids) for e in train_enc) / len(train_enc)
    real_tokens = args.steps * settings.effective_batch_size * mean_tokens
    print(f"load average after:  {_load_avg()}")
    curve = ", ".join(f"{s['step']}: {s['loss']:.3f}" for s in meta["history"]["steps"])
    print(f"(b) training loss by step (mean since the last entry): {curve}")
    print()
    print(f"{'':34}{'seconds':>9}{'steps/s':>9}{'tokens/s':>10}{'val loss':>10}")
    rows = [
        ("(a) Trainer, padded to 256", seconds_a, val_a),
        ("(b) transferlab, whole call", seconds_b, val_b),
        ("(b) transferlab, training steps", meta["train_time_s"], val_b),
    ]
    for name, seconds, val in rows:
        print(
            f"{name:34}{seconds:9.1f}{args.steps / seconds:9.3f}"
            f"{real_tokens / seconds:10.0f}{val:10.4f}"
        )
    print()
    print(
        f"speed-up (a)/(b), whole call incl. tokenising, evaluation, saving: {seconds_a / seconds_b:.2f}x"
    )
    print(f"speed-up (a)/(b), training steps only: {seconds_a / meta['train_time_s']:.2f}x")
    print(
        f"validation loss (b) vs (a): {100 * (val_b - val_a) / val_a:+.2f} % "
        f"((a) by our evaluator: {val_a_ours:.4f})"
    )


if __name__ == "__main__":
    main()
