"""(context, continuation) pairs → token ids, exactly as lm-evaluation-harness tokenises them.

lm-eval (``HFLM``, 0.4.x) scores a continuation of a context as the pair
``(context, continuation)``:

- trailing whitespace of the context moves to the front of the continuation;
- the context is encoded alone and the continuation is what encoding ``context + continuation``
  adds after ``len(context_tokens)`` tokens (so the split is by count, as lm-eval does it);
- ``tokenizer.encode`` runs with the tokenizer's own special-token default (so a BOS is added
  exactly when the tokenizer adds one), except that text already starting with the BOS string
  is encoded without special tokens;
- an empty context becomes the prefix token (BOS, else EOS) unless the continuation already
  starts with it.

Training tokenises its examples with the same ``Encoder``, so the target tokens trained on are
exactly the continuation tokens the scorer scores.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MAX_LENGTH = 2048  # lm-eval's default when neither config nor tokenizer says
_TOKENIZER_INFINITY = 1000000000000000019884624838656


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


def pad_token_id(tokenizer: Any) -> int:
    """Return the id to pad rows with: pad, else EOS, else BOS, else 0 (never attended to)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0
