"""Multiple-choice items → token-level scoring units, tokenised exactly as lm-evaluation-harness.

lm-eval (``HFLM``, 0.4.x) scores choice *i* of an item as the pair
``(context, target_delimiter + choices[i])``:

- trailing whitespace of the context moves to the front of the continuation;
- the context is encoded alone and the continuation is what encoding ``context + continuation``
  adds after ``len(context_tokens)`` tokens (so the split is by count, as lm-eval does it);
- ``tokenizer.encode`` runs with the tokenizer's own special-token default (so a BOS is added
  exactly when the tokenizer adds one), except that text already starting with the BOS string
  is encoded without special tokens;
- an empty context becomes the prefix token (BOS, else EOS) unless the continuation already
  starts with it;
- a sequence longer than the model's window keeps its last ``max_length + 1`` tokens.

A :class:`Unit` holds one item's token sequences; ``packing`` lays units out for the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transferlab.errors import UserError
from transferlab.tasks.types import MCItem

DEFAULT_MAX_LENGTH = 2048  # lm-eval's default when neither config nor tokenizer says
_TOKENIZER_INFINITY = 1000000000000000019884624838656


@dataclass(frozen=True)
class Unit:
    """The scored sequences of one item: ``context`` followed by each choice's continuation."""

    item: int  # index into the flat list of items being scored
    choices: tuple[int, ...]  # the item's choice indices this unit scores, in order
    context: tuple[int, ...]
    continuations: tuple[tuple[int, ...], ...]


def resolve_max_length(config: Any, tokenizer: Any) -> int:
    """Return the model's context length, looked up in the order lm-eval uses."""
    cfg = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    length = getattr(tokenizer, "model_max_length", None)
    if length is not None and length != _TOKENIZER_INFINITY:
        return int(length)
    return DEFAULT_MAX_LENGTH


class Encoder:
    """Tokenises (context, continuation) pairs with lm-eval's convention for one tokenizer."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        bos = tokenizer.bos_token_id
        self.prefix_token_id = bos if bos is not None else tokenizer.eos_token_id
        self.prefix_text = tokenizer.decode(self.prefix_token_id)

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """Return the token ids of ``text`` (special tokens as lm-eval's ``tok_encode`` adds)."""
        kwargs: dict[str, bool] = {}
        if add_special_tokens is not None:
            kwargs["add_special_tokens"] = add_special_tokens
        elif self.prefix_text and text.startswith(self.prefix_text):
            kwargs["add_special_tokens"] = False
        return self.tokenizer.encode(text, **kwargs)

    def pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Return (context tokens, continuation tokens) for one scored pair."""
        if context == "":
            cont = self.encode(continuation, add_special_tokens=False)
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx) :]

    def units(self, index: int, item: MCItem, where: str) -> list[Unit]:
        """Return the packed units that score every choice of ``item``."""
        # Keyed by (context, None) when shared, (context, choice) for a pair of its own.
        groups: dict[tuple[tuple[int, ...], int | None], list[tuple[int, tuple[int, ...]]]] = {}
        for choice, text in enumerate(item.choices):
            ctx, cont = self.pair(item.context, item.target_delimiter + text)
            if not cont:
                raise UserError(
                    where,
                    f"item {item.doc_id!r}: choice {choice} ({text!r}) has no tokens to score",
                    "give every choice some text, or a non-empty target_delimiter",
                )
            if len(cont) > self.max_length:
                raise UserError(
                    where,
                    f"item {item.doc_id!r}: choice {choice} is {len(cont)} tokens, longer than "
                    f"the model's {self.max_length}-token window",
                    "shorten the choice",
                )
            if len(ctx) + len(cont) > self.max_length + 1:
                # lm-eval keeps the last max_length + 1 tokens of each pair on its own, so an
                # overlong pair gets a context of its own rather than a shared one.
                kept = (ctx + cont)[-(self.max_length + 1) :]
                ctx = kept[: len(kept) - len(cont)]
                groups.setdefault((tuple(ctx), choice), []).append((choice, tuple(cont)))
                continue
            groups.setdefault((tuple(ctx), None), []).append((choice, tuple(cont)))
        units = []
        for (context, _solo), members in groups.items():
            units.append(
                Unit(
                    item=index,
                    choices=tuple(m[0] for m in members),
                    context=context,
                    continuations=tuple(m[1] for m in members),
                )
            )
        return units


def encode_items(encoder: Encoder, items: Sequence[MCItem], where: Sequence[str]) -> list[Unit]:
    """Return the units of all ``items`` (``where[i]`` names item i's task for errors)."""
    units: list[Unit] = []
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
        units.extend(encoder.units(index, item, where[index]))
    return units
