"""The report's alignment section: how well the model's languages align, and whether that goes
with the transfer the study measured (present when the study has an ``alignment:`` section)."""

from __future__ import annotations

import pandas as pd

from transferlab.alignment.relate import by_layer
from transferlab.alignment.study import (
    base_vs_transfer,
    change_table,
    change_vs_transfer,
    view,
)
from transferlab.alignment.summary import alignment_vs_distance, layer_figure, pair_figure
from transferlab.analysis import ResultsTable
from transferlab.grid import BASE
from transferlab.report.document import (
    Block,
    Column,
    Notice,
    Section,
    Table,
    TableCell,
    embed_figure,
    frame_rows,
    interval_cell,
    number_cell,
    slug,
    text_cell,
)

CORRELATION_COLUMNS = [
    Column("n", True, help="points correlated"),
    Column("Pearson r", True),
    Column("95% CI of r", True, help="sorts by the lower end"),
    Column("Spearman ρ", True),
    Column("95% CI of ρ", True, help="sorts by the lower end"),
]


def _correlation_cells(record: dict) -> list[TableCell]:
    return [
        number_cell(record["n"], digits=0),
        number_cell(record.get("pearson_r"), signed=True),
        interval_cell(record.get("pearson_low"), record.get("pearson_high")),
        number_cell(record.get("spearman_rho"), signed=True),
        interval_cell(record.get("spearman_low"), record.get("spearman_high")),
    ]


def _at(frame: pd.DataFrame, method: str, retrieval: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[(frame["method"] == method) & (frame["retrieval"] == retrieval)]


def alignment_section(
    alignment: pd.DataFrame,
    table: ResultsTable,
    metric: str,
    delta: str,
    distances: pd.DataFrame | None = None,
    n_boot: int = 1000,
) -> Section:
    """Return the section: per-layer curves, the pair heatmap, changes, correlations."""
    blocks: list[Block] = []
    intro = [
        "Bilingual lexicon induction on each model state's hidden states (mean of an entry's "
        "tokens per layer, layer 0 = embeddings) over the bundled dictionary's concepts: a map "
        "fitted on the seed pairs (PROC: orthogonal Procrustes; PROC-B: grown by mutual nearest "
        "neighbours; none: no map) retrieves each test entry's translation among all target "
        "entries (cosine or CSLS). MRR is the mean reciprocal rank of the gold translation, in "
        "0–1; changes are × 100. Every number is in alignment.csv."
    ]
    for model, rows in alignment.groupby("model_name", sort=False):
        name = f" ({model})" if alignment["model_name"].nunique() > 1 else ""
        tag = slug(str(model))
        if not (rows["model_state"] == BASE).any():  # its alignment job failed or is pending
            blocks.append(Notice(f"notice-alignment-{tag}", f"The base model{name} is not "
                                 "aligned yet, so nothing is compared with it."))  # fmt: skip
            continue
        chosen = view(rows)
        where = f"{chosen.method} + {chosen.retrieval}"
        curves = layer_figure(by_layer(rows.drop(columns="model_name")))
        blocks.append(embed_figure(curves, f"figure-alignment-layers-{tag}",
                                   f"Mean MRR over ordered language pairs per layer{name}, one "
                                   "panel per method; solid: cosine, dashed: CSLS.",
                                   "alignment per layer", toc=f"Alignment per layer{name}"))  # fmt: skip
        blocks.append(embed_figure(pair_figure(rows), f"figure-alignment-pairs-{tag}",
                                   f"Base model's MRR per ordered pair (source → target) at its "
                                   f"best layer{name}.", "alignment per pair"))  # fmt: skip
        blocks.append(_change_block(rows, chosen, name, tag, where))
        blocks += _transfer_blocks(rows, table, metric, delta, chosen, name, tag, where, n_boot)
        if distances is not None and len(distances):
            blocks.append(_distance_block(rows, distances, chosen, name, tag, where, n_boot))
    return Section("alignment", "Cross-lingual alignment", blocks, intro)


def _change_block(rows, chosen, name, tag, where) -> Table:
    change = change_table(rows, chosen)
    body = frame_rows(change, [
        lambda r: text_cell(r["model_state"]),
        lambda r: number_cell(r["from_base"], digits=3),
        lambda r: number_cell(r["from_tuned"], digits=3),
        lambda r: number_cell(r["from_change"], signed=True, tone=True),
        lambda r: number_cell(r["all_change"], signed=True, tone=True),
    ])  # fmt: skip
    return Table(
        id=f"table-alignment-change-{tag}",
        caption=f"Alignment after each fine-tune{name}, {where} at layer {chosen.layer}: mean "
        "MRR over the pairs from the adapter's trained language, base and fine-tuned, the "
        "change (× 100), and the change over every pair.",
        columns=[
            Column("model state"),
            Column("MRR base", True),
            Column("MRR tuned", True),
            Column("Δ from trained lang.", True),
            Column("Δ all pairs", True),
        ],  # fmt: skip
        rows=body,
        toc=f"Alignment after fine-tuning{name}",
    )


def _transfer_blocks(rows, table, metric, delta, chosen, name, tag, where, n_boot) -> list[Table]:
    change = _at(change_vs_transfer(rows, table.cells, metric, n_boot=n_boot), chosen.method,
                 chosen.retrieval)  # fmt: skip
    base = _at(base_vs_transfer(rows, table.cells, metric, n_boot=n_boot), chosen.method,
               chosen.retrieval)  # fmt: skip
    out = []
    for frame, what, key in (
        (change, "the change in alignment (× 100) from an adapter's trained language to another "
                 f"language with the adapter's MT-CL {delta} there (one point per adapter and "
                 "target language, seeds averaged)", "change"),
        (base, "the base model's alignment of each ordered pair with the pair's mean MT-CL "
               f"{delta} over the adapters", "base"),
    ):  # fmt: skip
        body = [[number_cell(r["layer"], digits=0), *_correlation_cells(r)]
                for r in frame.to_dict("records")]  # fmt: skip
        out.append(Table(
            id=f"table-alignment-{key}-transfer-{tag}",
            caption=f"Correlation{name} of {what}, per layer, {where}. 95% CIs: percentile "
            f"bootstrap over the points, {n_boot:,} resamples, seed 0; — with fewer than 3.",
            columns=[Column("layer", True), *CORRELATION_COLUMNS],
            rows=body,
            toc=f"Alignment {'change ' if key == 'change' else ''}vs transfer{name}",
        ))  # fmt: skip
    return out


def _distance_block(rows, distances, chosen, name, tag, where, n_boot) -> Table:
    found = alignment_vs_distance(rows, distances, n_boot=n_boot)
    found = _at(found, chosen.method, chosen.retrieval)
    found = found[found["layer"] == chosen.layer]
    body = [[text_cell(r["feature_set"]), *_correlation_cells(r)] for r in found.to_dict("records")]
    return Table(
        id=f"table-alignment-distance-{tag}",
        caption=f"Correlation{name} of the base model's alignment of each pair ({where}, layer "
        f"{chosen.layer}) with the URIEL distance of its languages (lang2vec kNN features).",
        columns=[Column("feature set"), *CORRELATION_COLUMNS],
        rows=body,
    )
