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
from typing import TYPE_CHECKING, Any

from transferlab.config import Study, load_study
from transferlab.errors import UserError
from transferlab.executors import Executor, make_executor
from transferlab.jobs import KINDS, Job, kind_of
from transferlab.plan import Plan, plan_study
from transferlab.runinfo import RunInfo
from transferlab.status import job_counts, job_time, study_status
from transferlab.store import Store

if TYPE_CHECKING:
    from transferlab.active_study import ActiveRun
    from transferlab.analysis import AnalysisResult, ResultsTable

__all__ = ["RunOutcome", "check_output_dir", "failure_reason", "run_study", "study_status"]

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

    def __init__(
        self, plan: Plan, store: Store, executor: Executor, retries: int, progress: bool
    ) -> None:
        self.plan, self.store, self.executor = plan, store, executor
        self.retries = retries
        self.attempts: Counter[str] = Counter()
        self.exhausted: dict[str, Job] = {}
        self.wall = dict.fromkeys(KINDS, 0.0)
        self.cpu = dict.fromkeys(KINDS, 0.0)  # this process's CPU: local jobs only
        self.finished = 0
        self.bar = self._progress_bar() if progress else None

    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm

        total = sum(kind.outstanding(self.plan, self.store) for kind in KINDS.values())
        return tqdm(total=total, desc="study", unit="job", position=0, dynamic_ncols=True)

    def todo(self) -> list[Job]:
        """Return the jobs of every kind that can run now, lowest ``priority`` first."""
        exhausted = set(self.exhausted)
        jobs = [j for kind in KINDS.values() for j in kind.todo(self.plan, self.store, exhausted)]
        return sorted(jobs, key=lambda j: j.priority)  # stable: plan order within a priority

    def extend(self, plan: Plan) -> None:
        """Take over ``plan`` (a later round of an active study), counting its jobs in the bar."""
        self.plan = plan
        if self.bar is not None:
            self.bar.total = self.bar.n + sum(
                k.outstanding(plan, self.store) for k in KINDS.values()
            )
            self.bar.refresh()

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

    def close(self) -> None:
        """Close the progress bar."""
        if self.bar is not None:
            self.bar.close()

    def _drain(self, jobs: list[Job]) -> None:
        queue = deque(jobs)
        running: dict[str, float] = {}
        try:
            while queue or running:
                for job in list(queue):
                    if len(running) >= self.executor.capacity:
                        break
                    state = self.store.claim(job.key, job.kind, job.label, job.unit_keys)
                    if state == "busy":
                        continue
                    queue.remove(job)
                    if state == "claimed":
                        log.info("start: %s", job.label)
                        if self.bar is not None:
                            self.bar.set_postfix_str(job.label)
                        running[job.key] = time.perf_counter()
                        self.executor.submit(job, kind_of(job).inputs(job, self.store))
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
                elif kind_of(job).commit(job, outcome, self.store):
                    log.info("done: %s (%.1f s)", job.label, seconds)
                    self._tick()
        except BaseException:
            for key in running:  # interrupted (Ctrl-C): hand the leases back at once
                self.store.release(key)
            raise

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


@dataclass
class _Results:
    """The run's results in memory: the table, its analysis and the summary the CLI prints."""

    table: ResultsTable
    analysis: AnalysisResult
    summary: str  # the regimes table as text


def _export(
    plan: Plan, store: Store, out: Path, task_groups: dict[str, list[str]]
) -> _Results | None:
    """Write the per-seed, per-item and paper tables; return them analysed (None if no rows).

    ``task_groups`` (the study's) also split the analysis by groups of tasks.
    """
    import pandas as pd

    from transferlab.analysis import run_analysis, table_from_frame
    from transferlab.analysis.aggregate import to_paper_schema
    from transferlab.analysis.bootstrap import items_from_frame
    from transferlab.exports import item_frames, per_seed_table, sweep_table, write_items
    from transferlab.fileio import write_csv

    per_seed = per_seed_table(plan, store.scores())
    write_csv(per_seed, out / "results_per_seed.csv")
    frames = list(item_frames(plan, store))
    write_items(frames, out / "items.csv.gz")
    from transferlab.analysis.mixture_scaling import sweeps_from_frame

    sweeps = sweep_table(plan) if plan.sweeps else None
    if sweeps is not None:  # only a study with sweeps has the file
        write_csv(sweeps, out / "mixtures.csv")
    if per_seed.empty:
        log.warning("no adapter has been scored yet: no results.csv and no transfer summary")
        (out / "results.csv").unlink(missing_ok=True)  # it would describe another study
        return None
    # The tables are built once, from what was just written, and handed on in memory.
    items = pd.concat(frames, ignore_index=True) if frames else None
    where = str(out / "items.csv.gz")
    table = table_from_frame(
        per_seed,
        str(out / "results_per_seed.csv"),
        items=items_from_frame(items, where) if items is not None else None,
        sweeps=sweeps_from_frame(sweeps, str(out / "mixtures.csv")) if sweeps is not None else None,
    )
    write_csv(to_paper_schema(table.cells), out / "results.csv")
    analysis = run_analysis(table, task_groups=task_groups)
    regimes = analysis.tables["regimes"]
    summary = regimes.to_string(index=False, float_format=lambda x: f"{x:.2f}")
    return _Results(table, analysis, summary)


def _export_alignment(plan: Plan, store: Store, out: Path) -> Any:
    """Write alignment.csv of a study that aligns; return its table (None: no alignment:)."""
    if not plan.align_jobs:
        return None
    from transferlab.exports import alignment_table
    from transferlab.fileio import write_csv

    table = alignment_table(plan, store)
    write_csv(table, out / "alignment.csv")
    return table


def _report(
    results: _Results, info: RunInfo, out: Path, active: ActiveRun | None, alignment: Any = None
) -> str:
    from transferlab.report import render_report, write_html

    extra = []
    if active is not None:
        from transferlab.report.prediction import prediction_section

        extra.append(prediction_section(results.table, active.rounds, active.settings.model_dump()))
    html = render_report(results.table, results.analysis, info, out.name, extra, alignment)
    write_html(html, out / "report.html")
    return str(out / "report.html")


def _execute(
    study: Study, plan: Plan, store: Store, executor: Executor, progress: bool
) -> tuple[_Driver, Plan, ActiveRun | None]:
    """Run the plan's jobs (an active study: round by round); return what ran and the plan run."""
    active = None
    try:
        if study.active is None:
            driver = _Driver(plan, store, executor, study.executor.retries, progress)
            driver.run()
        else:
            from transferlab.active_study import restrict, run_active

            driver = _Driver(
                restrict(plan, set()), store, executor, study.executor.retries, progress
            )

            def execute(round_plan: Plan) -> None:
                driver.extend(round_plan)
                driver.run()

            active = run_active(plan, store, study.active, execute)
            plan = active.plan
        driver.close()
    finally:
        executor.close()
    return driver, plan, active


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
        driver, plan, active = _execute(config, plan, store, executor, progress)
        used = [name for name, kind in KINDS.items() if kind.outstanding(plan, None)]
        timings.update({f"{kind}_s": round(driver.wall[kind], 3) for kind in used})
        if config.executor.kind == "local":
            timings.update({f"{kind}_cpu_s": round(driver.cpu[kind], 3) for kind in used})
        t1 = time.perf_counter()

        def info() -> RunInfo:
            return run_info(
                plan,
                job_counts(plan, store),
                started_at=started_at,
                finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
                wall_time_s=round(time.perf_counter() - t0, 3),
                executor=config.executor.kind,
                timings=dict(timings),
                job_time_s=job_time(store),
            )

        results = _export(plan, store, out, config.task_groups)
        alignment = _export_alignment(plan, store, out)
        # The report's run facts are those before the analysis: its own time is not known yet.
        report = _report(results, info(), out, active, alignment) if results is not None else ""
        timings["analysis_s"] = round(time.perf_counter() - t1, 3)
        write_json(info().as_dict(), out / "run_info.json")
    finally:
        store.close()
    failed = list(driver.exhausted.values())
    lines = [
        f"Study {config.name}: {driver.finished} job(s) finished this run, "
        f"{len(failed)} failed, {time.perf_counter() - t0:.0f} s",
    ]
    lines += [f"  failed: {job.label}" for job in failed]
    if active is not None:
        picks = Counter(model for round_ in active.rounds for model, _ in round_)
        per_model = max(picks.values(), default=0)
        lines.append(
            f"Active: {len(active.rounds)} round(s), {per_model} of a budget of "
            f"{active.settings.budget} source(s) per model picked (rounds: {out / 'active.json'})"
        )
    if results is not None:
        lines += ["", "Transfer by regime (Δ in pp):", results.summary]
    if (out / "results.csv").exists():
        lines += ["", f"Results: {out / 'results.csv'} (per seed: results_per_seed.csv)"]
    if report:
        lines.append(f"Report: {report}")
    return RunOutcome("\n".join(lines), len(failed), out, timings)
