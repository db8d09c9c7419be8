"""Run a study to the end: plan → skip what is done → execute the rest → export → report.

Safe to kill at any moment: a job's results and its ``done`` mark are committed together, a
training resumes from its last epoch checkpoint, and the next run redoes only what is missing.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transferlab.config import Study, load_study
from transferlab.conversion import NotPrepared
from transferlab.errors import UserError
from transferlab.executors import Executor, make_executor
from transferlab.jobs import EvalResult, JobInputs, TrainResult
from transferlab.plan import BASE, Job, Plan, TrainJob, evaluation_jobs, plan_study
from transferlab.store import Store

log = logging.getLogger(__name__)

POLL_S = 2.0  # how often to look again at jobs another live run holds


@dataclass
class RunOutcome:
    """What a run did: the summary the CLI prints and how many jobs failed."""

    summary: str
    failed: int
    out_dir: Path
    timings: dict[str, float] = field(default_factory=dict)


def failure_reason(error: BaseException) -> str:
    """Return a one-line reason for a failed job (type, first line, out-of-memory marked)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if isinstance(error, MemoryError) or "outofmemory" in reason.lower().replace(" ", ""):
        reason = f"out of memory — {reason}"
    return reason[:500]


def check_output_dir(out_dir: Path) -> None:
    """Raise UserError unless ``out_dir`` is, or can be created as, a writable directory."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(out_dir, "output directory exists and is not a directory", "use --out")
    probe = out_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(
            out_dir, f"output directory cannot be created in {probe}", "use a writable --out"
        )


def _prepare(
    study_path: Path | str,
    out_dir: Path | str | None,
    executor: str | None,
    overrides: list[str] | tuple[str, ...],
) -> Study:
    extra = [f"executor.kind={executor}"] if executor else []
    study = load_study(study_path, [*overrides, *extra])
    if out_dir is not None:
        study.out_dir = Path(out_dir)
    study.out_dir = study.resolved_out_dir
    check_output_dir(study.out_dir)
    from transferlab.models import resolve_model

    for spec in study.models:  # convert presets and GGUF files once, before planning needs them
        resolve_model(spec.ref)
    if study.executor.kind == "local":  # Ray jobs run where the devices are, not here
        from transferlab.models import check_dtype_device

        try:
            check_dtype_device(study.evaluation.dtype, study.evaluation.device)
        except UserError as error:  # name the study's key, not a command-line flag
            raise UserError(study.origin, f"evaluation: {error.what}", error.fix) from None
    return study


class _Driver:
    """Claims, executes, commits and retries jobs until every one is done or out of attempts."""

    def __init__(self, plan: Plan, store: Store, executor: Executor, progress: bool) -> None:
        self.plan, self.store, self.executor = plan, store, executor
        self.retries = plan.study.executor.retries
        self.attempts: Counter[str] = Counter()
        self.exhausted: dict[str, Job] = {}
        self.wall = {"train": 0.0, "evaluate": 0.0}
        self.cpu = {"train": 0.0, "evaluate": 0.0}  # this process's CPU: local jobs only
        self.finished = 0
        self.bar = self._progress_bar() if progress else None

    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm

        done = set(self.store.adapters())
        total = sum(j.key not in done for j in self.plan.train_jobs)
        total += len(evaluation_jobs(self.plan, self.store.scores()))
        return tqdm(total=total, desc="study", unit="job", position=0, dynamic_ncols=True)

    def todo(self) -> list[Job]:
        """Return the jobs that can run now: baselines, trainings, then ready evaluations."""
        adapters = self.store.adapters()
        settled = set(adapters) | set(self.exhausted)
        trainings = [
            j for j in self.plan.train_jobs if j.key not in adapters and j.key not in self.exhausted
        ]
        evaluations = [
            j
            for j in evaluation_jobs(self.plan, self.store.scores(), adapters, settled)
            if j.key not in self.exhausted
        ]
        baselines = [j for j in evaluations if j.seed is None]
        return baselines + trainings + [j for j in evaluations if j.seed is not None]

    def run(self) -> None:
        """Run rounds of ready jobs until none is left."""
        previous: set[str] = set()
        while jobs := self.todo():
            keys = {j.key for j in jobs}
            if keys == previous:  # nothing changed in a whole round: do not spin
                log.error("jobs made no progress: %s", ", ".join(j.label for j in jobs))
                break
            previous = keys
            self._drain(jobs)
        if self.bar is not None:
            self.bar.close()

    def _inputs(self, job: Job) -> JobInputs:
        if isinstance(job, TrainJob):
            return JobInputs(adapter_dir=self.store.staging_dir(job.key) / "adapter")
        adapters = self.store.adapters()
        states = {u.state for u in job.units if u.state != BASE}
        return JobInputs(adapters={k: adapters[k][:2] for k in states})

    def _drain(self, jobs: list[Job]) -> None:
        queue = deque(jobs)
        running: dict[str, float] = {}
        try:
            while queue or running:
                for job in list(queue):
                    if len(running) >= self.executor.capacity:
                        break
                    units = [u.key for u in getattr(job, "units", ())]
                    state = self.store.claim(job.key, job.kind, job.label, units)
                    if state == "busy":
                        continue
                    queue.remove(job)
                    if state == "claimed":
                        log.info("start: %s", job.label)
                        if self.bar is not None:
                            self.bar.set_postfix_str(job.label)
                        running[job.key] = time.perf_counter()
                        self.executor.submit(job, self._inputs(job))
                    elif self.bar is not None:
                        self.bar.update(1)  # another run finished it meanwhile
                if not running:
                    if queue:
                        time.sleep(POLL_S)  # the rest is held by another live run
                    continue
                cpu = time.process_time()
                job, outcome = self.executor.next_finished()
                seconds = time.perf_counter() - running.pop(job.key)
                self.wall[job.kind] += seconds
                self.cpu[job.kind] += time.process_time() - cpu
                if isinstance(outcome, Exception):
                    self._failed(job, outcome, queue)
                elif self._commit(job, outcome):
                    log.info("done: %s (%.1f s)", job.label, seconds)
                    self._tick()
        except BaseException:
            for key in running:  # interrupted (Ctrl-C): hand the leases back at once
                self.store.release(key)
            raise

    def _commit(self, job: Job, outcome: TrainResult | EvalResult) -> bool:
        if isinstance(outcome, TrainResult):
            return self.store.commit_adapter(
                job.key,
                outcome.adapter_dir,
                job.adapter_name,
                outcome.adapter_hash,
                outcome.metadata,
            )
        return self.store.commit_scores(job.key, outcome.scores, outcome.items)

    def _failed(self, job: Job, error: Exception, queue: deque) -> None:
        reason = failure_reason(error)
        self.store.fail(job.key, reason)
        self.attempts[job.key] += 1
        if self.attempts[job.key] <= self.retries:
            log.warning("failed (will retry): %s — %s", job.label, reason)
            queue.appendleft(job)
        else:
            log.error("failed: %s — %s", job.label, reason)
            self.exhausted[job.key] = job
            self._tick()

    def _tick(self) -> None:
        self.finished += 1
        if self.bar is not None:
            self.bar.update(1)


def _export(plan: Plan, store: Store, out: Path) -> str:
    from transferlab.exports import per_seed_table, write_items
    from transferlab.fileio import write_csv

    per_seed = per_seed_table(plan, store.scores())
    write_csv(per_seed, out / "results_per_seed.csv")
    write_items(plan, store, out / "items.csv.gz")
    if per_seed.empty:
        log.warning("no adapter has been scored yet: no results.csv and no transfer summary")
        (out / "results.csv").unlink(missing_ok=True)  # it would describe another study
        return ""
    try:
        from transferlab.analysis import read_results, run_analysis
        from transferlab.analysis.command import export_results
    except ImportError as error:
        log.warning("analysis is not available (%s); results.csv and the summary skipped", error)
        return ""
    export_results(out / "results_per_seed.csv", out / "results.csv")
    regimes = run_analysis(read_results(out)).tables["regimes"]
    return regimes.to_string(index=False, float_format=lambda x: f"{x:.2f}")


def _report(out: Path) -> str:
    try:
        from transferlab.report import write_report
    except ImportError as error:
        log.warning("the report module is not available (%s); report.html skipped", error)
        return ""
    return str(write_report(out, None))


def _execute(plan: Plan, store: Store, executor: Executor, progress: bool) -> _Driver:
    try:
        driver = _Driver(plan, store, executor, progress)
        driver.run()
    finally:
        executor.close()
    return driver


def run_study(
    study: Path | str,
    out_dir: Path | str | None = None,
    executor: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    progress: bool = True,
) -> RunOutcome:
    """Run the study at ``study`` to the end and return the summary and the number failed."""
    from transferlab.exports import run_info
    from transferlab.fileio import write_json

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    config = _prepare(study, out_dir, executor, overrides)
    plan = plan_study(config)
    if config.executor.kind == "local":
        import peft  # noqa: F401  (importing torch and transformers is preparation, not a job)
    timings = {"prepare_s": round(time.perf_counter() - t0, 3)}
    out = config.resolved_out_dir
    # Connect first (a Ray cluster may be unreachable): a run that cannot start writes nothing.
    executor = make_executor(config.executor, progress)
    try:
        store = Store(out)
    except BaseException:
        executor.close()
        raise
    try:
        driver = _execute(plan, store, executor, progress)
        timings["train_s"] = round(driver.wall["train"], 3)
        timings["evaluate_s"] = round(driver.wall["evaluate"], 3)
        if config.executor.kind == "local":
            timings["train_cpu_s"] = round(driver.cpu["train"], 3)
            timings["evaluate_cpu_s"] = round(driver.cpu["evaluate"], 3)
        t1 = time.perf_counter()

        def write_info() -> None:  # before the report (it reads it) and after (final timings)
            extra = {
                "started_at": started_at,
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "wall_time_s": round(time.perf_counter() - t0, 3),
                "executor": config.executor.kind,
                "timings": timings,
                "job_time_s": _job_time(store),
            }
            write_json(run_info(plan, _job_counts(plan, store), extra), out / "run_info.json")

        write_info()
        table = _export(plan, store, out)
        report = _report(out) if (out / "results.csv").exists() else ""
        timings["analysis_s"] = round(time.perf_counter() - t1, 3)
        write_info()
    finally:
        store.close()
    failed = list(driver.exhausted.values())
    lines = [
        f"Study {config.name}: {driver.finished} job(s) finished this run, "
        f"{len(failed)} failed, {time.perf_counter() - t0:.0f} s",
    ]
    lines += [f"  failed: {job.label}" for job in failed]
    if table:
        lines += ["", "Transfer by regime (Δ in pp):", table]
    if (out / "results.csv").exists():
        lines += ["", f"Results: {out / 'results.csv'} (per seed: results_per_seed.csv)"]
    if report:
        lines.append(f"Report: {report}")
    return RunOutcome("\n".join(lines), len(failed), out, timings)


@dataclass
class Tally:
    """Where a study stands, from its plan and its store."""

    trainings: Counter[str]  # done / running / failed / pending
    scored: int  # evaluation units with committed scores
    units: int
    evaluations_done: int  # evaluation jobs that committed units of this plan
    evaluations_pending: int
    failed: list[dict[str, Any]]
    running: list[dict[str, Any]]


def tally(plan: Plan, store: Store) -> Tally:
    """Return counts of done, running, failed and pending jobs of ``plan`` in ``store``."""
    records, adapters, job_of = store.jobs(), store.adapters(), store.unit_jobs()
    unscored = {u.key for u in plan.units if u.key not in job_of}
    trainings: Counter[str] = Counter()
    failed, running = [], []
    for job in plan.train_jobs:
        record = records.get(job.key)
        status = "done" if job.key in adapters else record.status if record else "pending"
        trainings[status] += 1
    for record in records.values():
        relevant = (
            record.key in {j.key for j in plan.train_jobs} and record.key not in adapters
            if record.kind == "train"
            else bool(unscored.intersection(record.units))
        )
        entry = {"key": record.key, "kind": record.kind, "label": record.label}
        if relevant and record.status == "failed":
            failed.append({**entry, "error": record.error, "attempts": record.attempts})
        elif relevant and record.status == "running":
            running.append({**entry, "owner": record.owner})
    return Tally(
        trainings,
        len(plan.units) - len(unscored),
        len(plan.units),
        len({job_of[u.key] for u in plan.units if u.key in job_of}),
        len(evaluation_jobs(plan, job_of)),
        failed,
        running,
    )


def _job_time(store: Store) -> dict[str, float]:
    """Return the wall seconds of every done job by kind, summed over all runs of the study.

    ``timings`` covers this run only (a rerun with nothing to do spends seconds); this is what
    the results on disk cost to compute.
    """
    seconds: Counter[str] = Counter()
    for record in store.jobs().values():
        if record.status == "done" and record.wall_s is not None:
            seconds[record.kind] += record.wall_s
    return {kind: round(value, 3) for kind, value in sorted(seconds.items())}


def _job_counts(plan: Plan, store: Store) -> dict[str, Any]:
    t = tally(plan, store)
    return {
        "done": t.trainings["done"] + t.evaluations_done,
        "pending": len(plan.train_jobs) - t.trainings["done"] + t.evaluations_pending,
        "failed": [{k: f[k] for k in ("key", "kind", "error")} for f in t.failed],
    }


def study_status(
    study: Path | str,
    out_dir: Path | str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> str:
    """Return a readable account of a study's done, running, pending and failed jobs."""
    config = load_study(study, overrides)
    out = Path(out_dir) if out_dir is not None else config.resolved_out_dir
    try:
        plan = plan_study(config)
    except NotPrepared as missing:  # status never converts: nothing of this model can have run
        return f"Study {config.name} ({out}): model {missing}"
    store = Store.open_existing(out)
    if store is None:
        return (
            f"Study {config.name} ({out}): nothing run yet — {len(plan.train_jobs)} training "
            f"and {len(evaluation_jobs(plan, {}))} evaluation job(s) pending"
        )
    try:
        t = tally(plan, store)
    finally:
        store.close()
    n = len(plan.train_jobs)
    lines = [
        f"Study {config.name} ({out})",
        f"  training:   {t.trainings['done']} done, {t.trainings['running']} running, "
        f"{t.trainings['failed']} failed, {t.trainings['pending']} pending (of {n})",
        f"  evaluation: {t.scored} of {t.units} (model state, cell) scores done in "
        f"{t.evaluations_done} job(s); {t.evaluations_pending} job(s) to go",
    ]
    lines += [f"  running: {r['label']} (held by {r['owner']})" for r in t.running]
    lines += [
        f"  failed:  {f['label']} — {f['error']} ({f['attempts']} attempt(s))" for f in t.failed
    ]
    if t.trainings["done"] == n and t.scored == t.units:
        lines.append("  complete: every job is done")
    return "\n".join(lines)
