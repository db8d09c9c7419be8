"""The report's section on mixture sources: scaling curves, seen vs unseen, multi- vs single-task.

Present only when the study has mixtures; every number comes from the analysis's tables.
"""

from __future__ import annotations

from transferlab.report.document import (
    Block,
    Column,
    Section,
    Table,
    embed_figure,
    frame_rows,
    interval_cell,
    number_cell,
    text_cell,
)
from transferlab.report.sections import Context


def _gap_table(ctx: Context) -> Table:
    gaps = ctx.result.tables["mixture_seen_unseen"]
    rows = frame_rows(
        gaps,
        [
            lambda r: text_cell(r["model"]),
            lambda r: text_cell(r["mixture"]),
            lambda r: number_cell(r["per_language"], digits=0),
            lambda r: text_cell(r["target_task"]),
            lambda r: number_cell(r["seen_mean"], signed=True, tone=True),
            lambda r: number_cell(r["unseen_mean"], signed=True, tone=True),
            lambda r: number_cell(r["gap"], signed=True),
            lambda r: interval_cell(r["gap_low"], r["gap_high"]),
        ],
    )
    return Table(
        id="table-mixture-seen",
        caption=f"Per sweep and k: mean {ctx.delta} on target languages in the sweep (seen) and "
        "not in it (unseen), on the sweep's tasks, and their gap with a 95% item-bootstrap CI.",
        columns=[
            Column("model"),
            Column("sweep"),
            Column("k", True),
            Column("target task"),
            Column("seen (pp)", True),
            Column("unseen (pp)", True),
            Column("gap (pp)", True),
            Column("95% CI"),
        ],
        rows=rows,
    )


def _k90_table(ctx: Context) -> Table:
    k90 = ctx.result.tables["mixture_k90"]
    rows = frame_rows(
        k90,
        [
            lambda r: text_cell(r["model"]),
            lambda r: text_cell(r["mixture"]),
            lambda r: text_cell(f"{r['target_task']}:{r['target_language']}"),
            lambda r: text_cell("seen" if r["seen"] else "unseen"),
            lambda r: number_cell(r["score_first"], digits=3),
            lambda r: number_cell(r["score_max"], digits=3),
            lambda r: number_cell(r["k_max"], digits=0),
            lambda r: number_cell(r["k90"], digits=0),
        ],
    )
    return Table(
        id="table-mixture-k90",
        caption="Per curve: the score at the sweep's first k and at its best k, and k90, the "
        "smallest k whose gain over the first k reaches 90% of the curve's largest gain (— where "
        "the score never rises).",
        columns=[
            Column("model"),
            Column("sweep"),
            Column("target"),
            Column("language"),
            Column("score at first k", True),
            Column("best score", True),
            Column("best k", True),
            Column("k90", True),
        ],
        rows=rows,
    )


def _multitask_table(ctx: Context) -> Table:
    summary = ctx.result.tables["mixture_multitask_summary"]
    rows = frame_rows(
        summary,
        [
            lambda r: text_cell(r["model"]),
            lambda r: text_cell(r["multi_task_source"]),
            lambda r: text_cell(r["single_task_source"]),
            lambda r: text_cell(r["target_task"]),
            lambda r: number_cell(r["n_targets"], digits=0),
            lambda r: number_cell(r["difference"], signed=True, tone=True),
            lambda r: interval_cell(r["ci_low"], r["ci_high"]),
        ],
    )
    return Table(
        id="table-mixture-multitask",
        caption=f"Multi-task vs single-task sources with the same data per task: mean "
        f"{ctx.delta}(multi) − {ctx.delta}(single) over the task's targets (above 0: the other "
        "tasks help; below: they interfere), 95% paired item-bootstrap CI.",
        columns=[
            Column("model"),
            Column("multi-task source"),
            Column("single-task source"),
            Column("target task"),
            Column("targets", True),
            Column("difference (pp)", True),
            Column("95% CI"),
        ],
        rows=rows,
    )


def mixtures_section(ctx: Context, figures: dict) -> Section | None:
    """Return the mixtures section, or None when the study has no mixture sources."""
    tables = ctx.result.tables
    if "mixture_multitask" not in tables:
        return None
    blocks: list[Block] = []
    if "mixture_scaling" in figures:
        blocks.append(
            embed_figure(
                figures["mixture_scaling"],
                id="fig-mixture-scaling",
                caption=f"Left: {ctx.delta} against k, the items added per language, one line "
                "per target language of the sweep's task (solid: languages in the sweep, "
                "dashed: languages never trained on), bars the 95% item-bootstrap CI. Right: "
                "the mean gap seen − unseen with its CI.",
                alt="Data-scaling curves per target language and the seen-unseen gap",
                toc="Data-scaling curves",
            )
        )
    if "mixture_seen_unseen" in tables and len(tables["mixture_seen_unseen"]):
        blocks += [_gap_table(ctx), _k90_table(ctx)]
    if len(tables["mixture_multitask_summary"]):
        blocks.append(_multitask_table(ctx))
    if not blocks:
        return None
    return Section("mixtures", "Training-data mixtures", blocks)
