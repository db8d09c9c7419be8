"""Holes in the model × source × target grid: fatal where means would compare unlike sets."""

from __future__ import annotations

import logging

import pandas as pd

from transferlab.analysis.columns import VARIANT_KEYS
from transferlab.errors import UserError

logger = logging.getLogger(__name__)


def check_grid(cells: pd.DataFrame, where: str) -> int:
    """Return the number of holes in the (model × source × target) grid.

    A source missing some of the targets its model was evaluated on is a UserError (its means
    would compare unlike sets); whole sources or targets missing for a model are holes the
    analysis can live with, reported as a warning. A table whose training varies (variant
    columns) has one grid per variant: an ablation may train a subset of the sources.
    """
    variants = [c for c in VARIANT_KEYS if c in cells.columns]
    if variants:
        blocks = cells.groupby(variants, dropna=False, sort=False)
        return sum(_check_one_grid(block, where) for _, block in blocks)
    return _check_one_grid(cells, where)


def _check_one_grid(cells: pd.DataFrame, where: str) -> int:
    for model, block in cells.groupby("model", sort=True):
        targets = block.groupby(["target_task", "target_language"]).ngroups
        per_source = block.groupby(["source_task", "source_language"]).size()
        short = per_source[per_source < targets]
        if len(short):
            (task, language), count = short.index[0], int(short.iloc[0])
            seen = set(zip(block["target_task"], block["target_language"], strict=True))
            mine = block[(block["source_task"] == task) & (block["source_language"] == language)]
            have = set(zip(mine["target_task"], mine["target_language"], strict=True))
            example = ":".join(sorted(seen - have)[0])
            raise UserError(
                where,
                f"model {model!r}, source {task}:{language} has {count} of the {targets} "
                f"targets its model was evaluated on (missing e.g. {example}); "
                f"{len(short)} source(s) are incomplete",
                "finish the run (`transferlab run` resumes) or remove that source's rows",
            )
    n_models = cells["model"].nunique()
    n_sources = cells.groupby(["source_task", "source_language"]).ngroups
    n_targets = cells.groupby(["target_task", "target_language"]).ngroups
    holes = n_models * n_sources * n_targets - len(cells)
    if holes:
        logger.warning(
            "%s: the grid has %d hole(s) among %d models x %d sources x %d targets "
            "(sources or targets missing for some models); the analyses use the %d rows present",
            where,
            holes,
            n_models,
            n_sources,
            n_targets,
            len(cells),
        )
    return holes
