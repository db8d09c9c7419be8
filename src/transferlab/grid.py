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

    def __str__(self) -> str:
        if self.is_single:
            return str(self.cell)
        return "+".join(f"{cell}*{weight:g}" for cell, weight in self.parts)


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
