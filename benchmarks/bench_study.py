"""The demo study end to end: where the wall time goes, and what the reference pipeline would pay.

Runs a study (default configs/demo.yaml) into a fresh directory and reports its wall time split
into model preparation, training, evaluation and analysis (+ report). Then, on the same grid,
the same items and the adapters this run trained, it times the reference pipeline's evaluation:
lm-evaluation-harness in a fresh process per model state (bench_eval's machinery), and prints
the ratio to transferlab's evaluation share. Last, it reruns the finished study: nothing is left
to do, so that should take seconds.

    .venv/bin/python benchmarks/bench_study.py                       # the demo, as `make demo`
    .venv/bin/python benchmarks/bench_study.py --set evaluation.items_per_target=20
    .venv/bin/python benchmarks/bench_study.py --fresh-model         # include GGUF conversion
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_eval import export_lm_eval_tasks, run_lm_eval  # noqa: E402

from transferlab.hardware import describe_cpu_line  # noqa: E402

ROOT = Path(__file__).parent.parent


def prepare_models(study, fresh: bool) -> float:
    """Resolve (and with ``fresh`` convert again) every model of the study; return seconds."""
    from transferlab.models import resolve_model

    if fresh:  # a private cache: the packaged GGUF is converted as on a fresh install
        os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="bench-study-home-")
    started = time.perf_counter()
    for spec in study.models:
        resolve_model(spec.ref)
    return time.perf_counter() - started


def reference_evaluation(study, out: Path, work: Path) -> tuple[float, float, int]:
    """Time lm-eval once per model state (base, then each adapter): (wall, CPU, states)."""
    from transferlab.models import resolve_model
    from transferlab.store import Store

    evaluation = study.evaluation
    n_items = evaluation.items_per_target or 10**9
    targets = [f"{cell.task}:{cell.language}" for cell in study.cells]
    task_dir = work / "lm-eval-tasks"
    task_dir.mkdir(parents=True, exist_ok=True)
    names = export_lm_eval_tasks(targets, n_items, task_dir)
    store = Store(out)
    try:
        adapters = [folder for folder, _, _ in store.adapters().values()]
    finally:
        store.close()
    wall, cpu = 0.0, 0.0
    for spec in study.models:
        model_dir = resolve_model(spec.ref)
        for k, adapter in enumerate([None, *adapters]):
            seconds, cpu_seconds = run_lm_eval(
                model_dir,
                adapter,
                list(names),
                task_dir,
                work / "lm-eval" / f"state-{k}",
                evaluation.dtype,
                evaluation.batch_size,
            )
            name = "base" if adapter is None else adapter.name
            print(f"  lm-eval {name}: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU")
            wall, cpu = wall + seconds, cpu + cpu_seconds
    return wall, cpu, 1 + len(adapters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, default=ROOT / "configs" / "demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument(
        "--out", type=Path, default=None, help="a new run directory (default: temp)"
    )
    parser.add_argument("--fresh-model", action="store_true", help="time the GGUF conversion too")
    parser.add_argument("--skip-reference", action="store_true", help="no lm-eval comparison")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    from transferlab.config import load_study
    from transferlab.runner import run_study

    work = Path(tempfile.mkdtemp(prefix="bench-study-"))
    out = args.out or work / "run"
    if out.exists():  # a finished run would be timed as a rerun
        sys.exit(f"{out} exists; give a new --out")
    study = load_study(args.study, args.overrides)
    print(
        f"study {study.name}: {len(study.models)} model(s) × {len(study.cells)} cells, "
        f"{len(study.source_list)} sources × {len(study.seeds)} seed(s), "
        f"{study.evaluation.items_per_target or 'all'} items per target"
    )
    print(f"dtype: training {study.training.dtype}, evaluation {study.evaluation.dtype}")
    print(describe_cpu_line())
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average)")

    prepare_s = prepare_models(study, args.fresh_model)
    started = time.perf_counter()
    outcome = run_study(args.study, out_dir=out, overrides=args.overrides, progress=False)
    wall = time.perf_counter() - started
    if outcome.failed:
        sys.exit(f"{outcome.failed} job(s) failed:\n{outcome.summary}")
    timings = json.loads((out / "run_info.json").read_text())["timings"]
    print(f"load after the run: {os.getloadavg()[0]:.2f}")
    print("\nwall time of the study")
    rows = [
        ("model preparation", prepare_s + timings["prepare_s"]),
        ("training", timings["train_s"]),
        ("evaluation", timings["evaluate_s"]),
        ("analysis + report", timings["analysis_s"]),
    ]
    accounted = sum(seconds for _, seconds in rows)
    rows.append(("other (planning, store, exports)", max(prepare_s + wall - accounted, 0.0)))
    for label, seconds in rows:
        print(f"  {label:<34} {seconds:8.1f} s  {100 * seconds / (prepare_s + wall):5.1f}%")
    print(f"  {'total':<34} {prepare_s + wall:8.1f} s")
    print(
        f"  CPU time of the jobs: training {timings['train_cpu_s']:.1f} s, "
        f"evaluation {timings['evaluate_cpu_s']:.1f} s"
    )

    if not args.skip_reference:
        print("\nreference evaluation: lm-eval in a fresh process per model state, same grid")
        reference_s, reference_cpu, n_states = reference_evaluation(study, out, work)
        ours_s, ours_cpu = timings["evaluate_s"], timings["evaluate_cpu_s"]
        print(
            f"  lm-eval, {n_states} processes: {reference_s:.1f} s wall, {reference_cpu:.1f} s CPU"
        )
        print(f"  transferlab evaluation jobs: {ours_s:.1f} s wall, {ours_cpu:.1f} s CPU")
        print(
            f"  evaluation speed-up: {reference_s / ours_s:.1f}× wall, "
            f"{reference_cpu / ours_cpu:.1f}× CPU"
        )
        print(f"load after lm-eval: {os.getloadavg()[0]:.2f}")

    started = time.perf_counter()
    again = run_study(args.study, out_dir=out, overrides=args.overrides, progress=False)
    rerun = time.perf_counter() - started
    print(f"\nrerun of the finished study: {rerun:.1f} s ({again.summary.splitlines()[0]})")


if __name__ == "__main__":
    main()
