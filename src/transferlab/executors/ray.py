"""Run each job as a Ray task with the CPUs and GPUs the study asks for; results come back to
the driver, which alone writes the store (so workers need no shared filesystem)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from transferlab.config import ExecutorSettings
from transferlab.errors import UserError
from transferlab.jobs import JobInputs, JobOutcome, TrainResult, execute
from transferlab.plan import Job, TrainJob

log = logging.getLogger(__name__)


def read_folder(folder: Path) -> dict[str, bytes]:
    """Return every file under ``folder`` by its relative path."""
    return {
        str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()
    }


def write_folder(files: dict[str, bytes], folder: Path) -> None:
    """Write files returned by ``read_folder`` under ``folder``."""
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _run_remote(
    job: Job, blobs: dict[str, tuple[Any, str]], progress: bool, threads: int | None
) -> tuple:
    # Runs in a Ray worker: adapters arrive as bytes and leave as bytes, in a private temp dir.
    import ray

    with tempfile.TemporaryDirectory(prefix="transferlab-job-") as tmp:
        root = Path(tmp)
        if isinstance(job, TrainJob):
            result = execute(job, JobInputs(adapter_dir=root / "adapter"), progress, threads)
            return result, read_folder(result.adapter_dir)
        adapters = {}
        for key, (ref, digest) in blobs.items():
            write_folder(ray.get(ref), root / key)
            adapters[key] = (root / key, digest)
        return execute(job, JobInputs(adapters=adapters), progress, threads), None


class RayExecutor:
    """Submits jobs as Ray tasks; ``ray.init()`` locally, or joins ``settings.address``."""

    def __init__(self, settings: ExecutorSettings, progress: bool = True) -> None:
        try:
            import ray
        except ImportError:
            raise UserError(
                "executor.kind", "ray is not installed", "pip install 'transferlab[ray]'"
            ) from None
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            ray.init(address=settings.address, include_dashboard=False, log_to_driver=True)
        resources = ray.cluster_resources()
        limits = [
            resources.get(name, 0) / need
            for name, need in (("CPU", settings.num_cpus), ("GPU", settings.num_gpus))
            if need > 0
        ]
        if limits and min(limits) < 1:
            self.close()
            raise UserError(
                "executor",
                f"a job needs num_cpus={settings.num_cpus}, num_gpus={settings.num_gpus} but the "
                f"Ray cluster has {resources.get('CPU', 0)} CPUs, {resources.get('GPU', 0)} GPUs",
                "lower executor.num_cpus / num_gpus or add nodes",
            )
        self.capacity = max(1, int(min(limits))) if limits else max(1, int(resources["CPU"]))
        # Retries are the runner's (recorded in the store), never Ray's.
        self._remote = ray.remote(_run_remote).options(
            num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, max_retries=0
        )
        self.progress, self.threads = progress, settings.threads
        self._running: dict[Any, tuple[Job, JobInputs]] = {}

    def submit(self, job: Job, inputs: JobInputs) -> None:
        """Start ``job`` as a Ray task (adapters it reads are shipped through the object store)."""
        blobs = {
            key: (self._ray.put(read_folder(folder)), digest)
            for key, (folder, digest) in inputs.adapters.items()
        }
        ref = self._remote.remote(job, blobs, self.progress, self.threads)
        self._running[ref] = (job, inputs)

    def next_finished(self) -> tuple[Job, JobOutcome | Exception]:
        """Wait for any running task; return its job and result (adapters written locally)."""
        [ref], _ = self._ray.wait(list(self._running), num_returns=1)
        job, inputs = self._running.pop(ref)
        try:
            result, files = self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            return job, cause if isinstance(cause, Exception) else error
        except self._ray.exceptions.RayError as error:  # worker died (e.g. killed for memory)
            return job, error
        if isinstance(job, TrainJob):
            target = inputs.adapter_dir
            if target.exists():
                shutil.rmtree(target)
            write_folder(files, target)
            result = TrainResult(target, result.adapter_hash, result.metadata)
        return job, result

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
