"""Checks of a parsed study that span its keys: models, tasks × languages, sources, active loop."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from transferlab.analysis.columns import VARIANT_KEYS
from transferlab.errors import UserError, did_you_mean
from transferlab.grid import Cell

if TYPE_CHECKING:
    from transferlab.config import ActiveSettings, AlignmentSettings, Study

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def check_study(study: Study) -> None:
    """Raise UserError for the first inconsistency between the study's keys (one line each)."""
    where = str(study.origin)
    cap, least = study.train_data.items_per_source, study.training.min_train_items
    if cap is not None and cap < least:
        raise UserError(
            where,
            f"train_data.items_per_source is {cap}, below training.min_train_items ({least})",
            "raise the cap or lower training.min_train_items",
        )
    names = [spec.display_name for spec in study.models]
    for spec in study.models:
        _check_model_ref(spec.ref, where)
        if names.count(spec.display_name) > 1:
            raise UserError(
                where, f"models: two models are named {spec.display_name!r}", "give each a name:"
            )
    specs = study.task_specs  # raises UserError for unknown tasks
    for name, spec in specs.items():
        for lang in study.languages:
            if lang not in spec.languages:
                raise UserError(
                    where,
                    f"task {name!r} has no language {lang!r}{did_you_mean(lang, spec.languages)}",
                    f"{name} offers: {', '.join(spec.languages)}",
                )
    if study.task_groups:  # the analysis's own check, so a run cannot end in a rejected report
        from transferlab.analysis.groups import check_task_groups

        check_task_groups(study.task_groups, specs, f"{where}: task_groups")
    cells = set(study.cells)
    try:
        sources = study.source_list
    except ValueError as error:
        raise UserError(where, f"sources: {error}", "write sources as task:language") from None
    if study.active is not None:
        _check_active(study.active, cells, where)
    for source in sources if isinstance(study.sources, list) else []:
        for cell, weight in source.parts:
            if cell not in cells:
                raise UserError(
                    where,
                    f"source {str(cell)!r} is not a cell of the grid",
                    "list sources as task:language with a task and language of the study",
                )
            if weight <= 0:
                raise UserError(where, f"source {source}: weights must be > 0", "fix the weight")
        if not source.is_single and not source.drawn:
            raise UserError(
                where,
                f"source {source} is a mixture without counts",
                "write a mixture as {parts: {task:lang: count, ...}} (or add total: N)",
            )
    if not sources:
        raise UserError(where, "sources: the list is empty", "list at least one task:language")
    for key in study.training_axes:
        if key not in VARIANT_KEYS:  # results tell variants apart by these columns only
            raise UserError(
                where,
                f"training.{key}: only {' and '.join(VARIANT_KEYS)} can take a list of values "
                "in one study",
                f"give {key} one value (run one study per {key})",
            )
    study.training_variants  # noqa: B018 -- raises UserError for a bad axis value
    if study.alignment is not None:
        _check_alignment(study.alignment, study.languages, where)


def _check_alignment(settings: AlignmentSettings, languages: list[str], where: str) -> None:
    """Raise UserError for alignment languages the bundled dictionary lacks or a bad template."""
    from transferlab.alignment.dictionaries import bundled_concepts

    known = bundled_concepts().languages
    chosen = settings.languages or languages
    for language in chosen:
        if language not in known:
            raise UserError(where, f"alignment.languages: the bundled dictionary has no entries "
                            f"for {language!r}{did_you_mean(language, known)}",
                            f"choose from {', '.join(known)}")  # fmt: skip
    if len(chosen) < 2:
        raise UserError(where, "alignment.languages: alignment needs two or more languages",
                        "list them under alignment.languages")  # fmt: skip
    if settings.template.count("{entry}") != 1:
        raise UserError(where, f"alignment.template: {settings.template!r} must hold {{entry}} "
                        "once", 'write e.g. "Word: {entry}"')  # fmt: skip
    if isinstance(settings.layers, list) and any(layer < 0 for layer in settings.layers):
        raise UserError(where, "alignment.layers: a layer index is negative",
                        "use 0 (embeddings) up to the model's number of layers")  # fmt: skip


def _check_active(active: ActiveSettings, cells: set[Cell], where: str) -> None:
    field = "sources.active"
    if active.batch > active.budget:
        raise UserError(where, f"{field}.batch {active.batch} exceeds the budget "
                        f"{active.budget}", "use batch ≤ budget")  # fmt: skip
    if active.first > active.budget:
        raise UserError(where, f"{field}.initial {active.first} exceeds the budget "
                        f"{active.budget}", "use initial ≤ budget")  # fmt: skip
    if active.first < 2:
        raise UserError(where, f"{field}.initial is {active.first}: a refit needs at least 2 "
                        "trained sources", "use initial ≥ 2")  # fmt: skip
    if active.budget > len(cells):
        raise UserError(where, f"{field}.budget {active.budget} exceeds the {len(cells)} cells "
                        "of the grid", f"use budget ≤ {len(cells)}")  # fmt: skip
    for entry in active.targets:
        try:
            cell = Cell.parse(entry)
        except ValueError:
            cell = None
        if cell not in cells:
            raise UserError(where, f"{field}.targets: {entry!r} is not a cell of the grid",
                            "name targets as task:language of the study")  # fmt: skip
    if active.strategy == "greedy" and not active.targets:
        raise UserError(where, f"{field}.strategy greedy needs targets",
                        "add targets: [task:language, ...]")  # fmt: skip


def _check_model_ref(ref: str, where: str) -> None:
    """Raise UserError unless ``ref`` can name a model (without downloading or converting it)."""
    from transferlab.models import PRESETS

    if ref in PRESETS or Path(ref).expanduser().exists() or _HF_ID.match(ref):
        return
    raise UserError(
        where,
        f"model {ref!r} is not a preset, an existing path or a Hugging Face id"
        + did_you_mean(ref, list(PRESETS)),
        f"presets: {', '.join(PRESETS)}",
    )
