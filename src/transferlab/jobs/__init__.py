"""Jobs: the protocol every job kind follows, and the two kinds a study has (train, evaluate).

Job functions take a planned job and local paths and return a picklable result; they never touch
the store, so the driver alone commits (the Ray executor runs them in workers unchanged).
Importing this package registers the kinds; a new kind is a module here plus a ``register`` line.
"""

from transferlab.jobs.base import (
    KINDS,
    Job,
    JobInputs,
    JobKind,
    KindStatus,
    execute,
    kind_of,
    register,
)
from transferlab.jobs.evaluate import EvalKind, EvalResult, run_evaluation
from transferlab.jobs.train import TrainKind, TrainResult, run_training

# Registration order is the order of status lines and timings: trainings come first.
register(TrainKind())
register(EvalKind())

__all__ = [
    "KINDS",
    "EvalKind",
    "EvalResult",
    "Job",
    "JobInputs",
    "JobKind",
    "KindStatus",
    "TrainKind",
    "TrainResult",
    "execute",
    "kind_of",
    "register",
    "run_evaluation",
    "run_training",
]
