"""A paper-shaped synthetic `transfer_results.csv`: a documented generator with known structure.

The generator draws, for every model m, source cell s = (task a, language x) and target cell
t = (task b, language y), a true transfer Δ (pp) as a sum of the parts that the reference
study's analysis separates, then simulates seeds around it:

    Δ*(m, s, t) = model_m                       N(0, 1.5²)
                + regime_r · scale_m            MT-ML 6, MT-CL 1.5, CT-ML 0.5, CT-CL 0;
                                                scale_m = 1 + N(0, 0.2²)
                + source_s + source_ms          shared N(0, 1²) + within model N(0, 0.5²)
                + target_mt                     4 · (0.5 − base_mt) + N(0, 0.7²)
                + task_ab + task_mab            task → task, N(0, 1²) + N(0, 0.3²)
                + [a = b] · g_m · exp(−d_xy)    same task: decays with the languages' distance
                                                d_xy (latent positions, below); g_m = 2 + N(0, 0.5²)
                + [x = y] · 0.8                 same language, other task
                + Σ_k u_sk (v_tk + w_mtk)       rank-3 source × target interaction,
                                                u, v ~ N(0, 0.6²), w ~ N(0, 0.2²)
                + e_mst                         idiosyncratic cell interaction N(0, 0.3²)

Languages get latent 2-d positions: a family centre N(0, 1²) (the families of PROTOCOL.md §1;
a language outside them is its own family) plus N(0, 0.3²); d_xy is their Euclidean distance.
Base scores base_mt ~ U(0.25, 0.75). Each seed adds seed noise N(0, seed_sd²) (default 1 pp) to
Δ* and is rounded to 0.25 pp (one item of 400); the cell reports the mean over `n_seeds` seeds
(default 3), its SD (ddof 1) and SE = SD/√n, so the default noise of a reported mean is
1/√3 ≈ 0.58 pp, and 0.3 pp more of each cell (e_mst) is predictable by no method. The acc
columns add N(0, 0.5²) per seed to the headline Δ.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from transferlab.analysis.schema import PAPER_COLUMNS
from transferlab.grid import regime_of

PAPER_MODELS: list[tuple[str, str]] = [
    ("meta-llama/Llama-3.2-1B-Instruct", "1B"),
    ("meta-llama/Llama-3.2-3B-Instruct", "3B"),
    ("meta-llama/Llama-3.1-8B-Instruct", "8B"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "0.5B"),
    ("Qwen/Qwen2.5-1.5B-Instruct", "1.5B"),
    ("Qwen/Qwen2.5-3B-Instruct", "3B"),
    ("Qwen/Qwen2.5-7B-Instruct", "7B"),
    ("google/gemma-3-1b-it", "1B"),
    ("google/gemma-3-4b-it", "4B"),
]
PAPER_TASKS: list[str] = ["arc_challenge", "global_mmlu", "hellaswag", "truthfulqa"]
PAPER_LANGUAGES: list[str] = ["ar", "bn", "de", "en", "es", "fr", "hi", "id", "it", "pt", "zh"]
LANGUAGE_FAMILIES: dict[str, str] = {
    **dict.fromkeys(["fr", "es", "pt", "it"], "Romance"),
    **dict.fromkeys(["de", "en"], "Germanic"),
    **dict.fromkeys(["hi", "bn"], "Indic"),
    "zh": "Chinese",
    "ar": "Arabic",
    "id": "Indonesian",
}
REGIME_OFFSETS: dict[str, float] = {"MT-ML": 6.0, "MT-CL": 1.5, "CT-ML": 0.5, "CT-CL": 0.0}
SEED_SD = 1.0  # pp, the spread of one seed's Δ around the cell's true Δ
RANK = 3


def _language_positions(languages: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    families = sorted({LANGUAGE_FAMILIES.get(lang, lang) for lang in languages})
    centres = dict(zip(families, rng.normal(0, 1, (len(families), 2)), strict=True))
    return np.array([centres[LANGUAGE_FAMILIES.get(lang, lang)] for lang in languages]) + (
        rng.normal(0, 0.3, (len(languages), 2))
    )


def true_deltas(
    n_models: int, tasks: Sequence[str], languages: Sequence[str], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return (true Δ of shape models × sources × targets, base scores of shape models × cells)."""
    cells = list(itertools.product(tasks, languages))
    n = len(cells)
    task = np.array([tasks.index(c[0]) for c in cells])
    lang = np.array([languages.index(c[1]) for c in cells])
    same_task = task[:, None] == task[None, :]
    same_lang = lang[:, None] == lang[None, :]
    regime = np.where(
        same_task,
        np.where(same_lang, REGIME_OFFSETS["MT-ML"], REGIME_OFFSETS["MT-CL"]),
        np.where(same_lang, REGIME_OFFSETS["CT-ML"], REGIME_OFFSETS["CT-CL"]),
    )
    position = _language_positions(languages, rng)
    distance = np.linalg.norm(position[:, None] - position[None, :], axis=-1)[lang][:, lang]
    source = rng.normal(0, 1.0, n)
    task_transfer = rng.normal(0, 1.0, (len(tasks), len(tasks)))
    u, v = rng.normal(0, 0.6, (n, RANK)), rng.normal(0, 0.6, (n, RANK))
    base = rng.uniform(0.25, 0.75, (n_models, n))
    deltas = np.empty((n_models, n, n))
    for m in range(n_models):
        target = 4 * (0.5 - base[m]) + rng.normal(0, 0.7, n)
        tasks_m = task_transfer + rng.normal(0, 0.3, task_transfer.shape)
        deltas[m] = (
            rng.normal(0, 1.5)
            + regime * (1 + rng.normal(0, 0.2))
            + (source + rng.normal(0, 0.5, n))[:, None]
            + target[None, :]
            + tasks_m[task][:, task]
            + same_task * (2 + rng.normal(0, 0.5)) * np.exp(-distance)
            + (same_lang & ~same_task) * 0.8
            + u @ (v + rng.normal(0, 0.2, v.shape)).T
            + rng.normal(0, 0.3, (n, n))
        )
    return deltas, base


def paper_shaped_table(
    models: Sequence[tuple[str, str]] = PAPER_MODELS,
    tasks: Sequence[str] = PAPER_TASKS,
    languages: Sequence[str] = PAPER_LANGUAGES,
    seed: int = 0,
    n_seeds: int = 3,
    seed_sd: float = SEED_SD,
) -> pd.DataFrame:
    """Return a synthetic table in the paper's `transfer_results.csv` schema (module docstring)."""
    rng = np.random.default_rng(seed)
    tasks, languages = list(tasks), list(languages)
    cells = list(itertools.product(tasks, languages))
    truth, base = true_deltas(len(models), tasks, languages, rng)
    shape = (*truth.shape, n_seeds)
    norm = np.round((truth[..., None] + rng.normal(0, seed_sd, shape)) * 4) / 4
    acc = norm + rng.normal(0, 0.5, shape)
    m, s, t = (a.ravel() for a in np.indices(truth.shape))
    names, sizes = (np.array(column) for column in zip(*models, strict=True))
    cell_task, cell_lang = (np.array(column) for column in zip(*cells, strict=True))
    regimes = np.array([[regime_of(*a, *b).value for b in cells] for a in cells])
    frame = pd.DataFrame(
        {
            "model_name": names[m],
            "model_size": sizes[m],
            "fine_tuned_dataset": cell_task[s],
            "fine_tuned_language": cell_lang[s],
            "eval_dataset": cell_task[t],
            "eval_language": cell_lang[t],
            "regime": regimes[s, t],
        }
    )
    target_base = base[m, t]
    ddof = 1 if n_seeds > 1 else 0
    for name, delta in (("delta_score", acc), ("delta_score_norm", norm)):
        per_seed = delta.reshape(-1, n_seeds)
        score = name.replace("delta_", "")
        frame[f"{score}_mean"] = target_base + per_seed.mean(axis=1) / 100
        frame[f"{score}_base_mean"] = target_base
        frame[f"{name}_mean"] = per_seed.mean(axis=1)
        frame[f"{name}_std"] = per_seed.std(axis=1, ddof=ddof) if n_seeds > 1 else np.nan
        frame[f"{score}_std"] = frame[f"{name}_std"] / 100
        frame[f"{name}_se"] = frame[f"{name}_std"] / np.sqrt(n_seeds)
        frame[f"{score}_se"] = frame[f"{score}_std"] / np.sqrt(n_seeds)
        frame[f"{score}_base_std"] = 0.0  # the base model is evaluated once
        frame[f"{score}_base_se"] = 0.0
    frame["n_seeds"] = n_seeds
    return frame[list(PAPER_COLUMNS)]
