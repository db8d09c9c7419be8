"""Predict unmeasured transfer from measured sources and recommend sources (pure functions).

`data` builds the long frame, `splits` chooses observed sources, `methods` predicts, `intervals`
and `scoring` judge the predictions, `evaluate` runs splits × methods, `recommend` ranks sources,
`active` chooses the next sources to train, `active_summary` sums up an active study and
`synthetic` generates a paper-shaped table; only `command` touches files.
"""

from transferlab.prediction.command import predict_command, recommend_command
from transferlab.prediction.evaluate import PredictionResult, evaluate_predictions
from transferlab.prediction.methods import METHODS
from transferlab.prediction.recommend import recommend_sources

__all__ = [
    "METHODS",
    "PredictionResult",
    "evaluate_predictions",
    "predict_command",
    "recommend_command",
    "recommend_sources",
]
