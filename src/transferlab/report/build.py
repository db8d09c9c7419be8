"""`write_report`: a run directory or results table → one self-contained HTML file."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from transferlab.alignment.table import ALIGNMENT_FILE
from transferlab.alignment.table import COLUMNS as ALIGNMENT_COLUMNS
from transferlab.analysis import AnalysisResult, ResultsTable, read_results, run_analysis
from transferlab.analysis.ablations import reference_rows
from transferlab.analysis.figures import analysis_figures
from transferlab.errors import UserError
from transferlab.fileio import replaced
from transferlab.report.ablations import ablation_section
from transferlab.report.breakdowns import (
    family_roles_blocks,
    onoff_summary_tables,
    task_group_mtcl_blocks,
    task_group_roles_blocks,
)
from transferlab.report.document import Section
from transferlab.report.mixtures import mixtures_section
from transferlab.report.render import render_html
from transferlab.report.sections import (
    Context,
    delta_name,
    heatmaps_section,
    matrices_section,
    onoff_section,
    roles_section,
    variance_section,
)
from transferlab.report.stat_tables import consistency_section, harm_section, regimes_section
from transferlab.report.summary import (
    cells_table,
    models_table,
    problems_notice,
    read_run_info,
    summary_facts,
)
from transferlab.runinfo import RunInfo

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"


def default_out_file(source: Path) -> Path:
    """Return where the report of `source` goes by default: report.html in its folder."""
    return (source if source.is_dir() else source.parent) / REPORT_FILE


def build_report(
    source: Path | str,
    metric: str | None = None,
    task_groups: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """Return the HTML report of a run directory or results table (nothing is written).

    `task_groups` ({name: tasks}) also splits the analysis by groups of tasks; None takes the
    study's `task_groups` from a `run_info.json` beside the table.
    """
    source = Path(source)
    table = read_results(source)
    run_info = read_run_info(source if source.is_dir() else source.parent)
    if task_groups is None:
        task_groups = ((run_info or {}).get("config") or {}).get("task_groups") or {}
    result = run_analysis(table, metric, task_groups=task_groups)
    folder = source if source.is_dir() else source.parent
    beside = folder / ALIGNMENT_FILE
    alignment = read_alignment(beside) if beside.is_file() else None
    extra = _active_sections(folder, table)
    return render_report(table, result, run_info, source.name, extra, alignment)


def _active_sections(folder: Path, table: ResultsTable) -> list[Section]:
    """Return the prediction section of an active study's run directory (else nothing)."""
    import json

    from transferlab.report.prediction import prediction_section

    record = folder / "active.json"
    config = (read_run_info(folder) or {}).get("config") or {}
    sources = config.get("sources")
    if not record.is_file() or not isinstance(sources, dict) or "active" not in sources:
        return []
    rounds = json.loads(record.read_text(encoding="utf-8"))["rounds"]
    picks = [[(p["model"], p["source"]) for p in entry["picks"]] for entry in rounds]
    return [prediction_section(table, picks, sources["active"])]


def render_report(
    table: ResultsTable,
    result: AnalysisResult,
    run_info: RunInfo | Mapping[str, Any] | None,
    name: str,
    extra: Sequence[Section] = (),
    alignment: pd.DataFrame | None = None,
) -> str:
    """Return the HTML report of an analysed table; ``name`` titles it when run_info has none.

    ``extra`` sections (an active study's prediction) come before the problems section;
    ``alignment`` (a run's alignment.csv) adds the alignment section.
    """
    if isinstance(run_info, RunInfo):
        run_info = run_info.as_dict()
    run_info = dict(run_info) if run_info is not None else None
    delta = delta_name(table, result.metric)
    # Where the training varies, every section but the ablations reads the reference variant.
    full_table = table
    reference = reference_rows(table.cells, result.reference_rank)
    if not reference.all():
        table = replace(table, cells=table.cells[reference].reset_index(drop=True))
    context = Context(table=table, result=result, delta=delta)
    seeds = sorted(int(s) for s in table.seeds["seed"].unique()) if table.seeds is not None else []
    metric_text = f"{delta} ({result.metric}), percentage points"
    summary = Section(
        "summary",
        "Study",
        [
            summary_facts(table.cells, seeds, run_info, Path(table.where), metric_text),
            models_table(table.cells, run_info),
        ],
    )
    evaluated = cells_table(table.cells, run_info)
    if evaluated is not None:
        summary.blocks.append(evaluated)
    problems = Section(
        "problems", "Failed or missing cells", [problems_notice(table.cells, run_info)]
    )
    figures = analysis_figures(result)
    roles = roles_section(context, figures)
    roles.blocks += family_roles_blocks(context)
    roles.blocks += task_group_roles_blocks(context)
    onoff = onoff_section(context, figures)
    onoff.blocks += onoff_summary_tables(context)
    harm = harm_section(context)
    harm.blocks += task_group_mtcl_blocks(context)
    sections = [
        summary,
        regimes_section(context),
        *filter(None, [mixtures_section(context, figures)]),
        heatmaps_section(context, figures),
        matrices_section(context),
        roles,
        onoff,
        variance_section(context),
        consistency_section(context),
        harm,
        *extra,
        problems,
    ]
    ablations = ablation_section(Context(table=full_table, result=result, delta=delta))
    if ablations is not None:
        sections.insert(-1, ablations)
    if alignment is not None and len(alignment):
        sections.insert(-1, _alignment(alignment, table, result.metric, delta))
    title = str((run_info or {}).get("study") or name)
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    transferlab_version = version("transferlab")
    return render_html(
        sections,
        title=title,
        subtitle=f"Transfer study report · {delta} · written {created}",
        footer=f"Written by transferlab {transferlab_version} from {table.where} on {created}.",
        version=transferlab_version,
    )


def read_alignment(file: Path) -> pd.DataFrame:
    """Return a run's alignment.csv (UserError naming the file if it lacks a column)."""
    from transferlab.exports import ALIGNMENT_EXTRA_COLUMNS

    frame = pd.read_csv(file, keep_default_na=False, na_values=[""])
    missing = [c for c in [*ALIGNMENT_COLUMNS, *ALIGNMENT_EXTRA_COLUMNS] if c not in frame]
    if missing:
        raise UserError(file, f"lacks the column(s) {', '.join(missing)}",
                        "rerun the study to write it again")  # fmt: skip
    return frame


def _alignment(alignment: pd.DataFrame, table: ResultsTable, metric: str, delta: str) -> Section:
    from transferlab.analysis.distance import typological_distances
    from transferlab.report.alignment import alignment_section

    languages = sorted(set(alignment["source_language"]) | set(alignment["target_language"]))
    return alignment_section(alignment, table, metric, delta, typological_distances(languages))


def write_report(
    source: Path | str,
    out_file: Path | str | None = None,
    metric: str | None = None,
    task_groups: Mapping[str, Iterable[str]] | None = None,
) -> Path:
    """Write the single-file HTML report of a run directory or results table; return its path.

    Everything is read and analysed before anything is written, and the file appears whole
    (written beside its destination, then renamed). `task_groups` as in `build_report`.
    """
    source = Path(source)
    out = Path(out_file) if out_file is not None else default_out_file(source)
    if out.is_dir():
        raise UserError(out, "is a directory", "give a file name such as report.html")
    write_html(build_report(source, metric, task_groups), out)
    return out


def write_html(html: str, out: Path) -> None:
    """Write ``html`` to ``out`` whole (a file beside it, then a rename); UserError if it fails."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with replaced(out) as temporary:
            temporary.write_text(html, encoding="utf-8")
    except OSError as error:
        raise UserError(
            out, f"cannot write the report ({error.strerror or error})", "choose another --out"
        ) from error
    log.info("wrote %s (%d bytes)", out, len(html.encode("utf-8")))
