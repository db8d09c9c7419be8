"""Multiple-choice metrics over per-choice log-likelihoods, as lm-evaluation-harness 0.4.x has them.

A multiple-choice metric maps (per-choice log-likelihoods, choice texts, gold index) to a value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transferlab.metrics.registry import METRICS, Metric, register

MULTIPLE_CHOICE = "multiple_choice"


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


register(Metric("acc", MULTIPLE_CHOICE, _acc, "1 if the most likely choice is the gold one"))
register(
    Metric(
        "acc_norm",
        MULTIPLE_CHOICE,
        _acc_norm,
        "1 if the most likely choice per character is the gold one (lm-eval 0.4.x)",
    )
)
