"""The report's breakdown tables: roles by language family and by task group, the MT-CL split by
task group, and the on/off-task summaries per source task and per (model, source task)."""

from __future__ import annotations

from transferlab.report.document import (
    Block,
    Column,
    Table,
    TableCell,
    frame_rows,
    number_cell,
    text_cell,
)
from transferlab.report.sections import HARM, Context, empty_notice
from transferlab.report.stat_tables import SUMMARY_COLUMNS, summary_cells


def _groups_text(ctx: Context) -> str:
    groups = ctx.result.task_groups
    named = "; ".join(f"{name} = {', '.join(tasks)}" for name, tasks in groups.items())
    return f"Task groups: {named}"


def family_roles_blocks(ctx: Context) -> list[Block]:
    """Return the language roles averaged per language family (none when no family is known)."""
    roles = ctx.result.tables["roles_language_by_family"]
    if roles.empty or roles["donor"].isna().all():
        return []
    rows = frame_rows(
        roles,
        [
            lambda r: text_cell(r["family"]),
            lambda r: text_cell(r["languages"].replace(",", ", ")),
            lambda r: number_cell(r["donor"], signed=True, tone=True),
            lambda r: number_cell(r["recipient"], signed=True, tone=True),
        ],
    )
    table = Table(
        id="table-roles-family",
        caption=(
            f"Language roles by language family on MT-CL rows: a family's donor (recipient) "
            f"score is the mean of its languages' donor (recipient) scores, each the mean across "
            f"models of the per-model mean {ctx.delta}. Languages without a family are left out."
        ),
        columns=[
            Column("family"),
            Column("languages"),
            Column("donor (pp)", True),
            Column("recipient (pp)", True),
        ],
        rows=rows,
    )
    return [table]


def task_group_roles_blocks(ctx: Context) -> list[Block]:
    """Return the language roles per task group and the donor correlation between groups."""
    if not ctx.result.task_groups:
        return []
    roles = ctx.result.tables["roles_language_by_task_group"]
    if roles.empty:
        return [
            empty_notice("roles-task-group-none", "language roles by task group (no MT-CL rows)")
        ]
    rows = frame_rows(
        roles,
        [
            lambda r: text_cell(r["task_group"]),
            lambda r: text_cell(r["language"]),
            lambda r: number_cell(r["donor"], signed=True, tone=True),
            lambda r: number_cell(r["donor_se"]),
            lambda r: number_cell(r["recipient"], signed=True, tone=True),
            lambda r: number_cell(r["recipient_se"]),
        ],
    )
    by_group = Table(
        id="table-roles-task-group",
        caption=(
            f"Language roles on MT-CL rows restricted to the targets of each task group and to "
            f"the targets outside it ('not …'): per model the mean {ctx.delta} by source "
            f"(donor) or target (recipient) language, then the mean across models, SE across "
            f"models. {_groups_text(ctx)}."
        ),
        columns=[
            Column("targets"),
            Column("language"),
            Column("donor (pp)", True),
            Column("SE", True),
            Column("recipient (pp)", True),
            Column("SE", True),
        ],
        rows=rows,
    )
    correlation = frame_rows(
        ctx.result.tables["donor_correlation_by_task_group"],
        [
            lambda r: text_cell(r["task_group"]),
            lambda r: text_cell(r["versus"]),
            lambda r: number_cell(r["spearman_rho"], digits=3, signed=True),
            lambda r: number_cell(r["spearman_p"], digits=3),
            lambda r: number_cell(r["n_languages"], digits=0),
        ],
    )
    agreement = Table(
        id="table-donor-correlation",
        caption=(
            "Do the same languages donate within and outside a task group? Spearman ρ between "
            "the donor scores on the group's targets and on the other targets, over the "
            "languages scored in both (— below 3 languages)."
        ),
        columns=[
            Column("group"),
            Column("versus"),
            Column("Spearman ρ", True),
            Column("p", True),
            Column("languages", True),
        ],
        rows=correlation,
    )
    return [by_group, agreement]


def task_group_mtcl_blocks(ctx: Context) -> list[Block]:
    """Return the MT-CL summary for all rows, each task group and the rest (none: no groups)."""
    if not ctx.result.task_groups:
        return []
    summary = ctx.result.tables["mtcl_by_task_group"]
    rows = [[text_cell(r["subset"]), *summary_cells(r)] for r in summary.to_dict("records")]
    table = Table(
        id="table-mtcl-task-group",
        caption=(
            f"MT-CL rows (same task, other language) by the group of their target task; 'rest' "
            f"holds the tasks in no group. Cells pooled over models and languages: n, "
            f"{ctx.delta} mean and median, % > 0 and % harm ({HARM}). {_groups_text(ctx)}."
        ),
        columns=[Column("targets"), *SUMMARY_COLUMNS],
        rows=rows,
    )
    return [table]


def _side_cells(record: dict, side: str) -> list[TableCell]:
    return [
        number_cell(record[f"{side}_n"], digits=0),
        number_cell(record[f"{side}_mean"], signed=True, tone=True),
        number_cell(record[f"{side}_pct_positive"], digits=1),
        number_cell(record[f"{side}_pct_harm"], digits=1),
    ]


def onoff_summary_tables(ctx: Context) -> list[Block]:
    """Return the on/off-task summary per source task and the means per (model, source task)."""
    summary = ctx.result.tables["onoff_task_summary"]
    per_task = Table(
        id="table-onoff-task",
        caption=(
            f"On-task (MT-CL) and off-task (CT-ML and CT-CL) {ctx.delta} per source task, pooled "
            f"over every cell of every model and source language: mean, % > 0 and % harm "
            f"({HARM})."
        ),
        columns=[
            Column("source task"),
            Column("on n", True),
            Column("on mean (pp)", True),
            Column("on % > 0", True),
            Column("on % harm", True),
            Column("off n", True),
            Column("off mean (pp)", True),
            Column("off % > 0", True),
            Column("off % harm", True),
        ],
        rows=[
            [text_cell(r["source_task"]), *_side_cells(r, "on"), *_side_cells(r, "off")]
            for r in summary.to_dict("records")
        ],
    )
    family = ctx.result.tables["onoff_family"]
    if family.empty:
        return [per_task]
    per_model = Table(
        id="table-onoff-family",
        caption=(
            f"Per model and source task: the on-task and off-task mean {ctx.delta} of its "
            "adapters, averaged over their source languages; an adapter counts when at least 3 "
            "on-task and 5 off-task cells stand behind it."
        ),
        columns=[
            Column("model"),
            Column("source task"),
            Column("on-task (pp)", True),
            Column("off-task (pp)", True),
            Column("languages", True),
        ],
        rows=frame_rows(
            family,
            [
                lambda r: text_cell(r["model"]),
                lambda r: text_cell(r["source_task"]),
                lambda r: number_cell(r["on_task"], signed=True, tone=True),
                lambda r: number_cell(r["off_task"], signed=True, tone=True),
                lambda r: number_cell(r["n_languages"], digits=0),
            ],
        ),
    )
    return [per_task, per_model]
