"""Greedy generation for many model states: batched, KV-cached, finished rows leave the batch.

What lm-evaluation-harness's ``hf`` model does for ``generate_until`` (0.4.x), made cheaper:

- the context is tokenised as lm-eval's ``tok_batch_encode`` does (the tokenizer's own BOS rule;
  none added when the text starts with the BOS string) and cut from the left to
  ``max_length - max_new_tokens`` tokens;
- greedy: the argmax token at every step (lm-eval calls ``generate`` with ``do_sample=False``);
- the stop strings are the task's ``until`` plus the decoded EOS token, and the text is cut at
  the first occurrence of each stop string in turn (lm-eval's ``postprocess_generated_text``);
  generation also ends at the EOS token id or after ``max_new_tokens`` tokens.

Rows that open alike (a task's few-shot prompt) are batched together and the tokens all rows of
a batch open with are computed once, their cache shared; the other rows are batched by context
length (longest first, as lm-eval). Rows are left-padded, with position ids counted from each
row's first real token, so a row computes what it would alone. A row that has produced a stop
string or EOS is removed from the batch and from the KV cache at once. The base model stays
loaded; the base and its LoRA adapters run side by side, each batch's prompts once per state in
one forward pass (PEFT's mixed-adapter batches); other trained states are swapped in alone.
Each step's token is the fp32 argmax over the vocabulary, found through a bf16 screen where the
CPU has bf16 instructions (`transferlab.generation.greedy`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from transferlab.generation.greedy import Chooser, next_token_chooser
from transferlab.models import LoadedModel
from transferlab.scoring.adapters import AdapterSwitch, ModelState, check_adapter, mixable
from transferlab.tokenization import Encoder, pad_token_id, resolve_max_length

DEFAULT_MAX_NEW_TOKENS = 256  # lm-eval's max_gen_toks default


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to continue: its text, extra stop strings and the token budget."""

    context: str
    until: tuple[str, ...] = ()
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS


def stop_strings(tokenizer, until: Sequence[str]) -> list[str]:
    """Return ``until`` plus the decoded EOS token (always a stop, as in lm-eval)."""
    stops = [s for s in until if s]
    eos_id = tokenizer.eos_token_id
    if eos_id is not None:
        eos = tokenizer.decode([eos_id], skip_special_tokens=False)
        if eos and eos not in stops:
            stops.append(eos)
    return stops


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """Return ``text`` before each stop string in turn (lm-eval's post-processing)."""
    for stop in stops:
        if stop:
            text = text.split(stop)[0]
    return text


def _cache_argument(model) -> str:
    # transformers renamed the forward argument `past_key_values` to `cache` (5.2x)
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


Row = tuple[int, int]  # (state index in its pack, request index)


class _Batch:
    """The rows of one decoding batch: which are still running and what each has produced.

    With several states in the batch (``adapters``: each one's PEFT name) the rows are ordered
    state by state, each state with the same requests.
    """

    def __init__(self, rows: list[Row], stops: list[list[str]], budgets: list[int],
                 adapters: list[str] | None) -> None:  # fmt: skip
        self.rows = rows  # each live row, in cache order
        self.stops = {r: s for r, s in zip(rows, stops, strict=True)}
        self.budget = {r: b for r, b in zip(rows, budgets, strict=True)}
        self.tokens: dict[Row, list[int]] = {r: [] for r in rows}
        self.adapters = adapters

    def adapter_names(self, rows: Sequence[Row]) -> dict[str, list[str]]:
        """The ``adapter_names`` argument for ``rows`` (none when the batch holds one state)."""
        if self.adapters is None:
            return {}
        return {"adapter_names": [self.adapters[state] for state, _request in rows]}


SHARED_PREFIX_MIN = 16  # tokens: a shorter common opening is not worth a forward pass of its own


def shared_prefix(contexts: Sequence[Sequence[int]], limit: int | None = None) -> int:
    """Return how many leading tokens all ``contexts`` share, leaving each one of its own.

    0 when that is under ``SHARED_PREFIX_MIN``, or when a row (its context and ``limit`` new
    tokens) could outgrow ``limit``, a sliding attention window: the prefix's padding would
    then sit inside the window where, computed alone, real tokens would.
    """
    first = contexts[0]
    common = min(len(c) for c in contexts) - 1
    for context in contexts[1:]:
        k = 0
        while k < common and context[k] == first[k]:
            k += 1
        common = k
    if common < SHARED_PREFIX_MIN or (limit is not None and max(map(len, contexts)) > limit):
        return 0
    return common


def batch_rows(contexts: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Return the context indices of each batch, longest contexts first.

    Contexts whose first ``SHARED_PREFIX_MIN`` tokens are alike form a group that is batched on
    its own, so that a task's few-shot opening is computed once per batch instead of being
    lost to a neighbour from another task; a group is cut into batches of near-equal size. The
    remaining contexts are batched together by length.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, context in enumerate(contexts):
        groups.setdefault(tuple(context[:SHARED_PREFIX_MIN]), []).append(i)
    alike: list[list[int]] = []
    others: list[int] = []
    for key, group in groups.items():
        if len(group) > 1 and len(key) == SHARED_PREFIX_MIN:
            alike.append(group)
        else:
            others += group
    batches = []
    for group in [*alike, others] if others else alike:
        group = sorted(group, key=lambda i: (-len(contexts[i]), contexts[i]))
        batches += _near_equal_chunks(group, batch_size)
    return sorted(batches, key=lambda rows: (-len(contexts[rows[0]]), rows[0]))


def _near_equal_chunks(items: list, most: int) -> list[list]:
    """Cut ``items`` into as few chunks of at most ``most`` as possible, of near-equal sizes
    (18 items at most 16 → 9 + 9, not 16 + 2)."""
    count = -(-len(items) // most)
    bounds = [len(items) * k // count for k in range(count + 1)]
    return [items[a:b] for a, b in pairwise(bounds) if b > a]


# When states share forward passes: at most this many states, and rows, per pass (more rows
# gain little on a CPU; a smaller --batch-size still means fewer rows, as a user expects).
MAX_STATES_PER_PASS = 8
MAX_PACKED_ROWS = 128


def state_packs(states: Sequence[ModelState], batch_size: int) -> list[list[ModelState]]:
    """Return the states in groups whose rows share each forward pass.

    On a CPU a forward pass of 64 rows costs about half as much per row as one of 16, and lm-eval,
    one process per state, cannot join states. The base model and LoRA adapters (`mixable`) are
    grouped, up to ``MAX_STATES_PER_PASS`` and as many as fit ``MAX_PACKED_ROWS`` rows of
    ``batch_size`` prompts, in groups of near-equal size; a full fine-tune or another adapter
    type runs alone.
    """
    joins = [mixable(state) for state in states]  # reads each adapter's config once
    joinable = [state for state, joins_others in zip(states, joins, strict=True) if joins_others]
    packs = [[state] for state, joins_others in zip(states, joins, strict=True) if not joins_others]
    if joinable:
        per_pack = max(1, min(MAX_STATES_PER_PASS, MAX_PACKED_ROWS // batch_size))
        packs = _near_equal_chunks(joinable, per_pack) + packs
    return packs


def _sliding_window(model, max_new_tokens: int) -> int | None:
    """Return how long a context may be for its padding to stay out of a sliding window."""
    window = getattr(model.config.get_text_config(), "sliding_window", None)
    return None if window is None else max(window - max_new_tokens, 0)


def _generate_batch(loaded: LoadedModel, forward, choose: Chooser, contexts: list[list[int]],
                    batch: _Batch, eos_id: int | None, pad: int) -> None:  # fmt: skip
    """Decode ``batch`` (``contexts``: each row's tokens) with ``forward``, the model to call,
    and ``choose``, the greedy choice from its output."""
    import torch

    model, device, tokenizer = loaded.model, loaded.device, loaded.tokenizer
    cache, cache_arg = None, _cache_argument(model)
    # A task's rows often open alike (a few-shot prompt): that opening is computed once, its
    # cache copied to every row, and each row's own tokens follow it, padded on their left so
    # that all end together. The mask hides the padding, positions count real tokens only.
    shared = 0
    if len(contexts) > 1:
        window = _sliding_window(model, max(batch.budget.values()))
        shared = shared_prefix(contexts, window)
    if shared:
        # one prefix row per state: the states' rows follow one another, as many each
        leaders = [
            row for k, row in enumerate(batch.rows) if k == 0 or row[0] != batch.rows[k - 1][0]
        ]
        with torch.inference_mode():
            prefix = torch.tensor([contexts[0][:shared]] * len(leaders), device=device)
            cache = forward(input_ids=prefix, use_cache=True, logits_to_keep=1,
                            **batch.adapter_names(leaders))[cache_arg]  # fmt: skip
            cache.batch_repeat_interleave(len(contexts) // len(leaders))
    width = max(len(c) for c in contexts) - shared
    ids = torch.full((len(contexts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(contexts), shared + width), dtype=torch.long)
    mask[:, :shared] = 1
    for k, context in enumerate(contexts):
        own = context[shared:]
        ids[k, width - len(own) :] = torch.tensor(own)
        mask[k, shared + width - len(own) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    with torch.inference_mode():
        while batch.rows:
            out = forward(input_ids=ids, attention_mask=mask, position_ids=positions,
                          use_cache=True, logits_to_keep=1, **{cache_arg: cache},
                          **batch.adapter_names(batch.rows))  # fmt: skip
            cache = out[cache_arg]
            chosen = choose(out.logits[:, -1])
            keep = []
            for k, (row, token) in enumerate(zip(batch.rows, chosen, strict=True)):
                produced = batch.tokens[row]
                produced.append(token)
                tail = tokenizer.decode(produced[-16:], skip_special_tokens=False)
                finished = (
                    token == eos_id
                    or len(produced) >= batch.budget[row]
                    or any(stop in tail for stop in batch.stops[row])
                )
                if not finished:
                    keep.append(k)
            if len(keep) < len(batch.rows):
                if not keep:
                    return
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, positions = mask[index], positions[index]
                chosen = [chosen[k] for k in keep]
                batch.rows = [batch.rows[k] for k in keep]
            ids = torch.tensor(chosen, device=device)[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions[:, -1:] + 1


def generate(
    loaded: LoadedModel,
    states: Sequence[ModelState],
    requests: Sequence[GenerationRequest],
    batch_size: int = 16,
    progress: bool = True,
    bf16_screen: bool | None = None,
) -> dict[str, list[str]]:
    """Return, per state name, the greedy continuation of every request (cut at its stops).

    ``bf16_screen``: how the argmax over the vocabulary is found (`greedy.next_token_chooser`;
    the tokens are the same either way); None: screened in bf16 where the CPU has bf16
    instructions.
    """
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for state in states:
        if state.adapter_dir is not None:
            check_adapter(loaded, state.adapter_dir)
    tokenizer = loaded.tokenizer
    max_length = resolve_max_length(loaded.model.config, tokenizer)
    encoder = Encoder(tokenizer, max_length)
    # tokenised once, for every state; left-truncated to leave room for the new tokens
    contexts = [encoder.encode(r.context)[-(max_length - r.max_new_tokens) :] for r in requests]
    stops = [stop_strings(tokenizer, r.until) for r in requests]
    batches = batch_rows(contexts, batch_size)
    eos_id, pad = tokenizer.eos_token_id, pad_token_id(tokenizer)
    results = {state.name: [""] * len(requests) for state in states}
    bar = tqdm(total=len(states) * len(requests), desc="generating", unit="prompt",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)  # fmt: skip
    with AdapterSwitch(loaded) as switch, bar:
        for pack in state_packs(states, batch_size):
            bar.set_postfix_str(", ".join(state.name for state in pack))
            # the chooser looks at the output layer as this pack has it (a full fine-tune's)
            with (
                switch.together(pack) as adapters,
                next_token_chooser(loaded, bf16_screen) as choose,
            ):
                forward = loaded.model if adapters is None else switch.peft
                for requests_in_batch in batches:
                    rows = [(s, i) for s in range(len(pack)) for i in requests_in_batch]
                    batch = _Batch(rows, [stops[i] for _s, i in rows],
                                   [requests[i].max_new_tokens for _s, i in rows], adapters)  # fmt: skip
                    _generate_batch(loaded, forward, choose, [contexts[i] for _s, i in rows],
                                    batch, eos_id, pad)  # fmt: skip
                    for s, i in rows:
                        text = tokenizer.decode(batch.tokens[(s, i)], skip_special_tokens=True)
                        results[pack[s].name][i] = cut_at_stops(text, stops[i])
                    bar.update(len(rows))
    return results
