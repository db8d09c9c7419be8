"""Multiple-choice items → token-level choice groups, tokenised exactly as lm-evaluation-harness.

lm-eval (``HFLM``, 0.4.x) scores choice *i* of an item as the pair
``(context, target_delimiter + choices[i])``, tokenised by ``tokenization.Encoder`` (its module
says how); a pair longer than the model's window keeps its last ``max_length + 1`` tokens.

A :class:`ChoiceGroup` holds the token sequences of one item's choices that share a context;
``packing`` lays groups out for the engine. The tokenisation itself is ``tokenization.Encoder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transferlab.errors import UserError
from transferlab.tasks.types import MCItem
from transferlab.tokenization import Encoder


@dataclass(frozen=True)
class ChoiceGroup:
    """The scored sequences of one item: ``context`` followed by each choice's continuation."""

    item: int  # index into the flat list of items being scored
    choices: tuple[int, ...]  # the item's choice indices this group scores, in order
    context: tuple[int, ...]
    continuations: tuple[tuple[int, ...], ...]


def choice_groups(encoder: Encoder, index: int, item: MCItem, where: str) -> list[ChoiceGroup]:
    """Return the choice groups that score every choice of ``item``."""
    # Keyed by (context, None) when shared, (context, choice) for a pair of its own.
    groups: dict[tuple[tuple[int, ...], int | None], list[tuple[int, tuple[int, ...]]]] = {}
    for choice, text in enumerate(item.choices):
        ctx, cont = encoder.pair(item.context, item.target_delimiter + text)
        if not cont:
            raise UserError(
                where,
                f"item {item.doc_id!r}: choice {choice} ({text!r}) has no tokens to score",
                "give every choice some text, or a non-empty target_delimiter",
            )
        if len(cont) > encoder.max_length:
            raise UserError(
                where,
                f"item {item.doc_id!r}: choice {choice} is {len(cont)} tokens, longer than "
                f"the model's {encoder.max_length}-token window",
                "shorten the choice",
            )
        if len(ctx) + len(cont) > encoder.max_length + 1:
            # lm-eval keeps the last max_length + 1 tokens of each pair on its own, so an
            # overlong pair gets a context of its own rather than a shared one.
            kept = (ctx + cont)[-(encoder.max_length + 1) :]
            ctx = kept[: len(kept) - len(cont)]
            groups.setdefault((tuple(ctx), choice), []).append((choice, tuple(cont)))
            continue
        groups.setdefault((tuple(ctx), None), []).append((choice, tuple(cont)))
    units = []
    for (context, _solo), members in groups.items():
        units.append(
            ChoiceGroup(
                item=index,
                choices=tuple(m[0] for m in members),
                context=context,
                continuations=tuple(m[1] for m in members),
            )
        )
    return units


def encode_items(
    encoder: Encoder, items: Sequence[MCItem], where: Sequence[str]
) -> list[ChoiceGroup]:
    """Return the choice groups of all ``items`` (``where[i]`` names item i's task for errors)."""
    units: list[ChoiceGroup] = []
    for index, item in enumerate(items):
        if not item.choices:
            raise UserError(where[index], f"item {item.doc_id!r} has no choices", "add choices")
        if not 0 <= item.gold < len(item.choices):
            raise UserError(
                where[index],
                f"item {item.doc_id!r}: gold index {item.gold} is outside its "
                f"{len(item.choices)} choices",
                "fix the item's gold answer",
            )
        units.extend(choice_groups(encoder, index, item, where[index]))
    return units
