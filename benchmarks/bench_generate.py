"""Generation speed: lm-evaluation-harness once per model state vs `transferlab evaluate` once.

Both generate greedily on the same items of the bundled generative suite: the Gemma-3-270M
preset, the base model plus K fresh LoRA adapters (small random weights, as in bench_eval.py),
T target cells. lm-eval runs in a fresh process per model state with ``peft=`` for an adapter,
as a user would; transferlab scores every state in one process. Each target is exported as an
lm-eval ``generate_until`` task with the same context, stop strings and token budget. The script
prints both wall times, their ratio and how many raw generations are identical.

    .venv/bin/python benchmarks/bench_generate.py                      # K=4, T=4, 30 items
    .venv/bin/python benchmarks/bench_generate.py --items 5 --adapters 1
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_eval import (  # noqa: E402
    parse_arguments,
    prepare,
    run_lm_eval,
    time_transferlab,
    write_lm_eval_task,
)

from transferlab.hardware import describe_cpu_line  # noqa: E402

DEFAULT_TARGETS = [
    "math_word_problems:hi",
    "country_summary:de",
    "constrained_writing:zh",
    "math_word_problems:ar",
]


def export_lm_eval_tasks(targets: list[str], n_items: int, out: Path) -> dict[str, str]:
    """Write each target's first ``n_items`` test items as an lm-eval ``generate_until`` task."""
    from transferlab.tasks import get_task, parse_task_ref

    names = {}
    for target in targets:
        spec = get_task(target)
        _task, language = parse_task_ref(target)
        items = spec.items(language, "test")[:n_items]
        name = f"bench_gen_{spec.name}_{language}"
        rows = [
            {"id": i.doc_id, "context": i.context, "target": str(i.references[0])} for i in items
        ]
        settings = spec.generation
        fields = {
            "output_type": "generate_until",
            "doc_to_text": "{{context}}",
            "doc_to_target": "target",
            "target_delimiter": "",
            "generation_kwargs": {
                "until": list(settings.until),
                "do_sample": False,
                "max_gen_toks": settings.max_new_tokens,
            },  # fmt: skip
            "metric_list": [
                {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}
            ],  # fmt: skip
        }
        write_lm_eval_task(out, name, rows, fields)
        names[name] = target
    return names


def lm_eval_texts(out: Path, names: dict[str, str]) -> dict[tuple[str, str], str]:
    """Return (target, doc id) → lm-eval's raw generation from its samples."""
    texts = {}
    for name, target in names.items():
        for file in out.rglob(f"samples_{name}_*.jsonl"):
            for line in file.open(encoding="utf-8"):
                sample = json.loads(line)
                texts[(target, str(sample["doc"]["id"]))] = sample["resps"][0][0]
    return texts


def transferlab_texts(items_file: Path, state: str) -> dict[tuple[str, str], str]:
    """The same mapping from transferlab's items.jsonl for one model state."""
    texts = {}
    for line in items_file.open(encoding="utf-8"):
        row = json.loads(line)
        if row["model_state"] == state:
            texts[(f"{row['task']}:{row['language']}", row["doc_id"])] = row["generation"]
    return texts


def main() -> None:
    args = parse_arguments(__doc__.split("\n\n")[0], DEFAULT_TARGETS, 30, "float32")

    work, model_dir, adapters, task_dir = prepare(args, "bench-generate-")
    names = export_lm_eval_tasks(args.targets, args.items, task_dir)
    states = [("base", None)] + [(a.name, a) for a in adapters]
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    print(f"model {args.model} ({model_dir}), {len(states)} model states × "
          f"{len(args.targets)} targets × {args.items} items, dtype {args.dtype}, "
          f"batch size {args.batch_size}, threads {args.threads or 'default'}")  # fmt: skip
    print(describe_cpu_line())
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average)")

    lm_eval_wall = lm_eval_cpu = 0.0
    for state, adapter in states:
        wall, cpu = run_lm_eval(model_dir, adapter, list(names), task_dir,
                                work / "lm-eval" / state, args.dtype, args.batch_size)  # fmt: skip
        lm_eval_wall, lm_eval_cpu = lm_eval_wall + wall, lm_eval_cpu + cpu
        print(f"  lm-eval {state}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)

    ours_wall, ours_cpu = time_transferlab(model_dir, adapters, args, work / "transferlab")

    n, same = 0, 0
    for state, _adapter in states:
        theirs = lm_eval_texts(work / "lm-eval" / state, names)
        ours = transferlab_texts(work / "transferlab" / "items.jsonl", state)
        assert theirs.keys() == ours.keys(), f"{state}: different items generated"
        n += len(ours)
        same += sum(ours[key] == theirs[key] for key in ours)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(f"identical generations: {same}/{n}")
    print(f"lm-eval, one process per state: {lm_eval_wall:.1f} s wall, {lm_eval_cpu:.1f} s CPU")
    print(f"transferlab evaluate, one process: {ours_wall:.1f} s wall, {ours_cpu:.1f} s CPU")
    print(f"speed-up: {lm_eval_wall / ours_wall:.1f}× wall, {lm_eval_cpu / ours_cpu:.1f}× CPU")
    if args.dtype == "float32" and same != n:  # bf16 rounds differently on each side
        sys.exit("generations differ between lm-eval and transferlab")


if __name__ == "__main__":
    main()
