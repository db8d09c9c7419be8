"""The report's figure sections (with their tables): the analysis's figures, captioned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferlab.analysis import AnalysisResult, ResultsTable
from transferlab.report.document import (
    Block,
    Column,
    Notice,
    Section,
    Table,
    embed_figure,
    frame_rows,
    number_cell,
    slug,
    text_cell,
)
from transferlab.report.figures import (
    transfer_matrix,
    transfer_matrix_figure,
    variance_figure,
)

REGIME_MEANING = {
    "MT-ML": "same task, same language (the trained cell itself)",
    "MT-CL": "same task, other language",
    "CT-ML": "other task, same language",
    "CT-CL": "other task, other language",
    "transfer": "every regime but MT-ML",
}
HARM = "harm = Δ ≤ −1.0 pp"


@dataclass(frozen=True)
class Context:
    """What every section needs: the table, its analysis and how to name the metric."""

    table: ResultsTable
    result: AnalysisResult
    delta: str  # e.g. "Δ acc_norm"

    @property
    def how(self) -> str:
        """Return how a cell's Δ is computed, for captions."""
        seeds = "averaged over seeds" if self.table.schema == "per_seed" else "as in the table"
        return (
            f"{self.delta} = 100 × (fine-tuned − base score) in percentage points per "
            f"(model, source cell, target cell), {seeds}"
        )


def delta_name(table: ResultsTable, metric: str) -> str:
    """Return a reader's name for the Δ column analysed, e.g. 'Δ acc_norm'."""
    if metric.startswith("delta_score_norm"):
        named = sorted(set(table.cells.get("headline_metric", pd.Series(dtype=str)).dropna()))
        return f"Δ {'/'.join(named) or 'headline metric'}"
    if metric.startswith("delta_score"):
        return "Δ acc"
    return f"Δ {metric}"


def empty_notice(id: str, what: str) -> Notice:
    return Notice(id=id, text=f"Not available for this study: {what}.")


def _figure_or_notice(
    figures: dict, name: str, id: str, caption: str, alt: str, toc: str, missing: str
) -> Block:
    if name not in figures:
        return empty_notice(id, missing)
    return embed_figure(figures[name], id=id, caption=caption, alt=alt, toc=toc)


def heatmaps_section(ctx: Context, figures: dict) -> Section:
    """Return the language→language and task→task heatmaps."""
    blocks = [
        _figure_or_notice(
            figures,
            "matrix_language",
            "fig-language-heatmap",
            f"Language → language transfer on the matched task (MT-CL rows): each cell is the mean "
            f"{ctx.delta} over models and tasks for adapters trained in the row's language and "
            "evaluated in the column's. Diverging colours centred at 0 (blue gain, red loss); "
            "the diagonal (the trained language itself, MT-ML) is masked in grey.",
            "Heatmap of mean transfer from each source language to each target language",
            "Language → language",
            "the study has a single language",
        ),
        _figure_or_notice(
            figures,
            "matrix_task",
            "fig-task-heatmap",
            f"Task → task transfer in the matched language (CT-ML rows): each cell is the mean "
            f"{ctx.delta} over models and languages for adapters trained on the row's task and "
            "evaluated on the column's. Colours centred at 0; the diagonal (same task) is masked.",
            "Heatmap of mean transfer from each source task to each target task",
            "Task → task",
            "the study has a single task",
        ),
    ]
    return Section("heatmaps", "Transfer heatmaps", blocks)


def matrices_section(ctx: Context) -> Section:
    """Return one full sources × targets matrix per model, CI∋0 cells hatched."""
    cells = ctx.table.cells.copy()
    ci = ctx.result.tables["cell_ci"]
    has_ci = not ci.empty
    if has_ci:
        keys = ["model", "source_task", "source_language", "target_task", "target_language"]
        flags = ci.set_axis(keys + list(ci.columns[5:]), axis=1).set_index(keys)["contains_zero"]
        cells = cells.join(flags.astype(float), on=keys)
    else:
        cells["contains_zero"] = np.nan
    metric = ctx.result.metric
    limit = float(np.nanmax(np.abs(cells[metric].to_numpy(float)))) or 1.0
    if has_ci:
        marks = (
            f"Hatched cells: the 95% item-bootstrap CI of the cell's Δ contains 0 (items resampled "
            f"with replacement, base and fine-tuned answers paired, {ctx.result.n_boot:,} "
            "resamples), so that cell's change is not distinguishable from no change."
        )
    else:
        marks = (
            "No per-item results came with this table, so no cell carries an item-bootstrap "
            "interval and none is hatched."
        )
    blocks: list[Block] = []
    for model in sorted(cells["model"].unique()):
        matrix, contains_zero = transfer_matrix(cells, metric, model)
        figure = transfer_matrix_figure(matrix, contains_zero, model, limit, "(pp)")
        blocks.append(
            embed_figure(
                figure,
                id=f"fig-matrix-{slug(model)}",
                caption=(
                    f"Every adapter of {model}: rows are the source cells trained on, columns the "
                    f"target cells evaluated, values {ctx.how}. Colours centred at 0 on a scale "
                    f"shared by all models (±{limit:.1f} pp); lines separate tasks; outlined "
                    f"cells are the trained cells (MT-ML); grey cells have no result. {marks}"
                ),
                alt=f"Transfer matrix of {model}",
                toc=f"Matrix: {model}",
            )
        )
    if has_ci:
        n_zero = int(ci["contains_zero"].sum())
        blocks.append(
            Notice(
                id="ci-count",
                text=f"{n_zero} of {len(ci)} cells have an item-bootstrap CI containing 0.",
                ok=True,
            )
        )
    return Section("matrices", "Full transfer matrices", blocks)


def _roles_table(roles: pd.DataFrame, label: str, regime: str, ctx: Context) -> Table:
    rows = frame_rows(
        roles,
        [
            lambda r: text_cell(r[label]),
            lambda r: number_cell(r["donor"], signed=True, tone=True),
            lambda r: number_cell(r["donor_se"]),
            lambda r: number_cell(r["recipient"], signed=True, tone=True),
            lambda r: number_cell(r["recipient_se"]),
        ],
    )
    return Table(
        id=f"table-roles-{label}",
        caption=(
            f"{label.capitalize()} roles on {regime} rows: donor = mean {ctx.delta} of the rows "
            f"whose source {label} it is, recipient = the same keyed on the target {label}; "
            "each the mean of per-model means, SE across models (— with one model)."
        ),
        columns=[
            Column(label),
            Column("donor (pp)", True),
            Column("SE", True),
            Column("recipient (pp)", True),
            Column("SE", True),
        ],
        rows=rows,
    )


def roles_section(ctx: Context, figures: dict) -> Section:
    """Return the donor-vs-recipient scatters with their tables."""
    blocks: list[Block] = []
    for name, label, regime, missing in (
        ("roles_language", "language", "MT-CL", "the study has a single language"),
        ("roles_task", "task", "CT-ML", "the study has a single task"),
    ):
        blocks.append(
            _figure_or_notice(
                figures,
                name,
                f"fig-{name.replace('_', '-')}",
                f"{label.capitalize()}s as donors (x) and recipients (y) on {regime} rows, "
                f"{ctx.delta}: per model the mean over rows with that source (donor) or target "
                "(recipient) "
                f"{label}, then the mean across models; bars are ±1 SE across models. Points above "
                "the dashed diagonal receive more than they give.",
                f"Scatter of donor score against recipient score per {label}",
                f"Donors and recipients: {label}s",
                missing,
            )
        )
        if ctx.result.tables[name]["donor"].notna().any():
            blocks.append(_roles_table(ctx.result.tables[name], label, regime, ctx))
    return Section("roles", "Donors and recipients", blocks)


def onoff_section(ctx: Context, figures: dict) -> Section:
    """Return the on-task vs off-task scatter per family and its table."""
    onoff = ctx.result.tables["onoff_task"]
    figure = _figure_or_notice(
        figures,
        "onoff_task",
        "fig-onoff",
        f"On-task vs off-task transfer per adapter, one panel per model family: x = mean "
        f"{ctx.delta} over the source's MT-CL targets (same task, other languages), y = mean over "
        "all its cross-task targets (CT-ML and CT-CL). Points below 0 on y hurt other tasks.",
        "Scatter of on-task against off-task transfer, one panel per family",
        "",
        "it needs at least two languages and two tasks",
    )
    rows = frame_rows(
        onoff,
        [
            lambda r: text_cell(r["model"]),
            lambda r: text_cell(f"{r['source_task']}:{r['source_language']}"),
            lambda r: number_cell(r["on_task"], signed=True, tone=True),
            lambda r: number_cell(r["off_task"], signed=True, tone=True),
            lambda r: number_cell(r["off_task_harm_pct"], digits=1),
        ],
    )
    table = Table(
        id="table-onoff",
        caption=f"Per adapter: mean on-task (MT-CL) and off-task (cross-task) {ctx.delta}, and the "
        f"share of its cross-task targets harmed ({HARM}).",
        columns=[
            Column("model"),
            Column("source"),
            Column("on-task (pp)", True),
            Column("off-task (pp)", True),
            Column("off-task % harm", True),
        ],
        rows=rows,
    )
    return Section("onoff", "On-task vs off-task", [figure, table])


def variance_section(ctx: Context) -> Section:
    """Return the variance shares as bars and as a table."""
    variance = ctx.result.tables["variance"]
    shares = variance.pivot_table(
        index="subset", columns="component", values="share_pct", aggfunc="first", sort=False
    )
    shares = shares.dropna(how="all")
    if shares.empty:
        return Section(
            "variance", "Variance shares", [empty_notice("variance-none", "too few rows")]
        )
    how = (
        f"Linear mixed model of {ctx.delta} fitted by REML: a random intercept per model and "
        "variance components for the source cell and the target cell, overall and per regime; "
        "each component's share of the total variance."
    )
    if ctx.result.task_groups:
        how += (
            " For each task group also the transfer rows whose source or target task is in it "
            "(named after the group) and those where neither is ('not …'), overall and per "
            "regime with at least 50 rows."
        )
    components = [c for c in ("model", "source", "target", "residual") if c in shares.columns]
    rows = [
        [text_cell(subset)] + [number_cell(shares.loc[subset, c], digits=1) for c in components]
        for subset in shares.index
    ]
    figure = embed_figure(
        variance_figure(shares),
        id="fig-variance",
        caption=f"What Δ varies with. {how} A component the data cannot separate shows as 0.",
        alt="Stacked bars of variance shares per subset",
    )
    table = Table(
        id="table-variance",
        caption=f"Variance shares (%). {how}",
        columns=[Column("subset")] + [Column(f"{c} %", True) for c in components],
        rows=rows,
    )
    return Section("variance", "Variance shares", [figure, table])
