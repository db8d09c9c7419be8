"""The file side of prediction: read a results table, write `predict` and `recommend` outputs.

Everything is read, validated and computed before anything is written; files are written into
a temporary folder beside the output and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from transferlab.analysis.command import read_results_of_models, table_file
from transferlab.analysis.distance import typological_distances
from transferlab.analysis.schema import ResultsTable
from transferlab.conversion import sha256_file
from transferlab.errors import UserError
from transferlab.grid import Cell
from transferlab.prediction.data import prediction_frame
from transferlab.prediction.evaluate import LEVEL, evaluate_predictions
from transferlab.prediction.recommend import recommend_sources

PREDICTIONS_FILE = "predictions.csv"
SCORES_FILE = "prediction_scores.csv"
INFO_FILE = "prediction_info.json"
RECOMMEND_FILE = "recommendations.csv"


def parse_cells(text: str | None, option: str) -> list[tuple[str, str]]:
    """Return the (task, language) cells of a `TASK:LANG,...` option (empty for None)."""
    if not text:
        return []
    cells = []
    for part in text.split(","):
        try:
            cell = Cell.parse(part.strip())
        except ValueError:
            raise UserError(
                option, f"{part.strip()!r} is not TASK:LANG", "e.g. global_mmlu:de,hellaswag:hi"
            ) from None
        cells.append((cell.task, cell.language))
    return cells


def _frame(table: ResultsTable, metric: str | None) -> pd.DataFrame:
    languages = sorted(set(table.cells["source_language"]) | set(table.cells["target_language"]))
    return prediction_frame(table, metric, distances=typological_distances(languages))


def _as_list(paths: Sequence[Path | str] | Path | str) -> list[Path | str]:
    return [paths] if isinstance(paths, str | Path) else list(paths)


def _check_out(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(out_dir, "exists and is not a directory", "choose another --out")


def _write(out_dir: Path, files: dict[str, pd.DataFrame | dict]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".predict-", dir=out_dir))
    try:
        for name, content in files.items():
            if isinstance(content, pd.DataFrame):
                content.to_csv(staging / name, index=False)
            else:
                (staging / name).write_text(json.dumps(content, indent=2) + "\n")
        for name in files:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def predict_command(
    paths: Sequence[Path | str] | Path | str,
    out_dir: Path | str,
    observed_frac: float = 0.3,
    seed: int = 0,
    n_splits: int = 10,
    methods: list[str] | None = None,
    level: float = LEVEL,
    hide: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Write `predictions.csv`, `prediction_scores.csv` and `prediction_info.json`; return scores."""
    out_dir = Path(out_dir)
    _check_out(out_dir)
    hidden = parse_cells(hide, "--hide")
    inputs = [table_file(Path(path)) for path in _as_list(paths)]
    table = read_results_of_models(inputs)
    result = evaluate_predictions(
        _frame(table, metric),
        observed_frac=observed_frac,
        n_splits=n_splits,
        seed=seed,
        methods=methods,
        level=level,
        hidden=hidden or None,
    )
    info = {
        "input": [str(path) for path in inputs],
        "input_sha256": [sha256_file(path) for path in inputs],
        "metric": table.metric_column(metric),
        "observed_frac": None if hidden else observed_frac,
        "hidden_sources": [f"{t}:{lang}" for t, lang in hidden],
        "seed": seed,
        "n_splits": len(result.per_split["split"].unique()),
        "level": level,
        "observed_rows": result.n_observed,
        "hidden_rows": result.n_hidden,
        "per_split": result.per_split.to_dict(orient="records"),
        "versions": {"transferlab": version("transferlab"), "numpy": version("numpy")},
    }
    _write(
        out_dir,
        {PREDICTIONS_FILE: result.predictions, SCORES_FILE: result.scores, INFO_FILE: info},
    )
    return result.scores


def recommend_command(
    paths: Sequence[Path | str] | Path | str,
    targets: str,
    out_dir: Path | str = ".",
    protect: str | None = None,
    harm_budget: float = 1.0,
    max_risk: float = 0.1,
    model: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Write `recommendations.csv` (ranked sources per model) into `out_dir`; return the table."""
    out_dir = Path(out_dir)
    _check_out(out_dir)
    target_cells = parse_cells(targets, "--targets")
    protect_cells = parse_cells(protect, "--protect")
    table = read_results_of_models(_as_list(paths))
    ranked = recommend_sources(
        _frame(table, metric),
        target_cells,
        protect=protect_cells or None,
        harm_budget=harm_budget,
        max_risk=max_risk,
        model=model,
        where=table.where,
    )
    _write(out_dir, {RECOMMEND_FILE: ranked})
    return ranked
