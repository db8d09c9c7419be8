"""Results tables for the analysis tests: the paper's full grid shape and per-seed exports."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from transferlab.analysis.schema import PAPER_COLUMNS
from transferlab.grid import regime_of
from transferlab.prediction.synthetic import PAPER_LANGUAGES, PAPER_MODELS, PAPER_TASKS


# The reference grid's names come from the prediction generator; this grid is simpler (model,
# source and target effects, optionally shared across models) for the analysis tests.
def paper_grid(
    models=PAPER_MODELS,
    tasks=PAPER_TASKS,
    languages=PAPER_LANGUAGES,
    seed: int = 0,
    shared: float = 0.0,
) -> pd.DataFrame:
    """Return a synthetic `transfer_results.csv` with model, source and target effects.

    Each model has its own effects; `shared` scales target-cell effects common to all models
    (SD `shared`) and to the models of a family (SD `shared` / 2), so models rank recipients
    alike to a degree.
    """
    rng = np.random.default_rng(seed)
    cells = list(itertools.product(tasks, languages))
    # a generator of its own, so shared=0 gives the same table as before
    common = np.random.default_rng(seed + 1)
    common_target = shared * common.normal(0, 1.0, len(cells))
    family_target = {
        family: shared * common.normal(0, 0.5, len(cells))
        for family in sorted({name.split("/")[-1][:4].lower() for name, _ in models})
    }
    rows = []
    for name, size in models:
        model_effect = rng.normal(0, 2)
        source_effect = dict(zip(cells, rng.normal(0, 1.5, len(cells)), strict=True))
        target_effect = rng.normal(0, 1.0, len(cells)) + common_target
        target_effect += family_target[name.split("/")[-1][:4].lower()]
        target_effect = dict(zip(cells, target_effect, strict=True))
        base = dict(zip(cells, rng.integers(100, 300, len(cells)) / 400, strict=True))
        for source, target in itertools.product(cells, cells):
            regime = regime_of(*source, *target).value
            same = 4.0 if regime == "MT-ML" else 0.0
            delta_norm = model_effect + source_effect[source] + target_effect[target] + same
            delta_norm = round((delta_norm + rng.normal(0, 1)) * 4) / 4
            delta = delta_norm + rng.normal(0, 0.5)
            rows.append(
                {
                    "model_name": name,
                    "model_size": size,
                    "fine_tuned_dataset": source[0],
                    "fine_tuned_language": source[1],
                    "eval_dataset": target[0],
                    "eval_language": target[1],
                    "regime": regime,
                    "score_mean": base[target] + delta / 100,
                    "score_base_mean": base[target],
                    "score_norm_mean": base[target] + delta_norm / 100,
                    "score_norm_base_mean": base[target],
                    "delta_score_mean": delta,
                    "delta_score_norm_mean": delta_norm,
                    "n_seeds": 3,
                }
            )
    frame = pd.DataFrame(rows)
    for column in PAPER_COLUMNS:
        if column not in frame:
            frame[column] = 0.1 if column.endswith(("_std", "_se")) else np.nan
    return frame[list(PAPER_COLUMNS)]


HAND_CELLS = [("arc", "de"), ("arc", "en"), ("mmlu", "de"), ("mmlu", "en")]
# mean Δ (pp) per source (rows) and target (columns), in HAND_CELLS order; every seed is mean ± 1
HAND_DELTAS = {
    ("llama-1b", 1.0): [[4, 2, -1, 0], [-2, 6, 1, -3], [1, 3, 5, 1], [-1, 2, 0, 3]],
    ("qwen-7b", 7.0): [[2, 4, 1, -2], [0, 2, 3, -1], [-3, 1, 3, 2], [0, 0, -1, 1]],
}
HAND_SEEDS = (17, 42)


def hand_grid() -> pd.DataFrame:
    """Return the 2 models × 2 tasks × 2 languages × 2 seeds per-seed export with known Δ.

    Base scores are 0.5 everywhere; seed 17 is Δ − 1 and seed 42 is Δ + 1 (headline metric),
    the acc Δ (`delta_score`) is half the headline Δ.
    """
    rows = []
    for (model, size), deltas in HAND_DELTAS.items():
        for source, row in zip(HAND_CELLS, deltas, strict=True):
            for target, mean in zip(HAND_CELLS, row, strict=True):
                for seed, offset in zip(HAND_SEEDS, (-1, 1), strict=True):
                    delta = mean + offset
                    rows.append(
                        {
                            "model_name": model,
                            "model_size": size,
                            "model_family": "",
                            "fine_tuned_dataset": source[0],
                            "fine_tuned_language": source[1],
                            "eval_dataset": target[0],
                            "eval_language": target[1],
                            "regime": regime_of(*source, *target).value,
                            "seed": seed,
                            "score": 0.5 + delta / 200,
                            "score_base": 0.5,
                            "score_norm": 0.5 + delta / 100,
                            "score_norm_base": 0.5,
                            "delta_score": delta / 2,
                            "delta_score_norm": delta,
                            "n_items": 400,
                            "headline_metric": "acc_norm",
                            "model_hash": f"{model}-hash",
                            "adapter_hash": f"{model}-{source[0]}-{source[1]}-{seed}",
                            "task_hash": f"{target[0]}-{target[1]}-hash",
                            "dtype": "float32",
                            "batch_size": 16,
                            "versions": "transformers=5.23;peft=0.21.2",
                        }
                    )
    return pd.DataFrame(rows)
