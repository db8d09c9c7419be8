"""Where a study stands: done, running, failed and pending jobs of its plan, kind by kind."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.config import load_study
from transferlab.conversion import NotPrepared
from transferlab.jobs import KINDS, KindStatus
from transferlab.plan import Plan, plan_study
from transferlab.store import Store


@dataclass
class Tally:
    """Where a study stands, from its plan and its store."""

    kinds: dict[str, KindStatus]  # kind name → its status
    failed: list[dict[str, Any]]
    running: list[dict[str, Any]]

    @property
    def complete(self) -> bool:
        """Return whether every job of every kind is done."""
        return all(k.complete for k in self.kinds.values())


def tally(plan: Plan, store: Store) -> Tally:
    """Return counts of done, running, failed and pending jobs of ``plan`` in ``store``."""
    failed, running = [], []
    for record in store.jobs().values():
        kind = KINDS.get(record.kind)
        relevant = kind is not None and kind.relevant(record, plan, store)
        entry = {"key": record.key, "kind": record.kind, "label": record.label}
        if relevant and record.status == "failed":
            failed.append({**entry, "error": record.error, "attempts": record.attempts})
        elif relevant and record.status == "running":
            running.append({**entry, "owner": record.owner})
    kinds = {name: kind.status(plan, store) for name, kind in KINDS.items()}
    return Tally(kinds, failed, running)


def job_time(store: Store) -> dict[str, float]:
    """Return the wall seconds of every done job by kind, summed over all runs of the study.

    A run's ``timings`` cover that run only (a rerun with nothing to do spends seconds); this is
    what the results on disk cost to compute.
    """
    seconds: Counter[str] = Counter()
    for record in store.jobs().values():
        if record.status == "done" and record.wall_s is not None:
            seconds[record.kind] += record.wall_s
    return {kind: round(value, 3) for kind, value in sorted(seconds.items())}


def job_counts(plan: Plan, store: Store) -> dict[str, Any]:
    """Return run_info.json's ``jobs``: done and pending counts and the failures."""
    t = tally(plan, store)
    return {
        "done": sum(k.done for k in t.kinds.values()),
        "pending": sum(k.pending for k in t.kinds.values()),
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
    active = ""
    if config.active is not None:  # what the recorded rounds (or the first spread) train
        from transferlab.active_study import recorded_plan

        plan, active = recorded_plan(plan, out, config.active)
    store = Store.open_existing(out)
    if store is None:
        counts = [(k.outstanding(plan, None), k.title) for k in KINDS.values()]
        # a kind the study does not use (no alignment: section, say) is not mentioned
        pending = " and ".join(f"{n} {title}" for n, title in counts if n)
        return f"Study {config.name} ({out}): nothing run yet — {pending} job(s) pending{active}"
    try:
        t = tally(plan, store)
    finally:
        store.close()
    lines = [f"Study {config.name} ({out}){active}"]
    lines += [f"  {k.line}" for k in t.kinds.values() if k.done + k.pending]
    lines += [f"  running: {r['label']} (held by {r['owner']})" for r in t.running]
    lines += [
        f"  failed:  {f['label']} — {f['error']} ({f['attempts']} attempt(s))" for f in t.failed
    ]
    if t.complete:
        lines.append("  complete: every job is done")
    return "\n".join(lines)
