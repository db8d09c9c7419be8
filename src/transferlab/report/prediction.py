"""The report's prediction section of an active study: predicted matrix, picks, error curve."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from transferlab.analysis import ResultsTable
from transferlab.grid import Cell
from transferlab.prediction.active_summary import BASELINE, ActiveSummary, active_summary
from transferlab.report.document import (
    Block,
    Column,
    Facts,
    Notice,
    Section,
    Table,
    embed_figure,
    frame_rows,
    number_cell,
    slug,
    text_cell,
)
from transferlab.report.figures import cell_label, transfer_matrix_figure


def summarize(
    table: ResultsTable, rounds: Sequence[Sequence[tuple[str, str]]], method: str
) -> ActiveSummary:
    """Return the active summary of a results table and its rounds of (model, source label)."""
    from transferlab.analysis.distance import typological_distances
    from transferlab.prediction.data import prediction_frame

    languages = sorted(set(table.cells["target_language"]))
    frame = prediction_frame(table, distances=typological_distances(languages))
    cells = [[(m, *_cell(label)) for m, label in picks] for picks in rounds]
    return active_summary(frame, cells, method)


def _cell(label: str) -> tuple[str, str]:
    cell = Cell.parse(label)
    return cell.task, cell.language


def prediction_section(
    table: ResultsTable, rounds: Sequence[Sequence[tuple[str, str]]], settings: dict
) -> Section:
    """Return the section: the facts, a predicted matrix per model, the picks and the curve."""
    summary = summarize(table, rounds, settings["method"])
    rows = summary.rows()
    counts = rows["status"].value_counts()
    facts = Facts(
        "active-facts",
        [
            ("strategy", str(settings["strategy"])),
            ("predictor", summary.method),
            ("budget per model", str(settings["budget"])),
            ("rounds", str(len(rounds))),
            ("observed rows (trained and fitted)", str(int(counts.get("trained", 0)))),
            ("predicted rows", str(int(counts.get("predicted", 0)))),
            ("check rows (measured, never fitted)", str(int(counts.get("check", 0)))),
        ]
        + ([("targets", ", ".join(settings["targets"]))] if settings.get("targets") else []),
    )
    blocks: list[Block] = [facts, *_matrices(summary), _picks_table(summary)]
    blocks += _curve_blocks(summary)
    intro = [
        "Sources were trained in rounds: a spread first, then each batch chosen by the predictor "
        f"({summary.method}) refitted on the measured Δ of the sources trained so far "
        f"(strategy {settings['strategy']}). Rows never trained are predicted."
    ]
    return Section("prediction", "Prediction (active study)", blocks, intro)


def _matrices(summary: ActiveSummary) -> list[Block]:
    entries = summary.entries
    shown = np.where(entries["status"] == "predicted", entries["predicted"], entries["delta"])
    entries = entries.assign(shown=shown, hatched=(entries["status"] == "predicted").astype(float))
    limit = float(np.nanmax(np.abs(shown))) or 1.0
    blocks: list[Block] = []
    for model, mine in entries.groupby("model", sort=True):
        keys = ["source_task", "source_language"]
        matrix = mine.pivot_table("shown", keys, ["target_task", "target_language"], "first")
        hatched = mine.pivot_table("hatched", keys, ["target_task", "target_language"], "first")
        figure = transfer_matrix_figure(matrix, hatched, str(model), limit, "(pp)")
        status = mine.drop_duplicates(keys).set_index(keys)
        _mark_rows(figure, matrix.index, status)
        blocks.append(
            embed_figure(
                figure,
                id=f"fig-predicted-{slug(str(model))}",
                caption=(
                    f"{model}: measured Δ of the trained sources (rows marked ● with the round "
                    "that picked them) and of the check sources (◆, measured but never fitted); "
                    f"hatched rows are predicted by {summary.method} from the trained rows. "
                    f"Colours centred at 0 (±{limit:.1f} pp); outlined cells are MT-ML."
                ),
                alt=f"Predicted transfer matrix of {model}",
                toc=f"Predicted: {model}",
            )
        )
    return blocks


def _mark_rows(figure: MplFigure, index: pd.Index, status: pd.DataFrame) -> None:
    axes = figure.axes[0]
    labels = []
    for cell in index:
        state, step = status.loc[cell, "status"], int(status.loc[cell, "round"])
        mark = {"trained": f"● r{step} ", "check": "◆ "}.get(state, "")
        labels.append(mark + cell_label(*cell))
    axes.set_yticks(range(len(index)), labels)


def _picks_table(summary: ActiveSummary) -> Table:
    picks = summary.rounds
    rows = frame_rows(
        picks,
        [
            lambda r: number_cell(r["round"], digits=0),
            lambda r: text_cell(r["model"]),
            lambda r: text_cell(cell_label(r["source_task"], r["source_language"])),
            lambda r: number_cell(r["trained_per_model"], digits=0),
        ],
    )
    return Table(
        "active-picks",
        "The sources each round picked (round 0: the initial spread), per model.",
        [
            Column("round", True),
            Column("model"),
            Column("source"),
            Column("trained after", True, "sources of the model trained after this pick"),
        ],
        rows,
        toc="Picks per round",
    )


def _curve_blocks(summary: ActiveSummary) -> list[Block]:
    curve = summary.curve
    if curve.empty:
        return [
            Notice(
                "active-curve",
                "No error curve: no source is measured beyond the picks. Run the whole grid "
                "(sources: all) into the same output directory to get a check set.",
            )
        ]
    rows = frame_rows(
        curve,
        [
            lambda r: number_cell(r["round"], digits=0),
            lambda r: number_cell(r["trained_per_model"], digits=0),
            lambda r: number_cell(r["check_sources"], digits=0),
            lambda r: number_cell(r["check_mae"]),
            lambda r: number_cell(r["baseline_mae"]),
        ],
    )
    table = Table(
        "active-curve",
        f"MAE (pp) on the check sources of {summary.method} fitted on the sources trained up to "
        f"each round, beside the {BASELINE} baseline fitted on the same rows.",
        [
            Column("round", True),
            Column("trained per model", True),
            Column("check sources", True),
            Column(f"MAE {summary.method}", True),
            Column(f"MAE {BASELINE}", True),
        ],
        rows,
        toc="Error curve",
    )
    figure = MplFigure(figsize=(5.5, 3.2), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(curve["trained_per_model"], curve["check_mae"], "o-", label=summary.method)
    axes.plot(curve["trained_per_model"], curve["baseline_mae"], "s--", label=BASELINE)
    axes.set_xlabel("sources trained per model")
    axes.set_ylabel("MAE on the check sources (pp)")
    axes.legend(frameon=False, fontsize=8)
    return [
        embed_figure(
            figure,
            id="fig-active-curve",
            caption="Error curve: MAE on the check sources against the number of trained sources.",
            alt="MAE on the check sources against the number of trained sources",
            toc="Error curve",
        ),
        table,
    ]
