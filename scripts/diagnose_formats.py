"""How the scored format and the trained format of the bundled tasks interact, measured.

    .venv/bin/python scripts/diagnose_formats.py base --model gemma-3-270m --out diag/base.csv
    .venv/bin/python scripts/diagnose_formats.py train --model gemma-3-270m \\
        --cell country_continent:de --lr 1e-4,1e-3 --n 64,256 --out diag/train.csv

``base`` scores the untrained model on the same test items in both evaluation formats (cloze:
each option's text after the prompt; letters: the options listed A–D and the letter scored)
and writes acc, acc_norm and the chance level per cell. ``train`` fine-tunes one LoRA per
(training format, learning rate, training items) on a cell and scores that cell, before and
after, in both evaluation formats. Training formats: ``letters`` (the reference study's: the
options listed, loss on the letter) and ``continuation`` (the cloze prompt, loss on the gold
option's text: exactly what cloze evaluation scores). One torch thread unless --threads.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from transferlab.grid import Cell
from transferlab.models import load_model
from transferlab.scoring import ModelState, score
from transferlab.tasks import get_task, parse_task_ref
from transferlab.training import make_settings, train_adapter

EVAL_FORMATS = ("cloze", "letters")
TRAIN_FORMATS = ("letters", "continuation")


def variant(task, answer_format: str | None = None, train_format: str | None = None):
    """Return the task with another evaluation or training format (same items and prompts)."""
    renderer = task.renderer
    changes = {}
    if answer_format:
        changes["answer_format"] = answer_format
    if train_format:
        changes["train_format"] = train_format
    spec = dataclasses.replace(task, renderer=dataclasses.replace(renderer, **changes), **changes)
    spec._prepared = task._prepare()
    return spec


def scores(loaded, states, task, language: str, n_test: int) -> dict[tuple[str, str], dict]:
    """Return (state, format) → {acc, acc_norm, n} on the first n_test test items."""
    out = {}
    for fmt in EVAL_FORMATS:
        items = variant(task, answer_format=fmt).items(language, "test")[:n_test]
        results = score(loaded, states, {Cell(task.name, language): items}, progress=False)
        for state in states:
            rows = [r for r in results if r.model_state == state.name]
            out[state.name, fmt] = {
                "acc": sum(r.acc for r in rows) / len(rows),
                "acc_norm": sum(r.acc_norm for r in rows) / len(rows),
                "n": len(rows),
            }
    return out


def base_command(args, emit) -> None:
    loaded = load_model(args.model, dtype=args.dtype)
    for ref in args.tasks.split(","):
        task = get_task(ref)
        for language in args.languages.split(","):
            if language not in task.languages:
                continue
            start = time.perf_counter()
            got = scores(loaded, [ModelState("base")], task, language, args.n_test)
            seconds = time.perf_counter() - start
            for (_, fmt), value in got.items():
                emit(
                    {"model": args.model, "task": task.name, "language": language,
                     "eval_format": fmt, **value, "chance": 0.25,
                     "items_per_s": round(2 * value["n"] / seconds, 1)}
                )  # fmt: skip


def train_command(args, emit) -> None:
    loaded = load_model(args.model, dtype="float32")
    name, language = parse_task_ref(args.cell)
    task = get_task(name)
    base = scores(loaded, [ModelState("base")], task, language, args.n_test)
    for train_format in args.train_formats.split(","):
        spec = variant(task, train_format=train_format)
        validation = spec.train_examples(language, "validation")[: args.validation]
        for n in [int(x) for x in args.n.split(",")]:
            train = spec.train_examples(language, "train")[:n]
            for lr in [float(x) for x in args.lr.split(",")]:
                settings = make_settings(
                    {"learning_rate": lr, "epochs": args.epochs, "lora_r": args.lora_r,
                     "lora_alpha": 2 * args.lora_r, "dtype": args.dtype}
                )  # fmt: skip
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.perf_counter()
                    outcome = train_adapter(
                        loaded, train, validation, Path(tmp) / "a", settings, args.seed,
                        progress=False,
                    )  # fmt: skip
                    train_s = time.perf_counter() - start
                    state = ModelState("tuned", outcome.adapter_dir)
                    after = scores(loaded, [state], task, language, args.n_test)
                meta = outcome.metadata
                for fmt in EVAL_FORMATS:
                    before, tuned = base["base", fmt], after["tuned", fmt]
                    emit(
                        {"model": args.model, "cell": args.cell, "train_format": train_format,
                         "train_items": len(train), "epochs": args.epochs, "lr": lr,
                         "eval_format": fmt, "base_acc": before["acc"],
                         "tuned_acc": tuned["acc"],
                         "delta_pp": round(100 * (tuned["acc"] - before["acc"]), 2),
                         "n": tuned["n"], "best_epoch": meta["best_epoch"],
                         "best_val_loss": round(meta["best_val_loss"], 4),
                         "steps": meta["optimizer_steps"], "train_s": round(train_s, 1)}
                    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("base", "train"):
        p = sub.add_parser(name)
        p.add_argument("--model", default="gemma-3-270m")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--n-test", type=int, default=100)
        p.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
        p.add_argument("--threads", type=int, default=1)
    sub.choices["base"].add_argument(
        "--tasks",
        default="country_continent,country_currency,month_arithmetic,number_arithmetic,number_words",
    )
    sub.choices["base"].add_argument("--languages", default="en,de,zh,ar")
    train = sub.choices["train"]
    train.add_argument("--cell", required=True)
    train.add_argument("--train-formats", default=",".join(TRAIN_FORMATS))
    train.add_argument("--lr", default="1e-4,1e-3")
    train.add_argument("--n", default="64,256")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--lora-r", type=int, default=8)
    train.add_argument("--validation", type=int, default=24)
    train.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def emit(row: dict) -> None:
        """Append one row to the CSV at once (a stopped run keeps what it measured)."""
        new = not args.out.exists()
        with args.out.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(row, flush=True)

    (base_command if args.command == "base" else train_command)(args, emit)
    print(f"appended to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
