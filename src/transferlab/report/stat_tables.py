"""The report's table-only sections: regimes, consistency and the harm breakdown."""

from __future__ import annotations

from transferlab.report.document import (
    Column,
    Section,
    Table,
    TableCell,
    frame_rows,
    interval_cell,
    number_cell,
    text_cell,
)
from transferlab.report.sections import HARM, REGIME_MEANING, Context, empty_notice

SUMMARY_COLUMNS = [
    Column("n", True),
    Column("mean Δ (pp)", True),
    Column("median Δ (pp)", True),
    Column("% > 0", True),
    Column("% harm", True, help=HARM),
]


def summary_cells(record: dict) -> list[TableCell]:
    """Return the cells of an n / mean / median / % > 0 / % harm summary row."""
    return [
        number_cell(record["n"], digits=0),
        number_cell(record["mean"], signed=True, tone=True),
        number_cell(record["median"], signed=True, tone=True),
        number_cell(record["pct_positive"], digits=1),
        number_cell(record["pct_harm"], digits=1),
    ]


def regimes_section(ctx: Context) -> Section:
    """Return the regime summary table with bootstrap intervals (next to the mean)."""
    rows = []
    for record in ctx.result.tables["regimes"].to_dict("records"):
        summary = summary_cells(record)
        interval = interval_cell(record.get("ci_low"), record.get("ci_high"))
        meaning = text_cell(REGIME_MEANING.get(record["regime"], ""))
        rows.append([text_cell(record["regime"]), meaning, *summary[:2], interval, *summary[2:]])
    table = Table(
        id="table-regimes",
        caption=(
            f"Transfer by regime. {ctx.how}. n counts cells; % > 0 is the share with Δ > 0, "
            f"% harm the share with {HARM}. The 95% CI of the mean is a percentile bootstrap "
            f"over adapters (model, source cell), {ctx.result.n_boot:,} resamples, "
            f"seed {ctx.result.seed}."
        ),
        columns=[
            Column("regime"),
            Column("source → target"),
            *SUMMARY_COLUMNS[:2],
            Column("95% CI of mean", True, help="sorts by the lower end"),
            *SUMMARY_COLUMNS[2:],
        ],
        rows=rows,
    )
    return Section("regimes", "Transfer by regime", [table])


def consistency_section(ctx: Context) -> Section:
    """Return the consistency index per regime and grouping."""
    consistency = ctx.result.tables["consistency"]
    rows = frame_rows(
        consistency,
        [
            lambda r: text_cell(r["regime"]),
            lambda r: text_cell(r["grouping"]),
            lambda r: number_cell(r["median"], digits=3, signed=True),
            lambda r: interval_cell(r["q1"], r["q3"], digits=3),
            lambda r: number_cell(r["n_sources"], digits=0),
        ],
    )
    table = Table(
        id="table-consistency",
        caption=(
            "Consistency index: for each source cell, Kendall τ-b between every pair of models "
            "(or families, Δ averaged over sizes; or exact model sizes, Δ averaged over families; "
            "or size buckets S ≤1.5B, M <7B, L ≥7B) over the recipients they share "
            "(target language for MT-CL, target task for CT-ML, target cell for CT-CL; at least "
            "3), averaged over pairs; summarised over sources by the median and IQR. 1 = every "
            "model ranks the recipients alike; — = too few models or recipients."
        ),
        columns=[
            Column("regime"),
            Column("units"),
            Column("median τ-b", True),
            Column("IQR [q1, q3]", True),
            Column("sources", True),
        ],
        rows=rows,
    )
    return Section("consistency", "Consistency across models", [table])


def harm_section(ctx: Context) -> Section:
    """Return the MT-CL harm breakdown."""
    harm = ctx.result.tables["harm"]
    if harm.empty:
        return Section(
            "harm",
            "Where cross-lingual transfer harms",
            [empty_notice("harm-none", "no MT-CL rows")],
        )
    rows = [
        [text_cell(str(r["grouping"]).replace("_", " ")), text_cell(r["group"]), *summary_cells(r)]
        for r in harm.to_dict("records")
    ]
    table = Table(
        id="table-harm",
        caption=f"MT-CL rows (same task, other language) broken down by target language, target "
        f"task, size bucket (S ≤1.5B, M <7B, L ≥7B) and family: {ctx.delta} summary, {HARM}.",
        columns=[Column("by"), Column("group"), *SUMMARY_COLUMNS],
        rows=rows,
    )
    return Section("harm", "Where cross-lingual transfer harms", [table])
