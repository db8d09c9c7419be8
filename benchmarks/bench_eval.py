"""Evaluation speed: lm-evaluation-harness once per model state vs `transferlab evaluate` once.

The reference pipeline ran lm-eval in a fresh process per adapter. Here both run side by side in
the same session on the same items: the Gemma-3-270M preset, the base model plus K fresh LoRA
adapters (r=32 on all projections, small random weights so each differs from the base), T target
cells of the bundled suite. lm-eval gets each adapter with ``peft=`` (cheaper than the reference
pipeline's merge-and-save, so the comparison favours lm-eval). The script checks that both pick
the same choice per item (acc and acc_norm) and prints both wall times and their ratio.

    .venv/bin/python benchmarks/bench_eval.py                      # K=4, T=4, 50 items
    .venv/bin/python benchmarks/bench_eval.py --items 10 --adapters 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from transferlab.hardware import describe_cpu_line, resolve_dtype

BIN = Path(sys.executable).parent
DEFAULT_TARGETS = [
    "country_continent:hi",
    "number_words:de",
    "month_arithmetic:zh",
    "country_currency:ar",
]
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_adapters(model_dir: Path, out: Path, count: int, rank: int) -> list[Path]:
    """Write ``count`` LoRA adapters with small random weights (each changes the model a little)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=PROJECTIONS, lora_dropout=0.0)
    peft_model = get_peft_model(model, config)
    folders = []
    for k in range(count):
        torch.manual_seed(100 + k)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.01)
        folder = out / f"adapter-{k}"
        peft_model.save_pretrained(folder)
        folders.append(folder)
    return folders


def export_lm_eval_tasks(targets: list[str], n_items: int, out: Path) -> dict[str, str]:
    """Write each target's first ``n_items`` test items as an lm-eval task; return name → target."""
    from transferlab.tasks import get_task, parse_task_ref

    names = {}
    for target in targets:
        spec = get_task(target)
        _task, language = parse_task_ref(target)
        items = spec.items(language, "test")[:n_items]
        name = f"bench_{spec.name}_{language}"
        rows = [
            {"id": i.doc_id, "context": i.context, "choices": list(i.choices), "gold": i.gold}
            for i in items
        ]
        delimiters = {item.target_delimiter for item in items}
        assert len(delimiters) == 1, f"{target}: mixed target delimiters"
        fields = {
            "output_type": "multiple_choice",
            "doc_to_text": "{{context}}",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "gold",
            "target_delimiter": delimiters.pop(),
            "metric_list": [
                {"metric": m, "aggregation": "mean", "higher_is_better": True}
                for m in ("acc", "acc_norm")
            ],
        }
        write_lm_eval_task(out, name, rows, fields)
        names[name] = target
    return names


def write_lm_eval_task(out: Path, name: str, rows: list[dict], fields: dict) -> None:
    """Write ``rows`` as ``name``'s local JSONL test split and its lm-eval YAML with ``fields``."""
    import yaml

    data = out / f"{name}.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    task = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        **fields,
    }
    (out / f"{name}.yaml").write_text(yaml.safe_dump(task, allow_unicode=True), "utf-8")


def timed(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, CPU seconds of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run_lm_eval(model_dir, adapter, tasks, task_dir, out, dtype, batch_size) -> tuple[float, float]:
    """Run lm-eval in a fresh process for one model state; return its (wall, CPU) seconds."""
    args = f"pretrained={model_dir},dtype={dtype}" + (f",peft={adapter}" if adapter else "")
    command = [str(BIN / "lm-eval"), "run", "--model", "hf", "--model_args", args]
    command += ["--tasks", ",".join(tasks), "--include_path", str(task_dir)]
    command += ["--batch_size", str(batch_size), "--device", "cpu", "--log_samples"]
    command += ["--output_path", str(out)]
    return timed(command)


def lm_eval_picks(out: Path, names: dict[str, str]) -> dict[tuple[str, str], tuple]:
    """Return (target, doc id) → (log-likelihoods, pick, normalised pick) from lm-eval's samples."""
    picks = {}
    for name, target in names.items():
        for file in out.rglob(f"samples_{name}_*.jsonl"):
            for line in file.open(encoding="utf-8"):
                sample = json.loads(line)
                lls = np.array([float(r[0]) for r in sample["filtered_resps"]])
                lengths = [len(c) for c in sample["doc"]["choices"]]
                key = (target, str(sample["doc"]["id"]))
                picks[key] = (lls, int(np.argmax(lls)), int(np.argmax(lls / lengths)))
    return picks


def transferlab_picks(items_file: Path, state: str, choices: dict) -> dict[tuple[str, str], tuple]:
    """The same mapping from transferlab's items.jsonl for one model state."""
    picks = {}
    for line in items_file.open(encoding="utf-8"):
        row = json.loads(line)
        if row["model_state"] != state:
            continue
        key = (f"{row['task']}:{row['language']}", row["doc_id"])
        lls = np.array(row["loglikelihoods"])
        lengths = [len(c) for c in choices[key]]
        picks[key] = (lls, int(np.argmax(lls)), int(np.argmax(lls / lengths)))
    return picks


def parse_arguments(description: str, targets: list[str], items: int, dtype: str):
    """Parse the options both lm-eval comparisons take (model, adapters, items, dtype, ...)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--adapters", type=int, default=4, help="K fresh LoRA adapters")
    parser.add_argument("--items", type=int, default=items, help="items per target")
    parser.add_argument("--targets", nargs="+", default=targets)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--dtype", default=dtype, choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for both sides (default: torch's choice; 1 helps on a busy machine)",
    )
    args = parser.parse_args()
    args.dtype = resolve_dtype(args.dtype)  # lm-eval is given the same explicit dtype
    return args


def prepare(args, prefix: str) -> tuple[Path, Path, list[Path], Path]:
    """Return the work folder, the model folder, K fresh adapters and the lm-eval task folder."""
    from transferlab.models import resolve_model

    work = args.workdir or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = resolve_model(args.model)
    adapters = make_adapters(model_dir, work / "adapters", args.adapters, args.rank)
    task_dir = work / "lm-eval-tasks"
    task_dir.mkdir(exist_ok=True)
    return work, model_dir, adapters, task_dir


def time_transferlab(model_dir: Path, adapters: list[Path], args, out: Path) -> tuple[float, float]:
    """Run one `transferlab evaluate` over the base model and every adapter; return its times."""
    command = [str(BIN / "transferlab"), "evaluate", "--model", str(model_dir)]
    for adapter in adapters:
        command += ["--adapter", str(adapter)]
    for target in args.targets:
        command += ["--task", target]
    command += ["--limit", str(args.items), "--out", str(out)]
    command += ["--dtype", args.dtype, "--batch-size", str(args.batch_size)]
    wall, cpu = timed(command)
    print(f"  transferlab, all states in one process: {wall:.1f} s wall, {cpu:.1f} s CPU")
    return wall, cpu


def main() -> None:
    args = parse_arguments(__doc__.split("\n\n")[0], DEFAULT_TARGETS, 50, "auto")

    from transferlab.tasks import get_task, parse_task_ref

    work, model_dir, adapters, task_dir = prepare(args, "bench-eval-")
    names = export_lm_eval_tasks(args.targets, args.items, task_dir)
    choices = {}
    for target in args.targets:
        _task, language = parse_task_ref(target)
        for item in get_task(target).items(language, "test")[: args.items]:
            choices[(target, item.doc_id)] = item.choices
    states = [("base", None)] + [(a.name, a) for a in adapters]
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # both subprocesses inherit it
    print(f"model {args.model} ({model_dir}), {len(states)} model states × "
          f"{len(args.targets)} targets × {args.items} items, dtype {args.dtype}, "
          f"batch size {args.batch_size}, threads {args.threads or 'default'}")  # fmt: skip
    print(describe_cpu_line())
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average)")

    lm_eval_wall = lm_eval_cpu = 0.0
    for state, adapter in states:
        wall, cpu = run_lm_eval(
            model_dir, adapter, list(names), task_dir, work / "lm-eval" / state,
            args.dtype, args.batch_size,
        )  # fmt: skip
        lm_eval_wall, lm_eval_cpu = lm_eval_wall + wall, lm_eval_cpu + cpu
        print(f"  lm-eval {state}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)

    ours_wall, ours_cpu = time_transferlab(model_dir, adapters, args, work / "transferlab")

    n_items, agree, agree_norm, gap = 0, 0, 0, 0.0
    for state, _adapter in states:
        theirs = lm_eval_picks(work / "lm-eval" / state, names)
        ours = transferlab_picks(work / "transferlab" / "items.jsonl", state, choices)
        assert theirs.keys() == ours.keys(), f"{state}: different items scored"
        for key, (lls, pick, pick_norm) in ours.items():
            their_lls, their_pick, their_pick_norm = theirs[key]
            n_items += 1
            agree += pick == their_pick
            agree_norm += pick_norm == their_pick_norm
            gap = max(gap, float(np.abs(lls - their_lls).max()))
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(f"per-item choices identical: acc {agree}/{n_items}, acc_norm {agree_norm}/{n_items}; "
          f"max |Δ loglikelihood| {gap:.2e}")  # fmt: skip
    print(f"lm-eval, one process per state: {lm_eval_wall:.1f} s wall, {lm_eval_cpu:.1f} s CPU")
    print(f"transferlab evaluate, one process: {ours_wall:.1f} s wall, {ours_cpu:.1f} s CPU")
    print(
        f"speed-up: {lm_eval_wall / ours_wall:.1f}× wall time, {lm_eval_cpu / ours_cpu:.1f}× CPU time"
    )
    # In bf16 both sides round differently, so a near tie may flip; fp32 must agree exactly.
    if args.dtype == "float32" and (agree != n_items or agree_norm != n_items):
        sys.exit("choices differ between lm-eval and transferlab")


if __name__ == "__main__":
    main()
