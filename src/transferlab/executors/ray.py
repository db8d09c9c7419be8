"""Run each job as a Ray task with the CPUs and GPUs the study asks for; results come back to
the driver, which alone writes the store (so workers need no shared filesystem)."""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from transferlab.config import ExecutorSettings
from transferlab.errors import UserError
from transferlab.jobs import Job, JobInputs, execute, kind_of

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0  # to open a TCP connection to a cluster address before ray.init


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
    job: Job,
    blobs: dict[str, tuple[Any, str]],
    writes: bool,
    progress: bool,
    threads: int | None,
) -> tuple:
    # Runs in a Ray worker: the folders a job reads arrive as bytes, and the folder it writes
    # leaves as bytes, all in a private temp dir.
    import ray

    with tempfile.TemporaryDirectory(prefix="transferlab-job-") as tmp:
        root = Path(tmp)
        adapters = {}
        for key, (ref, digest) in blobs.items():
            write_folder(ray.get(ref), root / key)
            adapters[key] = (root / key, digest)
        output = root / "output" if writes else None
        result = execute(job, JobInputs(output, adapters), progress, threads)
        return result, read_folder(output) if output is not None else None


def _connect(ray: Any, address: str | None) -> None:
    """``ray.init`` a local instance, or join the cluster at ``address`` (UserError if not)."""
    fix = (
        "check it runs there (`ray status --address ADDRESS`); for a cluster with token "
        "authentication set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or "
        "~/.ray/auth_token)"
    )
    unreachable = _unreachable(address) if address else None
    if unreachable:
        # Ray itself retries an address where nothing listens for many minutes.
        raise UserError("executor.address", f"cannot reach {address}: {unreachable}", fix)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=True)
    except (ConnectionError, RuntimeError) as error:
        if address is None:
            raise
        reason = str(error).strip().splitlines()[0]
        cause = error.__cause__ or error.__context__
        if cause is not None and "Authentication" in type(cause).__name__ + str(cause):
            reason += " (the cluster asks for an authentication token)"
        raise UserError(
            "executor.address", f"cannot join the Ray cluster at {address}: {reason}", fix
        ) from None


def _unreachable(address: str) -> str | None:
    """Return why nothing answers at a ``host:port`` (or ``ray://host:port``) address, or None.

    ``auto`` and other forms are left to Ray.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__
    return None


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
            _connect(ray, settings.address)
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
        writes = inputs.output_dir is not None
        ref = self._remote.remote(job, blobs, writes, self.progress, self.threads)
        self._running[ref] = (job, inputs)

    def next_finished(self) -> tuple[Job, Any]:
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
        target = inputs.output_dir
        if target is not None:
            if target.exists():
                shutil.rmtree(target)
            write_folder(files, target)
            result = kind_of(job).relocated(result, target)
        return job, result

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
