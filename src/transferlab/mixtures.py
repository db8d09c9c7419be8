"""Mixture sources: how a study writes them, how sweeps expand, which item IDs each part draws.

A mixture is a drawn source (``grid.Source`` with ``drawn=True``): a count of items per
(task, language) part. A study writes one as counts (``parts: {cell: n}``), as weights with a
total (``parts: {cell: w}, total: N``), or as a sweep that adds ``k`` items per language to a
fixed set for several ``k``. The items of a part are drawn from its cell's training pool with
a generator seeded by the training seed and the part, as a prefix of one permutation per part:
a larger ``k`` keeps the items of a smaller one, so a sweep's curve adds data rather than
resampling it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from transferlab.errors import UserError
from transferlab.grid import Cell, Source

WHOLE_POOL = "all"
# The column layout of mixtures.csv: one row per sweep point.
SWEEP_COLUMNS = (
    "mixture",
    "per_language",
    "source",
    "fixed_languages",
    "added_languages",
    "tasks",
    "disjoint_ids",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MixtureSpec(_Section):
    """One mixture in ``sources:``: counts per cell, or weights per cell with a ``total``."""

    parts: dict[str, float | Literal["all"]] = Field(description="task:lang → count or weight")
    total: int | None = Field(None, gt=0, description="items in all (the parts are weights)")
    disjoint_ids: bool = False

    @model_validator(mode="after")
    def _check_numbers(self) -> MixtureSpec:
        if not self.parts:
            raise ValueError("the mixture has no parts; list task:lang: count entries")
        numbers = {c: v for c, v in self.parts.items() if v != WHOLE_POOL}
        if self.total is not None:
            if len(numbers) < len(self.parts):
                raise ValueError("a part of a weighted mixture cannot be 'all'; give a weight")
            if any(v < 0 for v in numbers.values()) or not sum(numbers.values()) > 0:
                raise ValueError("weights must be >= 0 and sum to something positive")
        else:
            bad = [c for c, v in numbers.items() if v < 0 or v != int(v)]
            if bad:
                raise ValueError(
                    f"count of {bad[0]} must be a whole number >= 0 (or add total: N to read "
                    "the parts as weights)"
                )
            if len(numbers) == len(self.parts) and not sum(numbers.values()) > 0:
                raise ValueError("every count is 0, so the mixture is empty")
        return self


class MixtureAdd(_Section):
    """What a sweep adds to its fixed parts: ``per_language`` items of each task per language."""

    languages: list[str] = Field(min_length=1)
    per_language: list[int] = Field(min_length=1)

    @field_validator("per_language")
    @classmethod
    def _non_negative(cls, value: list[int]) -> list[int]:
        negative = [k for k in value if k < 0]
        if negative:
            raise ValueError(f"per_language has a negative value {negative[0]}; use k >= 0")
        if len(set(value)) < len(value):
            raise ValueError("per_language lists a value twice")
        return value


class MixtureSweep(_Section):
    """A family of mixtures: ``fixed`` parts plus ``k`` items per added language, per ``k``."""

    name: str = Field(min_length=1)
    fixed: dict[str, int | Literal["all"]] = Field(min_length=1)
    add: MixtureAdd
    disjoint_ids: bool = False

    @field_validator("fixed")
    @classmethod
    def _positive(cls, value: dict) -> dict:
        bad = [c for c, n in value.items() if n != WHOLE_POOL and n <= 0]
        if bad:
            raise ValueError(f"fixed count of {bad[0]} must be > 0 (or 'all')")
        return value


@dataclass(frozen=True)
class SweepPoint:
    """One source of a sweep: the sweep's name, its ``k`` and the source it expands to."""

    mixture: str
    per_language: int
    source: Source
    fixed_languages: tuple[str, ...]
    added_languages: tuple[str, ...]

    def row(self) -> dict[str, object]:
        """Return the point as a row of mixtures.csv (``SWEEP_COLUMNS``)."""
        return {
            "mixture": self.mixture,
            "per_language": self.per_language,
            "source": self.source.label,
            "fixed_languages": "+".join(self.fixed_languages),
            "added_languages": "+".join(self.added_languages),
            "tasks": "+".join(self.source.tasks),
            "disjoint_ids": self.source.disjoint_ids,
        }


def _cell(text: str, where: str, field: str) -> Cell:
    try:
        return Cell.parse(text)
    except ValueError as error:
        raise UserError(where, f"{field}: {error}", "write parts as task:language") from None


def _count(value: int | float | str, cell: Cell, pool_sizes: Mapping[Cell, int]) -> int:
    return pool_sizes[cell] if value == WHOLE_POOL else int(value)


def _apportion(weights: dict[Cell, float], total: int) -> dict[Cell, int]:
    """Return ``total`` split in proportion to ``weights`` (largest remainder, ties in order)."""
    whole = sum(weights.values())
    shares = {c: total * w / whole for c, w in weights.items()}
    counts = {c: math.floor(s) for c, s in shares.items()}
    rest = sorted(shares, key=lambda c: -(shares[c] - counts[c]))
    for cell in rest[: total - sum(counts.values())]:
        counts[cell] += 1
    return counts


def spec_source(spec: MixtureSpec, pool_sizes: Mapping[Cell, int], where: str) -> Source:
    """Return the drawn source a ``sources:`` mixture entry stands for."""
    cells = {_cell(text, where, "sources"): value for text, value in spec.parts.items()}
    _check_cells(cells, pool_sizes, where, "sources")
    if spec.total is not None:
        counts = _apportion({c: float(v) for c, v in cells.items()}, spec.total)
    else:
        counts = {c: _count(v, c, pool_sizes) for c, v in cells.items()}
    source = Source.mixture(counts, spec.disjoint_ids)
    check_counts(source, pool_sizes, where)
    return source


def expand_sweep(
    sweep: MixtureSweep, pool_sizes: Mapping[Cell, int], where: str
) -> list[SweepPoint]:
    """Return one point per ``k`` of the sweep: the fixed parts plus k items per added cell.

    Every task of the fixed parts gets ``k`` items in each added language, so a multi-task
    sweep keeps the same data per task as the single-task sweeps it is compared with.
    """
    field = f"mixtures.{sweep.name}"
    fixed = {_cell(text, where, field): value for text, value in sweep.fixed.items()}
    _check_cells(fixed, pool_sizes, where, field)
    fixed_counts = {c: _count(v, c, pool_sizes) for c, v in fixed.items()}
    tasks = list(dict.fromkeys(c.task for c in fixed))
    added = [Cell(task, language) for task in tasks for language in sweep.add.languages]
    _check_cells(dict.fromkeys(added, 0), pool_sizes, where, f"{field}.add.languages")
    overlap = [c for c in added if c in fixed]
    if overlap:
        raise UserError(
            where,
            f"{field}: {overlap[0]} is both fixed and added",
            "leave the fixed languages out of add.languages",
        )
    points = []
    for k in sweep.add.per_language:
        source = Source.mixture({**fixed_counts, **dict.fromkeys(added, k)}, sweep.disjoint_ids)
        check_counts(source, pool_sizes, where)
        points.append(
            SweepPoint(
                sweep.name,
                k,
                source,
                tuple(dict.fromkeys(c.language for c in fixed)),
                tuple(sweep.add.languages),
            )
        )
    return points


def _check_cells(
    cells: Mapping[Cell, object], pool_sizes: Mapping[Cell, int], where: str, field: str
) -> None:
    for cell in cells:
        if cell not in pool_sizes:
            raise UserError(
                where,
                f"{field}: part {str(cell)!r} is not a cell of the study",
                "use a task and a language the study lists",
            )


def check_counts(source: Source, pool_sizes: Mapping[Cell, int], where: str) -> None:
    """Raise UserError when a part asks for more items than its pool (or its task) holds."""
    for cell, n in source.counts.items():
        if n > pool_sizes[cell]:
            raise UserError(
                where,
                f"source {source}: {cell} asks for {n} items but its training pool holds "
                f"{pool_sizes[cell]}",
                f"ask for at most {pool_sizes[cell]} (or 'all')",
            )
    if source.disjoint_ids:
        for task in source.tasks:
            wanted = sum(n for c, n in source.counts.items() if c.task == task)
            pool = max(n for c, n in pool_sizes.items() if c.task == task)
            if wanted > pool:
                raise UserError(
                    where,
                    f"source {source}: with disjoint_ids its {task} parts ask for {wanted} "
                    f"items in all but the task has {pool} item IDs to share between languages",
                    "lower the counts or set disjoint_ids: false",
                )


def _part_seed(cell: Cell) -> int:
    # A stable number per part (Python's hash() changes between processes).
    return int.from_bytes(hashlib.sha256(str(cell).encode()).digest()[:8], "little")


def draw_items(
    source: Source, pools: Mapping[Cell, Sequence[str]], seed: int
) -> dict[Cell, list[str]]:
    """Return the item IDs each part of a drawn source trains on, in its pool's order.

    Part ``c`` takes the first ``n`` IDs of a permutation of its pool seeded by ``[seed, c]``;
    with ``disjoint_ids`` it skips IDs an earlier part of the same task took. Keeping pool order
    makes a part of the whole pool train on exactly the list a single-cell source trains on.
    """
    import numpy as np

    taken: dict[str, set[str]] = {}
    drawn = {}
    for cell, n in source.counts.items():
        pool = list(pools[cell])
        used = taken.setdefault(cell.task, set()) if source.disjoint_ids else set()
        order = np.random.default_rng([seed, _part_seed(cell)]).permutation(len(pool))
        chosen: set[str] = set()
        for index in order:
            if len(chosen) == n:
                break
            if pool[index] not in used:
                chosen.add(pool[index])
        if len(chosen) < n:
            raise ValueError(f"{source}: {cell} has only {len(chosen)} free items of {n}")
        used |= chosen
        drawn[cell] = [doc_id for doc_id in pool if doc_id in chosen]
    return drawn
