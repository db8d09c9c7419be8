"""Generations → extracted answers → metrics, per item and per target cell."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from transferlab.generation.engine import GenerationRequest, generate
from transferlab.grid import Cell
from transferlab.metrics import Metric
from transferlab.models import LoadedModel
from transferlab.scoring.adapters import ModelState
from transferlab.tasks.generative import GenerationSettings, MetricSpec, Pipeline
from transferlab.tasks.types import GenItem


def _slots(settings: GenerationSettings) -> Iterator[tuple[str, Pipeline, MetricSpec, Metric]]:
    """Yield (value name, pipeline, metric spec, registered metric) for every value of a task."""
    from transferlab.metrics import get_metric

    keys = iter(settings.metric_keys())
    for pipeline in settings.pipelines:
        for spec in settings.metrics:
            yield next(keys), pipeline, spec, get_metric(spec.name)


def _metric_values(
    settings: GenerationSettings, extracted: Mapping[str, str], item: GenItem
) -> dict[str, float]:
    return {
        key: metric.score_items(
            extracted[pipeline.name], list(item.references), **dict(spec.options)
        )
        for key, pipeline, spec, metric in _slots(settings)
        if metric.level == "item"
    }


def item_result(
    state: str, cell: Cell, item: GenItem, text: str, settings: GenerationSettings
) -> dict[str, Any]:
    """Return one items.jsonl line: the raw generation, what each pipeline extracts, the metrics."""
    extracted = {p.name: p.apply(text) for p in settings.pipelines}
    return {
        "model_state": state,
        "task": cell.task,
        "language": cell.language,
        "doc_id": item.doc_id,
        "generation": text,
        "extracted": extracted[settings.pipelines[0].name] if len(extracted) == 1 else extracted,
        "references": list(item.references),
    } | _metric_values(settings, extracted, item)


def cell_scores(
    results: Sequence[dict[str, Any]], items: Sequence[GenItem], settings: GenerationSettings
) -> dict[str, float]:
    """Return one cell's scores: item metrics averaged, corpus metrics over all its items."""
    scores: dict[str, float] = {}
    for key, pipeline, spec, metric in _slots(settings):
        if metric.level == "item":
            scores[key] = sum(r[key] for r in results) / len(results)
        else:
            answers = [pipeline.apply(r["generation"]) for r in results]
            scores[key] = metric.score_corpus(answers, [list(i.references) for i in items],
                                              **dict(spec.options))  # fmt: skip
    return scores


def evaluate_generative(
    loaded: LoadedModel,
    states: Sequence[ModelState],
    targets: Mapping[Cell, Sequence[GenItem]],
    settings: Mapping[Cell, GenerationSettings],
    batch_size: int = 16,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (items.jsonl lines, scores rows) of every state on every generative target."""
    cells = [cell for cell, items in targets.items() for _ in items]
    items = [item for items in targets.values() for item in items]
    requests = [GenerationRequest(item.context, settings[cell].until, settings[cell].max_new_tokens)
                for cell, item in zip(cells, items, strict=True)]  # fmt: skip
    texts = generate(loaded, states, requests, batch_size, progress)
    lines, scores = [], []
    for state in states:
        by_cell: dict[Cell, list[dict[str, Any]]] = {cell: [] for cell in targets}
        for cell, item, text in zip(cells, items, texts[state.name], strict=True):
            by_cell[cell].append(item_result(state.name, cell, item, text, settings[cell]))
        for cell, results in by_cell.items():
            lines.extend(results)
            scores.append({"model_state": state.name, "task": cell.task, "language": cell.language,
                           "n": len(results)} | cell_scores(results, targets[cell], settings[cell]))  # fmt: skip
    return lines, scores
