"""Results tables for the analysis tests: the paper's full grid shape and per-seed exports."""

from __future__ import annotations

import pandas as pd

from transferlab.grid import regime_of
from transferlab.prediction.synthetic import paper_shaped_table

# the paper-shaped table is the documented generator of transferlab.prediction.synthetic
paper_grid = paper_shaped_table


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
