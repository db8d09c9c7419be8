"""`run_analysis`: every table of the reference study's analysis from one results table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from transferlab.analysis.ablations import (
    ablation_tables,
    reference_items,
    reference_rows,
    varies_training,
)
from transferlab.analysis.ablations import reference_rank as choose_reference_rank
from transferlab.analysis.bootstrap import cell_bootstrap, cell_ci
from transferlab.analysis.consistency import consistency_summary, source_consistency
from transferlab.analysis.distance import distance_correlation, distance_pairs
from transferlab.analysis.groups import (
    REFERENCE_LANGUAGE_FAMILIES,
    check_task_groups,
    donor_correlation,
    language_family_roles,
    mtcl_by_task_group,
    roles_by_task_group,
    variance_subsets,
)
from transferlab.analysis.mixture_compare import (
    multitask_vs_single,
    seen_unseen,
    seen_unseen_correlation,
)
from transferlab.analysis.mixture_scaling import curve_k90, scaling_curves
from transferlab.analysis.schema import ResultsTable
from transferlab.analysis.summaries import (
    harm_breakdown,
    language_matrix,
    language_roles,
    onoff_family,
    onoff_task,
    onoff_task_summary,
    regime_subsets,
    regime_table,
    task_matrix,
    task_roles,
    uplift_table,
)
from transferlab.analysis.variance import variance_table

# tables written as CSV by `transferlab analyze` keep their index (source × target matrices)
INDEXED_TABLES = ("matrix_language", "matrix_task")


@dataclass(frozen=True)
class AnalysisResult:
    """The analysis of one results table: `tables` by name, the Δ column analysed, the input
    and the task groups it was split by."""

    metric: str
    tables: dict[str, pd.DataFrame]
    where: str
    holes: int = 0
    n_boot: int = 1000
    seed: int = 0
    task_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the LoRA rank of the reference variant where the training varies (None otherwise)
    reference_rank: int | None = None


def run_analysis(
    table: ResultsTable,
    metric: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    distances: pd.DataFrame | None = None,
    task_groups: Mapping[str, Iterable[str]] | None = None,
    language_families: Mapping[str, str] | None = None,
    reference_rank: int | None = None,
) -> AnalysisResult:
    """Return every analysis table of `table` on the Δ column `metric` (None: headline).

    Tables: regimes (with a bootstrap CI of the mean), uplift, roles_language,
    roles_language_by_family, roles_task, variance, consistency (+ consistency_sources, one CI
    per source), onoff_task, onoff_family, onoff_task_summary, harm, matrix_language,
    matrix_task (indexed by source), cell_ci (empty without items), models; with `distances`
    (`distance.typological_distances`) also distance_pairs, distance_correlation; with
    `task_groups` ({name: tasks}) also mtcl_by_task_group, roles_language_by_task_group,
    donor_correlation_by_task_group and each group's subsets in variance.
    `language_families` maps languages to families (default: the reference study's).

    Mixture sources count in regimes, uplift, harm and cell_ci (a mixture row's regime is the
    closest of its parts', `grid.source_regime`); the other tables are defined on single-cell
    sources and leave mixtures out. A table with mixtures also gets `mixture_tables`.
    A table that varies the training (``method`` / ``lora_r`` columns) also gets
    ablation_rank and ablation_method (``ablations.py``); its other tables describe the
    reference variant only (LoRA at ``reference_rank``, default r = 32, else its smallest rank).
    """
    table = table.for_metric(metric)
    column = table.metric_column(metric)
    everything = table.cells[reference_rows(table.cells, reference_rank)]
    single = table.single_cell().cells
    cells = single[reference_rows(single, reference_rank)]
    items = reference_items(table.items, everything)
    tasks = set(cells["source_task"]) | set(everything["target_task"])
    groups = check_task_groups(task_groups or {}, tasks, f"{table.where}: task groups")
    per_source = source_consistency(cells, column)
    roles = language_roles(cells, column)
    onoff = onoff_task(cells, column)
    subsets = {"all": cells, **regime_subsets(cells), **variance_subsets(cells, groups)}
    tables = {
        "regimes": regime_table(everything, column, n_boot=n_boot, seed=seed),
        "uplift": uplift_table(everything, column),
        "roles_language": roles,
        "roles_language_by_family": language_family_roles(
            roles, REFERENCE_LANGUAGE_FAMILIES if language_families is None else language_families
        ),
        "roles_task": task_roles(cells, column),
        "variance": variance_table(subsets, column),
        "consistency": consistency_summary(per_source),
        "consistency_sources": per_source,
        "onoff_task": onoff,
        "onoff_family": onoff_family(onoff),
        "onoff_task_summary": onoff_task_summary(cells, column),
        "harm": harm_breakdown(everything, column),
        "matrix_language": language_matrix(cells, column),
        "matrix_task": task_matrix(cells, column),
        "cell_ci": cell_ci(items, column, n_boot=n_boot, seed=seed),
        "models": table.models,
        **ablation_tables(table.cells, column, reference_rank),
    }
    if groups:
        by_group = roles_by_task_group(cells, column, groups)
        tables["mtcl_by_task_group"] = mtcl_by_task_group(cells, column, groups)
        tables["roles_language_by_task_group"] = by_group
        tables["donor_correlation_by_task_group"] = donor_correlation(by_group, groups)
    if distances is not None:
        pairs = distance_pairs(cells, column, distances)
        tables["distance_pairs"] = pairs
        tables["distance_correlation"] = distance_correlation(pairs)
    if table.has_mixtures:  # on the reference variant, as the other main tables
        reference = replace(table, cells=everything, items=items)
        tables |= mixture_tables(reference, column, n_boot, seed)
    chosen = (
        choose_reference_rank(table.cells, reference_rank)[0]
        if varies_training(table.cells)
        else None
    )
    return AnalysisResult(column, tables, table.where, table.holes, n_boot, seed, groups, chosen)


def mixture_tables(
    table: ResultsTable, column: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Return the tables of mixture sources: the sweeps' scaling curves (`mixture_scaling`),
    where each levels off (`mixture_k90`), seen vs unseen languages (`mixture_seen_unseen`,
    `mixture_seen_unseen_correlation`), and multi-task vs single-task sources
    (`mixture_multitask`, `mixture_multitask_summary`)."""
    boot = cell_bootstrap(table.items, column, n_boot=n_boot, seed=seed)
    multi, multi_summary = multitask_vs_single(table.cells, column, boot)
    tables = {"mixture_multitask": multi, "mixture_multitask_summary": multi_summary}
    if table.sweeps is not None and not table.sweeps.empty:
        curves = scaling_curves(table.cells, table.sweeps, column, boot)
        gaps = seen_unseen(curves, table.cells, boot)
        tables |= {
            "mixture_scaling": curves,
            "mixture_k90": curve_k90(curves),
            "mixture_seen_unseen": gaps,
            "mixture_seen_unseen_correlation": seen_unseen_correlation(gaps),
        }
    return tables
