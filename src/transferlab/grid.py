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
    """What one adapter is trained on: a weighted mixture of cells (one cell is the common case).

    Weights are relative shares of the training examples; a single cell has weight 1.
    """

    parts: tuple[tuple[Cell, float], ...]

    @classmethod
    def single(cls, cell: Cell) -> Source:
        return cls(((cell, 1.0),))

    @property
    def is_single(self) -> bool:
        return len(self.parts) == 1

    @property
    def cell(self) -> Cell:
        """The one cell of a single-cell source."""
        if not self.is_single:
            raise ValueError(f"{self} is a mixture, not a single cell")
        return self.parts[0][0]

    @property
    def label(self) -> str:
        """Return the source's stable name: ``task:lang``, or ``mix(task:lang=w,...)``.

        A mixture's parts are listed in cell order, so the same mixture has one label however
        its parts were written.
        """
        if self.is_single:
            return str(self.cell)
        return f"mix({self.parts_text(',')})"

    def parts_text(self, separator: str = ";") -> str:
        """Return the parts as ``task:lang=weight``, in cell order (the ``source_parts`` column)."""
        return separator.join(f"{cell}={weight:g}" for cell, weight in sorted(self.parts))

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
