"""Run jobs one after another in this process (the default, and what a laptop wants)."""

from __future__ import annotations

from collections import deque
from typing import Any

from transferlab.jobs import Job, JobInputs, execute


class LocalExecutor:
    """Runs each job in-process when the runner asks for the next result."""

    capacity = 1

    def __init__(self, progress: bool = True, threads: int | None = None) -> None:
        self.progress, self.threads = progress, threads
        self._queue: deque[tuple[Job, JobInputs]] = deque()

    def submit(self, job: Job, inputs: JobInputs) -> None:
        """Queue ``job``; it runs in ``next_finished``."""
        self._queue.append((job, inputs))

    def next_finished(self) -> tuple[Job, Any]:
        """Return the oldest queued job with its result or the exception it raised."""
        job, inputs = self._queue.popleft()
        try:
            return job, execute(job, inputs, self.progress, self.threads)
        except Exception as error:  # a failed job is recorded and retried; the run goes on
            return job, error

    def close(self) -> None:
        """Nothing to release."""
