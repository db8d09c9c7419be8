"""Metrics: registered functions that turn one model state's answer to one item into a number.

A metric belongs to an output type (``multiple_choice`` now; ``generate`` next) and is computed
per item; a unit's score is the mean over its items. Results carry ``metrics: {name: value}``;
a task names its headline metric, and each output type names the acc-like metric that fills the
paper's ``score`` column (``score_norm`` is the task's headline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# A multiple-choice metric: (per-choice log-likelihoods, choice texts, gold index) → value.
ChoiceMetric = Callable[[Sequence[float], Sequence[str], int], float]


@dataclass(frozen=True)
class Metric:
    """A registered per-item metric of one output type."""

    name: str
    output_type: str
    fn: ChoiceMetric
    description: str


METRICS: dict[str, Metric] = {}
# The metric that fills the paper's ``score`` column, per output type.
PRIMARY: dict[str, str] = {"multiple_choice": "acc"}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the registry and return it."""
    METRICS[metric.name] = metric
    return metric


def metric_names(output_type: str) -> tuple[str, ...]:
    """Return the names of the metrics of ``output_type``, in registration order."""
    return tuple(m.name for m in METRICS.values() if m.output_type == output_type)


def item_metrics(
    output_type: str, loglikelihoods: Sequence[float], choices: Sequence[str], gold: int
) -> dict[str, float]:
    """Return every metric of ``output_type`` for one answer."""
    return {
        m.name: m.fn(loglikelihoods, choices, gold)
        for m in METRICS.values()
        if m.output_type == output_type
    }


def choose(loglikelihoods: Sequence[float], choices: Sequence[str]) -> tuple[int, int]:
    """Return (argmax of log-likelihood, argmax of log-likelihood per character of the choice).

    The normalised choice is lm-evaluation-harness's ``acc_norm``: 0.4.x divides by
    ``len(choice)`` in characters (its byte-length variant is reported as ``acc_bytes``).
    Ties go to the first choice, as with ``numpy.argmax``.
    """
    lls = np.asarray(loglikelihoods, dtype=np.float64)
    lengths = np.array([float(len(c)) for c in choices])
    return int(np.argmax(lls)), int(np.argmax(lls / lengths))


def _acc(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int) -> int:
    return int(choose(loglikelihoods, choices)[0] == gold)


def _acc_norm(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int) -> int:
    return int(choose(loglikelihoods, choices)[1] == gold)


register(Metric("acc", "multiple_choice", _acc, "1 if the most likely choice is the gold one"))
register(
    Metric(
        "acc_norm",
        "multiple_choice",
        _acc_norm,
        "1 if the most likely choice per character is the gold one (lm-eval 0.4.x)",
    )
)
