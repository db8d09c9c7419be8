"""The report's training-ablation section: LoRA rank and LoRA against full fine-tuning.

It exists only for a table that varies how sources were trained; the other sections then
describe the reference variant (see ``analysis.ablations``).
"""

from __future__ import annotations

import pandas as pd

from transferlab.report.document import Column, Section, Table, frame_rows, number_cell, text_cell
from transferlab.report.sections import HARM, Context


def _rank_table(ctx: Context) -> Table:
    ranks = ctx.result.tables["ablation_rank"]
    note = str(ranks["reference_note"].iloc[0]) if len(ranks) else ""
    signed = dict(signed=True, tone=True)
    rows = frame_rows(
        ranks,
        [
            lambda r: number_cell(r["lora_r"], digits=0),
            lambda r: number_cell(r["n"], digits=0),
            lambda r: number_cell(r["mean"], **signed),
            lambda r: number_cell(r["median"], **signed),
            lambda r: number_cell(r["p10"], **signed),
            lambda r: number_cell(r["p90"], **signed),
            lambda r: number_cell(r["pct_harm"], digits=1),
            lambda r: number_cell(r["pearson_with_reference"]),
            lambda r: number_cell(r["spearman_with_reference"]),
        ],
    )
    return Table(
        id="table-ablation-rank",
        caption=(
            f"LoRA rank on the transfer cells (every regime but MT-ML). {ctx.how}. p10 / p90 "
            f"are percentiles of {ctx.delta}; % harm is the share with {HARM}; the correlations "
            f"pair each cell with the same (model, source, target) cell at the reference rank "
            f"({note})."
        ),
        columns=[
            Column("rank r", True),
            Column("n", True),
            Column("mean Δ (pp)", True),
            Column("median Δ (pp)", True),
            Column("p10 (pp)", True),
            Column("p90 (pp)", True),
            Column("% harm", True, help=HARM),
            Column("Pearson r vs reference", True),
            Column("Spearman ρ vs reference", True),
        ],
        rows=rows,
    )


def _method_table(ctx: Context) -> Table:
    methods = ctx.result.tables["ablation_method"]
    signed = dict(signed=True, tone=True)
    rows = frame_rows(
        methods,
        [
            lambda r: text_cell("LoRA" if pd.isna(r["lora_r"]) else f"r = {int(r['lora_r'])}"),
            lambda r: number_cell(r["n_paired"], digits=0),
            lambda r: number_cell(r["mean_lora"], **signed),
            lambda r: number_cell(r["mean_full"], **signed),
            lambda r: number_cell(r["mean_difference"], **signed),
            lambda r: number_cell(r["median_difference"], **signed),
            lambda r: number_cell(r["pearson"]),
            lambda r: number_cell(r["spearman"]),
            lambda r: number_cell(r["pct_sign_agreement"], digits=1),
        ],
    )
    return Table(
        id="table-ablation-method",
        caption=(
            f"Full fine-tuning against LoRA on the transfer cells both trained. {ctx.how}. "
            f"Differences are full − LoRA (pp); the correlations and the sign agreement (the "
            f"share of cells whose Δ has the same sign under both) pair the same (model, source, "
            f"target) cell."
        ),
        columns=[
            Column("LoRA"),
            Column("cells", True),
            Column("mean Δ LoRA (pp)", True),
            Column("mean Δ full (pp)", True),
            Column("mean difference (pp)", True),
            Column("median difference (pp)", True),
            Column("Pearson r", True),
            Column("Spearman ρ", True),
            Column("% same sign", True),
        ],
        rows=rows,
    )


def ablation_section(ctx: Context) -> Section | None:
    """Return the ablation section, or None when the table does not vary the training."""
    blocks = []
    if "ablation_rank" in ctx.result.tables:
        blocks.append(_rank_table(ctx))
    if "ablation_method" in ctx.result.tables:
        blocks.append(_method_table(ctx))
    if not blocks:
        return None
    intro = [
        "The sources were trained in more than one way. The sections above describe the "
        "reference variant (LoRA at the reference rank); this one compares the variants on "
        "the cells they share, as the reference study's rank and full fine-tuning ablations do."
    ]
    return Section("ablations", "Training ablations", blocks, intro)
