"""Scoring units → packed rows: prefix trees in which shared leading tokens are computed once.

Every scored sequence ``context + continuation[:-1]`` is a path from a root of a row's tree.
Sequences that begin alike share their slots: an item's context is shared by its choices,
choices that start with the same tokens share those, and items of one task share the opening
words of their prompt. The engine lets each slot attend to its ancestors and itself only, with
its depth as position id, so every sequence is computed exactly as if it were alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from transferlab.scoring.requests import ChoiceGroup

# Slots per row. A longer row shares more prompt prefixes between items, but attention over a
# row costs its length squared: at 160 slots it adds ~6% to the matmuls of a 270M model.
ROW_TOKENS = 160


@dataclass(frozen=True)
class Row:
    """Several units packed as one tree of token slots."""

    units: tuple[ChoiceGroup, ...]
    tokens: tuple[int, ...]
    parents: tuple[int, ...]  # slot of the previous token of the sequence, -1 for a first token
    positions: tuple[int, ...]  # position id: the slot's depth in the tree
    # predictors[u][j][k]: the slot whose state predicts token k of unit u's continuation j
    predictors: tuple[tuple[tuple[int, ...], ...], ...]

    def __len__(self) -> int:
        return len(self.tokens)


class _Tree:
    """A row under construction."""

    def __init__(self) -> None:
        self.roots: dict[int, int] = {}
        self.children: list[dict[int, int]] = []
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.positions: list[int] = []
        self.units: list[ChoiceGroup] = []
        self.predictors: list[tuple[tuple[int, ...], ...]] = []

    def _walk(self, path: Sequence[int]) -> tuple[int, int]:
        """Return (depth matched, slot of the last matched token or -1) of ``path``."""
        children, slot, depth = self.roots, -1, 0
        while depth < len(path) and path[depth] in children:
            slot = children[path[depth]]
            children, depth = self.children[slot], depth + 1
        return depth, slot

    def missing(self, unit: ChoiceGroup) -> int:
        """Return how many slots adding ``unit`` would create."""
        grafts: dict[int, dict] = {}  # new tokens hanging off an existing slot, as a trie
        created = 0
        for path in _paths(unit):
            depth, slot = self._walk(path)
            node = grafts.setdefault(slot, {})
            for token in path[depth:]:
                if token not in node:
                    node[token] = {}
                    created += 1
                node = node[token]
        return created

    def _insert(self, path: Sequence[int]) -> list[int]:
        """Add ``path``; return the slot of each of its tokens."""
        children, parent, slots = self.roots, -1, []
        for depth, token in enumerate(path):
            slot = children.get(token)
            if slot is None:
                slot = children[token] = len(self.tokens)
                self.tokens.append(token)
                self.parents.append(parent)
                self.positions.append(depth)
                self.children.append({})
            slots.append(slot)
            parent, children = slot, self.children[slot]
        return slots

    def add(self, unit: ChoiceGroup) -> None:
        """Add every sequence of ``unit`` and record which slots predict its tokens."""
        start = len(unit.context) - 1  # the last context token predicts each first token
        predictors = []
        for cont, path in zip(unit.continuations, _paths(unit), strict=True):
            slots = self._insert(path)
            predictors.append(tuple(slots[start + k] for k in range(len(cont))))
        self.units.append(unit)
        self.predictors.append(tuple(predictors))

    def row(self) -> Row:
        return Row(
            tuple(self.units),
            tuple(self.tokens),
            tuple(self.parents),
            tuple(self.positions),
            tuple(self.predictors),
        )


def _paths(unit: ChoiceGroup) -> Iterator[tuple[int, ...]]:
    for cont in unit.continuations:
        yield unit.context + cont[:-1]


def pack_rows(units: Sequence[ChoiceGroup], max_tokens: int = ROW_TOKENS) -> list[Row]:
    """Return rows holding ``units`` in order, each row at most ``max_tokens`` slots long
    (a unit longer than that gets a row of its own)."""
    rows: list[Row] = []
    tree = _Tree()
    for unit in units:
        if tree.units and len(tree.tokens) + tree.missing(unit) > max_tokens:
            rows.append(tree.row())
            tree = _Tree()
        tree.add(unit)
    if tree.units:
        rows.append(tree.row())
    return rows


def forward_batches(units: Sequence[ChoiceGroup], batch_size: int) -> list[list[Row]]:
    """Return forward-pass batches of rows, about ``batch_size`` units each.

    Units are ordered by their tokens so that items sharing a prompt prefix land in one row;
    rows are then ordered by length (longest first, as lm-eval orders its requests) so that a
    batch pads little and an out-of-memory error shows at once rather than at the end.
    """
    ordered = sorted(units, key=lambda u: (u.context, u.continuations))
    rows = sorted(pack_rows(ordered, ROW_TOKENS), key=len, reverse=True)
    batches: list[list[Row]] = []
    current: list[Row] = []
    count = 0
    for row in rows:
        current.append(row)
        count += len(row.units)
        if count >= batch_size:
            batches.append(current)
            current, count = [], 0
    if current:
        batches.append(current)
    return batches
