"""Metrics, registered by name (see ``registry``); importing the package registers them all.

Multiple choice: ``acc``, ``acc_norm`` (lm-eval 0.4.x). Generate, per item: ``exact_match``
(lm-eval semantics), ``rouge_l`` (every script), ``constraints_met`` (verifiable instruction
constraints); per corpus: ``chrf``, ``bleu`` (sacrebleu, as lm-eval).
"""

from transferlab.metrics import constraints, text  # noqa: F401  (registers the generate metrics)
from transferlab.metrics.choice import MULTIPLE_CHOICE, choose, item_metrics
from transferlab.metrics.registry import (
    METRICS,
    PRIMARY,
    Metric,
    check_options,
    get_metric,
    metric_names,
    register,
)

__all__ = [
    "METRICS",
    "MULTIPLE_CHOICE",
    "PRIMARY",
    "Metric",
    "check_options",
    "choose",
    "get_metric",
    "item_metrics",
    "metric_names",
    "register",
]
