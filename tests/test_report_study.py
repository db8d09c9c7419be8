"""A synthetic run directory for the report tests: per-item results drawn with known effects.

Scores are computed from the per-item correctness, exactly as a run computes them, so the
results table, the item file and the bootstrap agree. Importable by the report tests; holds
one check of its own (the files follow the documented run-directory schema).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from transferlab.grid import regime_of

EVIL_TASK = "<script>alert(1)</script>"
# Expected Δ (pp) of each regime: the trained cell gains most, other tasks in other languages lose.
EFFECTS = {"MT-ML": 30.0, "MT-CL": 12.0, "CT-ML": 4.0, "CT-CL": -6.0}
# Added off the trained cell: some languages give more than others, some receive more.
DONOR = {"en": 4.0, "de": 1.0, "hi": -2.0, "zh": -3.0}
RECIPIENT = {"en": 2.0, "de": 3.0, "hi": -1.0, "zh": -4.0}


def _hash(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def write_synthetic_run(
    run_dir: Path,
    models: tuple[tuple[str, str, float], ...] = (
        ("tiny-a", "gemma", 0.27),
        ("tiny-b", "smol", 0.135),
    ),
    tasks: tuple[str, ...] = ("arc", EVIL_TASK),
    languages: tuple[str, ...] = ("en", "de", "hi", "zh"),
    seeds: tuple[int, ...] = (17, 42),
    n_items: int = 60,
    drop_source: tuple[str, str, str] | None = None,
    failed_jobs: int = 0,
    random_seed: int = 0,
) -> Path:
    """Write results_per_seed.csv, items.csv.gz and run_info.json into `run_dir`; return it.

    `drop_source` = (model, task, language) leaves that adapter out entirely (a hole that the
    analysis accepts); `failed_jobs` records that many failed training jobs in run_info.json.
    """
    rng = np.random.default_rng(random_seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    cells = [(task, language) for task in tasks for language in languages]
    versions = json.dumps({"python": "3.11", "torch": "2.13.0", "transferlab": "0.1.0"})
    item_rows, result_rows = [], []
    for scale, (model, family, size) in enumerate(models, start=1):
        uniform = {cell: rng.random(n_items) for cell in cells}
        base = {}
        for target in cells:
            correct = uniform[target] < 0.35
            correct_norm = uniform[target] < 0.40
            base[target] = (correct, correct_norm)
            for doc in range(n_items):
                item_rows.append(
                    (
                        model,
                        "",
                        "",
                        "",
                        *target,
                        f"d{doc}",
                        int(correct[doc]),
                        int(correct_norm[doc]),
                    )
                )
        for source in cells:
            if drop_source == (model, *source):
                continue
            for seed in seeds:
                adapter = _hash(model, *source, seed)
                for target in cells:
                    regime = regime_of(*source, *target).value
                    shift = EFFECTS[regime]
                    if regime != "MT-ML":
                        shift += DONOR.get(source[1], 0.0) + RECIPIENT.get(target[1], 0.0)
                    shift = scale * shift / 100
                    noisy = np.clip(uniform[target] + rng.normal(0, 0.05, n_items), 0, 1)
                    correct = noisy < 0.35 + shift
                    correct_norm = noisy < 0.40 + shift
                    for doc in range(n_items):
                        item_rows.append(
                            (
                                model,
                                seed,
                                *source,
                                *target,
                                f"d{doc}",
                                int(correct[doc]),
                                int(correct_norm[doc]),
                            )
                        )
                    score, score_norm = correct.mean(), correct_norm.mean()
                    score_base, score_norm_base = base[target][0].mean(), base[target][1].mean()
                    result_rows.append(
                        {
                            "model_name": model,
                            "model_size": size,
                            "model_family": family,
                            "fine_tuned_dataset": source[0],
                            "fine_tuned_language": source[1],
                            "eval_dataset": target[0],
                            "eval_language": target[1],
                            "regime": regime,
                            "seed": seed,
                            "score": score,
                            "score_base": score_base,
                            "score_norm": score_norm,
                            "score_norm_base": score_norm_base,
                            "delta_score": 100 * (score - score_base),
                            "delta_score_norm": 100 * (score_norm - score_norm_base),
                            "n_items": n_items,
                            "headline_metric": "acc_norm",
                            "model_hash": _hash(model),
                            "adapter_hash": adapter,
                            "task_hash": _hash(*target),
                            "dtype": "float32",
                            "batch_size": 16,
                            "versions": versions,
                        }
                    )
    pd.DataFrame(result_rows).to_csv(run_dir / "results_per_seed.csv", index=False)
    items = pd.DataFrame(
        item_rows,
        columns=[
            "model_name", "seed", "fine_tuned_dataset", "fine_tuned_language",
            "eval_dataset", "eval_language", "doc_id", "correct", "correct_norm",
        ],
    )  # fmt: skip
    items.to_csv(run_dir / "items.csv.gz", index=False)
    failed = [
        {"key": _hash("failed", k), "kind": "train", "error": f"NaN loss <b>{k}</b>"}
        for k in range(failed_jobs)
    ]
    run_info = {
        "study": "synthetic & <i>study</i>",
        "config": {
            "training": {"r": 32, "alpha": 64, "epochs": 3, "lr": 5e-5, "batch_size": 8},
            "evaluation": {"items_per_target": n_items, "batch_size": 16, "dtype": "float32"},
        },
        "models": [
            {"name": m, "ref": f"preset:{m}", "model_hash": _hash(m), "size_b": s, "family": f}
            for m, f, s in models
        ],
        "tasks": [{"name": t, "language": lang, "task_hash": _hash(t, lang)} for t, lang in cells],
        "languages": list(languages),
        "seeds": list(seeds),
        "versions": json.loads(versions),
        "started_at": "2026-03-01T10:00:00+00:00",
        "finished_at": "2026-03-01T10:12:30+00:00",
        "wall_time_s": 750.0,
        "executor": "local",
        "timings": {"prepare_s": 2.5, "train_s": 500.0, "evaluate_s": 240.0, "analysis_s": 7.5},
        "job_time_s": {"evaluate": 3900.0, "train": 5400.0},
        "jobs": {"done": 42, "pending": 0, "failed": failed},
    }
    (run_dir / "run_info.json").write_text(json.dumps(run_info, indent=2), encoding="utf-8")
    return run_dir


def test_synthetic_run_follows_the_run_directory_schema(tmp_path):
    run = write_synthetic_run(tmp_path / "run", seeds=(17,), n_items=20)
    rows = pd.read_csv(run / "results_per_seed.csv")
    assert len(rows) == 2 * 8 * 8
    assert set(rows["regime"]) == set(EFFECTS)
    items = pd.read_csv(run / "items.csv.gz")
    base = items[items["seed"].isna()]
    assert len(base) == 2 * 8 * 20
    # a score is the mean of its items
    row = rows.iloc[0]
    mine = items[
        (items["model_name"] == row["model_name"])
        & (items["seed"] == row["seed"])
        & (items["fine_tuned_dataset"] == row["fine_tuned_dataset"])
        & (items["fine_tuned_language"] == row["fine_tuned_language"])
        & (items["eval_dataset"] == row["eval_dataset"])
        & (items["eval_language"] == row["eval_language"])
    ]
    assert mine["correct_norm"].mean() == row["score_norm"]
