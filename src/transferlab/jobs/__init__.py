"""Jobs: the protocol every job kind follows, and the kinds a study has (train, evaluate, align).

Job functions take a planned job and local paths and return a picklable result; they never touch
the store, so the driver alone commits (the Ray executor runs them in workers unchanged).
Importing this package registers the kinds; a new kind is a module here plus a ``register`` line.
"""

from transferlab.jobs.align import AlignKind, AlignResult, run_alignment
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
register(AlignKind())  # last: a study's extra measurement, after its transfer results

__all__ = [
    "KINDS",
    "AlignKind",
    "AlignResult",
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
    "run_alignment",
    "run_evaluation",
    "run_training",
]
