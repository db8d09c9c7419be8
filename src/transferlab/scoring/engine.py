"""Log-likelihoods of packed rows: the decoder once per row, the LM head only where scored.

A row (see ``packing``) is a tree of token slots; a 4D attention mask lets each slot see its
ancestors and itself only, with its depth as position id, so every sequence is computed exactly
as if it were alone while shared prefixes are computed once. The vocabulary projection (the
largest matmul of a small multilingual model) runs only on the hidden states that predict a
continuation token, once per distinct slot, pooled across batches into wide matmuls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from transferlab.errors import RunError
from transferlab.scoring.packing import Row
from transferlab.scoring.requests import ChoiceGroup

log = logging.getLogger(__name__)

# Rows the vocabulary projection takes at once: a wider matmul runs faster (single core: +15%
# from 128 to 512 rows), at 512 MB of fp32 logits for a 262k vocabulary.
HEAD_ROWS = 512


class RowScorer:
    """Scores packed rows on one loaded causal LM (whatever adapter is active at call time)."""

    def __init__(self, model: Any, pad_id: int, device: str) -> None:
        self.model = model
        self.pad_id = pad_id
        self.device = device
        config = (
            model.config.get_text_config()
            if hasattr(model.config, "get_text_config")
            else model.config
        )
        self.decoder = model.get_decoder()
        self.head = model.get_output_embeddings()
        if self.decoder is None or self.head is None:
            raise RunError(f"{type(model).__name__}: cannot find its decoder body and LM head")
        self.transform = _logit_transform(config)
        self.window = getattr(config, "sliding_window", None)
        self.layer_types = tuple(getattr(config, "layer_types", None) or ())
        self.head_only = True

    def verify(self, tokens: Sequence[int]) -> None:
        """Check the head-only path against the model's own forward; fall back if they differ."""
        import torch

        ids = torch.tensor([list(tokens[:8])], device=self.device)
        with torch.inference_mode():
            reference = torch.log_softmax(self.model(input_ids=ids).logits[0, -1].float(), -1)
            hidden = self.decoder(input_ids=ids).last_hidden_state[0, -1:]
            ours = torch.log_softmax(self._project(hidden), -1)
        gap = float((reference - ours[0]).abs().max())
        # A missing softcap or logit scale shifts log-probs by whole units; bf16 noise does not.
        tolerance = 1e-3 if self._dtype() == torch.float32 else 0.5
        if gap > tolerance:
            log.warning(
                "%s: the LM head applied alone differs from the model's forward by %.3g; "
                "computing full logits instead (slower)",
                type(self.model).__name__,
                gap,
            )
            self.head_only = False

    def _dtype(self) -> Any:
        return next(self.model.parameters()).dtype

    def score(
        self, batches: Iterable[Sequence[Row]]
    ) -> Iterator[tuple[list[ChoiceGroup], list[list[float]]]]:
        """Yield each batch's units with, per unit, the summed log-likelihood of each continuation.

        The decoder runs batch by batch; the hidden states it selects are pooled across
        batches so the vocabulary projection runs on large blocks of rows (a wider matmul).
        """
        pending: list[tuple[list[ChoiceGroup], Any, list[tuple[int, int, int, int]]]] = []
        rows = 0
        for batch in batches:
            selected, targets = self._selected(batch)
            pending.append(([u for row in batch for u in row.units], selected, targets))
            rows += len(selected)
            # Full logits (the fallback) are already vocabulary-wide: no reason to hold them.
            if rows >= HEAD_ROWS or not self.head_only:
                yield from self._finish(pending)
                pending, rows = [], 0
        yield from self._finish(pending)

    def _selected(self, batch: Sequence[Row]) -> tuple[Any, list[tuple[int, int, int, int]]]:
        """Run the decoder; return the states at scored slots and, per scored token,
        (unit index in the batch, continuation, state index, token)."""
        positions: dict[tuple[int, int], int] = {}
        targets: list[tuple[int, int, int, int]] = []
        unit_index = 0
        for b, row in enumerate(batch):
            for unit, predictors in zip(row.units, row.predictors, strict=True):
                for j, (cont, slots) in enumerate(zip(unit.continuations, predictors, strict=True)):
                    for slot, token in zip(slots, cont, strict=True):
                        state = positions.setdefault((b, slot), len(positions))
                        targets.append((unit_index, j, state, token))
                unit_index += 1
        return self._forward(batch, list(positions)), targets

    def _finish(self, pending: list) -> Iterator[tuple[list[ChoiceGroup], list[list[float]]]]:
        """Project the pooled rows and yield each pending batch's sums."""
        import torch

        if not pending:
            return
        picks, offset = [], 0
        for _units, selected, targets in pending:
            picks.extend((offset + row, token) for _b, _j, row, token in targets)
            offset += len(selected)
        values = self._pick(torch.cat([p[1] for p in pending]), picks).tolist()
        cursor = 0
        for units, _selected, targets in pending:
            sums = [[0.0] * len(u.continuations) for u in units]
            for b, j, _row, _token in targets:
                sums[b][j] += values[cursor]
                cursor += 1
            yield units, sums

    def _forward(self, batch: Sequence[Row], rows: list[tuple[int, int]]) -> Any:
        """Return the hidden states (or, in the fallback, the logits) at (row, slot) ``rows``."""
        import torch

        ids, positions, allowed = self._pack(batch)
        mask = self._mask(positions, allowed)
        index_b = torch.tensor([r[0] for r in rows], device=self.device)
        index_s = torch.tensor([r[1] for r in rows], device=self.device)
        inputs = dict(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        with torch.inference_mode():
            if self.head_only:
                return self.decoder(**inputs).last_hidden_state[index_b, index_s]
            return self.model(**inputs).logits[index_b, index_s]

    def _pick(self, selected: Any, picks: list[tuple[int, int]]) -> Any:
        """Return log p(token | row) for each (row, token) in ``picks``, as fp32 on the CPU."""
        import torch

        pick_rows = torch.tensor([p[0] for p in picks], device=self.device)
        pick_tokens = torch.tensor([p[1] for p in picks], device=self.device)
        out = torch.empty(len(picks), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            for start in range(0, len(selected), HEAD_ROWS):
                logits = self._project(selected[start : start + HEAD_ROWS])
                norm = torch.logsumexp(logits, -1)
                inside = (pick_rows >= start) & (pick_rows < start + len(logits))
                local = pick_rows[inside] - start
                out[inside] = logits[local, pick_tokens[inside]] - norm[local]
        return out.cpu()

    def _project(self, selected: Any) -> Any:
        """Return fp32 logits from selected hidden states (or from already-computed logits)."""
        if self.head_only:
            return self.transform(self.head(selected).float())
        return selected.float()

    def _pack(self, batch: Sequence[Row]) -> tuple[Any, Any, Any]:
        """Return (input ids, position ids, which slot may attend to which) of the batch."""
        import torch

        width = max(len(row) for row in batch)
        ids = [[self.pad_id] * width for _ in batch]
        positions = [[0] * width for _ in batch]
        allowed = torch.zeros(len(batch), width, width, dtype=torch.bool, device=self.device)
        # Padding slots attend to themselves, so no attention row is empty (no NaN).
        allowed[:, range(width), range(width)] = True
        causal = torch.ones(width, width, dtype=torch.bool, device=self.device).tril()
        for b, row in enumerate(batch):
            ids[b][: len(row)] = row.tokens
            positions[b][: len(row)] = row.positions
            # A run of slots each continuing the one before sees what the run's first slot's
            # parent sees, plus the run up to itself: two tensor writes per run, not per slot.
            start = 0
            while start < len(row):
                end = start + 1
                while end < len(row) and row.parents[end] == end - 1:
                    end += 1
                if row.parents[start] >= 0:
                    allowed[b, start:end] = allowed[b, row.parents[start]]
                allowed[b, start:end, start:end] = causal[: end - start, : end - start]
                start = end
        return (
            torch.tensor(ids, device=self.device),
            torch.tensor(positions, device=self.device),
            allowed,
        )

    def _mask(self, positions: Any, allowed: Any) -> Any:
        """Return the additive 4D mask (a dict per layer type when sliding windows matter)."""
        import torch

        dtype = self._dtype()

        def additive(keep: Any) -> Any:
            blocked = torch.zeros(keep.shape, dtype=dtype, device=self.device)
            return blocked.masked_fill(~keep, torch.finfo(dtype).min)[:, None]

        full = additive(allowed)
        sliding_layers = "sliding_attention" in self.layer_types
        if not self.window or not sliding_layers or int(positions.max()) < self.window:
            return full
        near = (positions[:, :, None] - positions[:, None, :]) < self.window
        sliding = additive(allowed & near)
        if set(self.layer_types) == {"sliding_attention"}:
            return sliding
        return {"full_attention": full, "sliding_attention": sliding}


def _logit_transform(config: Any) -> Callable[[Any], Any]:
    """Return what the model's forward applies to the head's output (softcapping, scaling)."""
    import torch

    cap = getattr(config, "final_logit_softcapping", None)
    scale = getattr(config, "logit_scale", None)  # Cohere multiplies
    divide = getattr(config, "logits_scaling", None)  # Granite divides

    def transform(logits: Any) -> Any:
        if scale is not None:
            logits = logits * scale
        if divide is not None:
            logits = logits / divide
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return logits

    return transform
