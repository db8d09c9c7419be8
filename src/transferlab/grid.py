"""The study grid: cells, sources (weighted mixtures of cells) and transfer regimes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

BASE = "base"  # the model state of the un-tuned model, beside one state per trained source


@dataclass(frozen=True, order=True)
class Cell:
    """One (task, language) cell of the grid."""

    task: str
    language: str

    def __str__(self) -> str:
        return f"{self.task}:{self.language}"

    @classmethod
    def parse(cls, text: str) -> Cell:
        """Return the cell written as ``task:language``."""
        task, sep, language = text.rpartition(":")
        if not sep or not task or not language:
            raise ValueError(f"expected 'task:language', got {text!r}")
        return cls(task, language)


@dataclass(frozen=True)
class Source:
    """What one adapter is trained on: one cell, or a mixture of cells.

    A plain source's weights are relative shares (a single cell has weight 1) and it trains on
    each cell's pool as the study caps it. A drawn source (``drawn=True``, a mixture) holds item
    counts: that many items are drawn from each part's training pool. ``disjoint_ids`` draws the
    parts of one task so that no item ID is used in two of its languages; its parts keep their
    draw order (the earlier part draws first), the others are kept in cell order.
    """

    parts: tuple[tuple[Cell, float], ...]
    drawn: bool = False
    disjoint_ids: bool = False

    def __post_init__(self) -> None:
        if not self.disjoint_ids:  # order does not matter: one mixture, one value
            object.__setattr__(self, "parts", tuple(sorted(self.parts)))

    @classmethod
    def single(cls, cell: Cell) -> Source:
        return cls(((cell, 1.0),))

    @classmethod
    def mixture(cls, counts: dict[Cell, int], disjoint_ids: bool = False) -> Source:
        """Return the drawn source of ``{cell: count}`` (parts with count 0 are left out)."""
        parts = tuple((cell, float(n)) for cell, n in counts.items() if n > 0)
        return cls(parts, drawn=True, disjoint_ids=disjoint_ids)

    @property
    def is_single(self) -> bool:
        """Return whether this is one cell's whole (capped) pool, the reference study's source."""
        return len(self.parts) == 1 and not self.drawn

    @property
    def cell(self) -> Cell:
        """The one cell of a single-cell source."""
        if not self.is_single:
            raise ValueError(f"{self} is a mixture, not a single cell")
        return self.parts[0][0]

    @property
    def counts(self) -> dict[Cell, int]:
        """Return the items drawn per part of a drawn source, in draw order."""
        return {cell: int(n) for cell, n in self.parts}

    @property
    def label(self) -> str:
        """Return the source's stable name: ``task:lang``, or ``mix(task:lang=n,...)``.

        A mixture's parts are listed in cell order (in draw order with ``;disjoint_ids``), so
        the same mixture has one label however its parts were written.
        """
        if self.is_single:
            return str(self.cell)
        flag = ";disjoint_ids" if self.disjoint_ids else ""
        return f"mix({self.parts_text(',')}{flag})"

    def parts_text(self, separator: str = ";") -> str:
        """Return the parts as ``task:lang=weight`` (the ``source_parts`` column)."""
        return separator.join(f"{cell}={weight:g}" for cell, weight in self.parts)

    @classmethod
    def parse(cls, label: str) -> Source:
        """Return the source a ``label`` names (``task:lang`` or ``mix(...)``)."""
        if not (label.startswith("mix(") and label.endswith(")")):
            return cls.single(Cell.parse(label))
        body, _, flag = label[4:-1].partition(";")
        if flag not in ("", "disjoint_ids"):
            raise ValueError(f"unknown mixture flag {flag!r} in {label!r}")
        parts = []
        for part in body.split(","):
            cell, sep, count = part.rpartition("=")
            if not sep:
                raise ValueError(f"expected 'task:lang=count' in {label!r}, got {part!r}")
            parts.append((Cell.parse(cell), float(count)))
        return cls(tuple(parts), drawn=True, disjoint_ids=bool(flag))

    @property
    def tasks(self) -> tuple[str, ...]:
        """Return the tasks of the parts, each once, in cell order."""
        return tuple(dict.fromkeys(cell.task for cell, _ in sorted(self.parts)))

    @property
    def languages(self) -> tuple[str, ...]:
        """Return the languages of the parts, each once, in cell order."""
        return tuple(dict.fromkeys(cell.language for cell, _ in sorted(self.parts)))

    def __str__(self) -> str:
        return self.label


def is_mixture_label(label: str) -> bool:
    """Return whether a results table's source name is a mixture's label."""
    return label.startswith("mix(")


class Regime(StrEnum):
    """Transfer regime of an ordered (source cell, target cell) pair (PROTOCOL.md §1)."""

    MT_ML = "MT-ML"  # same task, same language: the trained cell itself
    MT_CL = "MT-CL"  # same task, other language
    CT_ML = "CT-ML"  # other task, same language
    CT_CL = "CT-CL"  # other task, other language


REGIMES: tuple[str, ...] = tuple(r.value for r in Regime)


def regime_of(
    source_task: str, source_language: str, target_task: str, target_language: str
) -> Regime:
    """Return the regime of a source→target pair."""
    same_task = source_task == target_task
    same_language = source_language == target_language
    if same_task:
        return Regime.MT_ML if same_language else Regime.MT_CL
    return Regime.CT_ML if same_language else Regime.CT_CL


def source_regime(source: Source, target: Cell) -> Regime:
    """Return the regime of a source (one cell or a mixture) on a target cell.

    Per part, the closest relation wins: MT-ML if a part is the target cell; else MT-CL if a
    part has the target's task; else CT-ML if a part has the target's language; else CT-CL.
    For one cell this is ``regime_of``.
    """
    order = list(Regime)  # MT-ML, MT-CL, CT-ML, CT-CL: closest first
    regimes = [regime_of(c.task, c.language, target.task, target.language) for c, _ in source.parts]
    return min(regimes, key=order.index)
