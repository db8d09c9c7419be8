"""Languages grouped into families and tasks grouped by how they were built.

The reference study reads its language roles per family and splits its analyses by how a
benchmark was made (the human-translated Global-MMLU against the machine-translated others).
A task group is a user-defined name for a set of tasks; `rest` is every task in no group and
`not NAME` every task outside the group NAME.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from transferlab.analysis.summaries import SUMMARY_COLUMNS, language_roles, summarize
from transferlab.errors import UserError, did_you_mean
from transferlab.grid import Regime

logger = logging.getLogger(__name__)

# PROTOCOL.md §1: the families the reference study reports
REFERENCE_LANGUAGE_FAMILIES: dict[str, str] = {
    "fr": "Romance",
    "es": "Romance",
    "pt": "Romance",
    "it": "Romance",
    "de": "Germanic",
    "en": "Germanic",
    "hi": "Indic",
    "bn": "Indic",
    "zh": "Chinese",
    "ar": "Arabic",
    "id": "Indonesian",
}
ALL, REST = "all", "rest"
TaskGroups = Mapping[str, tuple[str, ...]]


def complement(name: str) -> str:
    """Return the label of the tasks outside group `name`."""
    return f"not {name}"


def check_task_groups(
    groups: Mapping[str, Iterable[str]], tasks: Iterable[str], where: str
) -> dict[str, tuple[str, ...]]:
    """Return the groups with their tasks as tuples; UserError unless each names known tasks.

    A group needs a name other than `all`/`rest` and at least one task; a task is in one group.
    """
    known = sorted(set(tasks))
    owner: dict[str, str] = {}
    checked: dict[str, tuple[str, ...]] = {}
    for raw_name, members in groups.items():
        name = str(raw_name).strip()
        if not name or name in (ALL, REST) or name.startswith(complement("")):
            raise UserError(
                where,
                f"{name!r} cannot name a task group",
                f"choose a name other than {ALL!r}, {REST!r} or 'not …', e.g. curated",
            )
        listed = [members] if isinstance(members, str) else list(members)
        names = tuple(dict.fromkeys(str(task).strip() for task in listed))
        if not names or "" in names:
            raise UserError(where, f"task group {name!r} lists no task", "name one or more tasks")
        for task in names:
            if task not in known:
                raise UserError(
                    where,
                    f"task group {name!r}: no task {task!r}{did_you_mean(task, known)}",
                    f"name one of: {', '.join(known)}",
                )
            if task in owner:
                raise UserError(
                    where,
                    f"task {task!r} is in task groups {owner[task]!r} and {name!r}",
                    "put each task in one group",
                )
            owner[task] = name
        checked[name] = names
    return checked


def _grouped(groups: TaskGroups) -> set[str]:
    return {task for tasks in groups.values() for task in tasks}


def mtcl_by_task_group(cells: pd.DataFrame, metric: str, groups: TaskGroups) -> pd.DataFrame:
    """Return MT-CL `subset, n, mean, median, pct_positive, pct_harm`: all, each group, rest.

    Keyed on the target task (in MT-CL it is also the source task).
    """
    rows = cells[cells["regime"] == Regime.MT_CL.value]
    subsets = {ALL: rows}
    for name, tasks in groups.items():
        subsets[name] = rows[rows["target_task"].isin(tasks)]
    subsets[REST] = rows[~rows["target_task"].isin(_grouped(groups))]
    out = [{"subset": name, **summarize(subset[metric])} for name, subset in subsets.items()]
    return pd.DataFrame(out, columns=["subset", *SUMMARY_COLUMNS])


def _target_subsets(cells: pd.DataFrame, groups: TaskGroups) -> dict[str, pd.DataFrame]:
    """Each group's rows and its complement's, by target task (the complement only if any)."""
    subsets = {}
    for name, tasks in groups.items():
        inside = cells["target_task"].isin(tasks)
        subsets[name] = cells[inside]
        if not inside.all():
            subsets[complement(name)] = cells[~inside]
    return subsets


def roles_by_task_group(cells: pd.DataFrame, metric: str, groups: TaskGroups) -> pd.DataFrame:
    """Return `task_group, language, donor, donor_se, recipient, recipient_se` (MT-CL rules)
    on the targets of each group and on the targets outside it (`not NAME`)."""
    parts = [
        language_roles(subset, metric).assign(task_group=name)
        for name, subset in _target_subsets(cells, groups).items()
    ]
    table = pd.concat(parts, ignore_index=True)
    return table[["task_group", *table.columns.drop("task_group")]]


def donor_correlation(roles: pd.DataFrame, groups: TaskGroups) -> pd.DataFrame:
    """Return per group the Spearman ρ (and p) between its donor scores and those outside it.

    `roles` is `roles_by_task_group`'s table; languages with both scores count.
    """
    rows = []
    for name in groups:
        donors = {
            side: roles[roles["task_group"] == side].set_index("language")["donor"]
            for side in (name, complement(name))
        }
        both = pd.concat(donors, axis=1).dropna()
        rho = p = np.nan
        if len(both) >= 3 and both.nunique().min() > 1:
            result = stats.spearmanr(both[name], both[complement(name)])
            rho, p = float(result.statistic), float(result.pvalue)
        rows.append(
            {
                "task_group": name,
                "versus": complement(name),
                "spearman_rho": rho,
                "spearman_p": p,
                "n_languages": len(both),
            }
        )
    columns = ["task_group", "versus", "spearman_rho", "spearman_p", "n_languages"]
    return pd.DataFrame(rows, columns=columns)


# the reference study fits a regime within a subset only when it has enough rows
MIN_VARIANCE_ROWS = 50
TRANSFER_REGIMES = (Regime.MT_CL.value, Regime.CT_ML.value, Regime.CT_CL.value)


def variance_subsets(cells: pd.DataFrame, groups: TaskGroups) -> dict[str, pd.DataFrame]:
    """Return per group the transfer rows whose source or target task is in it (`NAME`) and
    those where neither is (`not NAME`), each also per regime (`NAME MT-CL`, ...) when the
    regime has at least 50 rows there."""
    transfer = cells[cells["regime"] != Regime.MT_ML.value]
    subsets: dict[str, pd.DataFrame] = {}
    for name, tasks in groups.items():
        touches = transfer["source_task"].isin(tasks) | transfer["target_task"].isin(tasks)
        for label, rows in ((name, transfer[touches]), (complement(name), transfer[~touches])):
            subsets[label] = rows
            for regime in TRANSFER_REGIMES:
                block = rows[rows["regime"] == regime]
                if len(block) >= MIN_VARIANCE_ROWS:
                    subsets[f"{label} {regime}"] = block
    return subsets


def language_family_roles(roles: pd.DataFrame, families: Mapping[str, str]) -> pd.DataFrame:
    """Return `family, donor, recipient, languages`: the mean of its languages' role scores.

    `roles` is `language_roles`' table; languages without a family are left out (a warning).
    """
    unknown = sorted(set(roles["language"]) - set(families))
    if unknown:
        logger.warning(
            "no language family for %s; left out of the roles by family (add LANG=FAMILY)",
            ", ".join(unknown),
        )
    known = roles[roles["language"].isin(families)].assign(
        family=lambda frame: frame["language"].map(families)
    )
    table = known.groupby("family", sort=True).agg(
        donor=("donor", "mean"),
        recipient=("recipient", "mean"),
        languages=("language", lambda names: ",".join(sorted(names))),
    )
    return table.reset_index()
