"""Metrics for generated text, registered by name (see ``registry``).

Item level: ``exact_match`` (lm-eval semantics), ``rouge_l`` (every script), ``constraints_met``
(verifiable instruction constraints). Corpus level: ``chrf``, ``bleu`` (sacrebleu, as lm-eval).
Importing the package registers them.
"""

from transferlab.metrics import constraints, text  # noqa: F401  (registers the metrics)
from transferlab.metrics.registry import METRICS, Metric, check_options, get_metric, register

__all__ = ["METRICS", "Metric", "check_options", "get_metric", "register"]
