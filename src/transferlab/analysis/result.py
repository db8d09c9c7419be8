"""`run_analysis`: every table of the reference study's analysis from one results table."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from transferlab.analysis.bootstrap import cell_ci
from transferlab.analysis.consistency import consistency_summary, source_consistency
from transferlab.analysis.distance import distance_correlation, distance_pairs
from transferlab.analysis.schema import ResultsTable
from transferlab.analysis.summaries import (
    harm_breakdown,
    language_matrix,
    language_roles,
    onoff_task,
    regime_subsets,
    regime_table,
    task_matrix,
    task_roles,
)
from transferlab.analysis.variance import variance_table

# tables written as CSV by `transferlab analyze` keep their index (source × target matrices)
INDEXED_TABLES = ("matrix_language", "matrix_task")


@dataclass(frozen=True)
class AnalysisResult:
    """The analysis of one results table: `tables` by name, the Δ column analysed, the input."""

    metric: str
    tables: dict[str, pd.DataFrame]
    where: str
    holes: int = 0
    n_boot: int = 1000
    seed: int = 0


def run_analysis(
    table: ResultsTable,
    metric: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    distances: pd.DataFrame | None = None,
) -> AnalysisResult:
    """Return every analysis table of `table` on the Δ column `metric` (None: headline).

    Tables: regimes (with a bootstrap CI of the mean), roles_language, roles_task, variance,
    consistency (+ consistency_sources, one CI per source), onoff_task, harm, matrix_language,
    matrix_task (indexed by source), cell_ci (empty without items), models; with
    `distances` (`distance.typological_distances`) also distance_pairs, distance_correlation.
    """
    column = table.metric_column(metric)
    cells = table.cells
    per_source = source_consistency(cells, column)
    tables = {
        "regimes": regime_table(cells, column, n_boot=n_boot, seed=seed),
        "roles_language": language_roles(cells, column),
        "roles_task": task_roles(cells, column),
        "variance": variance_table({"all": cells, **regime_subsets(cells)}, column),
        "consistency": consistency_summary(per_source),
        "consistency_sources": per_source,
        "onoff_task": onoff_task(cells, column),
        "harm": harm_breakdown(cells, column),
        "matrix_language": language_matrix(cells, column),
        "matrix_task": task_matrix(cells, column),
        "cell_ci": cell_ci(table.items, column, n_boot=n_boot, seed=seed),
        "models": table.models,
    }
    if distances is not None:
        pairs = distance_pairs(cells, column, distances)
        tables["distance_pairs"] = pairs
        tables["distance_correlation"] = distance_correlation(pairs)
    return AnalysisResult(column, tables, table.where, table.holes, n_boot, seed)
