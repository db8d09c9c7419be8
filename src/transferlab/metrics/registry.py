"""Named metrics: a registered function per name, of one output type, per item or per corpus.

A multiple-choice metric maps (per-choice log-likelihoods, choices, gold) to a value; a generate
item metric maps ``(prediction, references, **options)`` to a value in [0, 1]; a corpus metric
maps ``(predictions, references_per_item, **options)`` to one value in [0, 1] (sacrebleu's
0–100 scores are divided by 100, so a Δ × 100 reads in the metric's usual points). Results carry
``metrics: {name: value}``; a task names its headline; adding a metric is one ``register`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from transferlab.errors import UserError, did_you_mean


@dataclass(frozen=True)
class Metric:
    """A named metric of one output type: its function, item or corpus level, its options."""

    name: str
    output_type: str  # "generate" for these; the signature of ``fn`` follows the output type
    fn: Callable[..., float]
    description: str
    level: Literal["item", "corpus"] = "item"
    options: tuple[str, ...] = ()  # keyword options a task file may set

    def score_items(self, prediction: str, references: Sequence[str], **options: Any) -> float:
        """Return the item-level value (item metrics only)."""
        return float(self.fn(prediction, list(references), **options))

    def score_corpus(
        self, predictions: Sequence[str], references: Sequence[Sequence[str]], **options: Any
    ) -> float:
        """Return the value over all items: the mean of item values, or the corpus statistic."""
        if self.level == "corpus":
            return float(self.fn(list(predictions), [list(r) for r in references], **options))
        values = [
            self.score_items(p, r, **options) for p, r in zip(predictions, references, strict=True)
        ]
        return sum(values) / len(values) if values else float("nan")


METRICS: dict[str, Metric] = {}
# The metric that fills the paper's ``score`` column, per output type (a generative task's is
# its headline).
PRIMARY: dict[str, str] = {"multiple_choice": "acc"}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the registry under its name and return it."""
    METRICS[metric.name] = metric
    return metric


def metric_names(output_type: str) -> tuple[str, ...]:
    """Return the names of the metrics of ``output_type``, in registration order."""
    return tuple(m.name for m in METRICS.values() if m.output_type == output_type)


def get_metric(name: str, where: str = "metric") -> Metric:
    """Return the registered metric ``name`` (UserError naming ``where`` if unknown)."""
    if name not in METRICS:
        raise UserError(where, f"unknown metric {name!r}{did_you_mean(name, list(METRICS))}",
                        f"use one of {', '.join(sorted(METRICS))}")  # fmt: skip
    return METRICS[name]


def check_options(metric: Metric, options: dict[str, Any], where: str) -> None:
    """Raise UserError for an option ``metric`` does not take."""
    for key in options:
        if key not in metric.options:
            raise UserError(where, f"metric {metric.name} has no option {key!r}"
                            + did_you_mean(key, list(metric.options)),
                            f"use {', '.join(metric.options) or 'no options'}")  # fmt: skip
