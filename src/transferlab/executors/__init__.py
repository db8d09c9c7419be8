"""Executors run planned jobs and hand their results back to the driver, nothing else.

An executor has ``capacity`` (jobs it runs at once), ``submit(job, inputs)`` and
``next_finished() -> (job, result or exception)``; the runner claims, commits and retries.
Executors know jobs only through ``jobs.execute`` and the job's kind, never a kind by name.
"""

from __future__ import annotations

from typing import Any, Protocol

from transferlab.config import ExecutorSettings
from transferlab.jobs import Job, JobInputs


class Executor(Protocol):
    """Runs jobs; results come back to the process that submitted them."""

    capacity: int

    def submit(self, job: Job, inputs: JobInputs) -> None:
        """Start ``job`` (or queue it)."""

    def next_finished(self) -> tuple[Job, Any]:
        """Return the next finished job with its result, or the exception it failed with."""

    def close(self) -> None:
        """Release what the executor started."""


def make_executor(settings: ExecutorSettings, progress: bool = True) -> Executor:
    """Return the executor ``settings.kind`` names."""
    if settings.kind == "ray":
        from transferlab.executors.ray import RayExecutor

        return RayExecutor(settings, progress)
    from transferlab.executors.local import LocalExecutor

    return LocalExecutor(progress, settings.threads)
