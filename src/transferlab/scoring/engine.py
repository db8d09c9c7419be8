"""Log-likelihoods of packed scoring units: the decoder once per row, the LM head only where scored.

A row holds a context and, after it, each choice's continuation inputs. A 4D attention mask lets
every continuation see the context and its own earlier tokens only, with position ids that
restart after the context, so each choice is scored exactly as if it had its own sequence
``context + continuation`` — the context is simply computed once. The vocabulary projection
(the largest matmul of a small multilingual model) runs only on the hidden states that predict
a continuation token, and only once per distinct position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from transferlab.errors import RunError
from transferlab.scoring.requests import Unit

log = logging.getLogger(__name__)

HEAD_CHUNK = 128  # rows of full-vocabulary logits held at once (262k vocab → 134 MB in fp32)


class UnitScorer:
    """Scores units on one loaded causal LM (whatever adapter is active at call time)."""

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

        unit = Unit(item=0, choices=(), context=tuple(tokens[:8]), continuations=())
        ids = torch.tensor([list(unit.context)], device=self.device)
        with torch.inference_mode():
            reference = torch.log_softmax(self.model(input_ids=ids).logits[0, -1].float(), -1)
            ours = self._logprob_rows([unit], [(0, len(unit.context) - 1)])
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

    def score(self, units: Sequence[Unit]) -> list[list[float]]:
        """Return, per unit, the summed log-likelihood of each of its continuations."""
        positions: dict[tuple[int, int], int] = {}
        targets: list[tuple[int, int, int, int]] = []  # (unit, continuation, position row, token)
        for b, unit in enumerate(units):
            last_context = len(unit.context) - 1
            cursor = len(unit.context)
            for j, cont in enumerate(unit.continuations):
                predictors = [last_context, *range(cursor, cursor + len(cont) - 1)]
                cursor += len(cont) - 1
                for slot, token in zip(predictors, cont, strict=True):
                    row = positions.setdefault((b, slot), len(positions))
                    targets.append((b, j, row, token))
        logprobs = self._logprob_rows(units, list(positions), [(t[2], t[3]) for t in targets])
        sums = [[0.0] * len(u.continuations) for u in units]
        for (b, j, _row, _token), value in zip(targets, logprobs.tolist(), strict=True):
            sums[b][j] += value
        return sums

    def _logprob_rows(
        self,
        units: Sequence[Unit],
        rows: list[tuple[int, int]],
        picks: list[tuple[int, int]] | None = None,
    ) -> Any:
        """Log-probabilities at (unit, slot) ``rows``: full rows, or only ``picks`` (row, token)."""
        import torch

        ids, positions, segments = self._pack(units)
        mask = self._mask(positions, segments)
        index_b = torch.tensor([r[0] for r in rows], device=self.device)
        index_s = torch.tensor([r[1] for r in rows], device=self.device)
        inputs = dict(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        with torch.inference_mode():
            if self.head_only:
                selected = self.decoder(**inputs).last_hidden_state[index_b, index_s]
            else:
                selected = self.model(**inputs).logits[index_b, index_s]
            if picks is None:
                return torch.cat(
                    [torch.log_softmax(self._project(c), -1) for c in selected.split(HEAD_CHUNK)]
                )
            pick_rows = torch.tensor([p[0] for p in picks], device=self.device)
            pick_tokens = torch.tensor([p[1] for p in picks], device=self.device)
            out = torch.empty(len(picks), dtype=torch.float32, device=self.device)
            for start in range(0, len(rows), HEAD_CHUNK):
                logits_chunk = self._project(selected[start : start + HEAD_CHUNK])
                norm = torch.logsumexp(logits_chunk, -1)
                inside = (pick_rows >= start) & (pick_rows < start + len(logits_chunk))
                local = pick_rows[inside] - start
                out[inside] = logits_chunk[local, pick_tokens[inside]] - norm[local]
            return out.cpu()

    def _project(self, selected: Any) -> Any:
        """Return fp32 logits from selected hidden states (or from already-computed logits)."""
        if self.head_only:
            return self.transform(self.head(selected).float())
        return selected.float()

    def _pack(self, units: Sequence[Unit]) -> tuple[Any, Any, Any]:
        """Return (input ids, position ids, segment ids) of the batch; segment -1 is padding."""
        import torch

        width = max(u.length for u in units)
        ids = [[self.pad_id] * width for _ in units]
        positions = [[0] * width for _ in units]
        segments = [[-1] * width for _ in units]
        for b, unit in enumerate(units):
            n = len(unit.context)
            ids[b][:n] = unit.context
            positions[b][:n] = range(n)
            segments[b][:n] = [0] * n
            cursor = n
            for j, cont in enumerate(unit.continuations, start=1):
                inputs = cont[:-1]
                end = cursor + len(inputs)
                ids[b][cursor:end] = inputs
                positions[b][cursor:end] = range(n, n + len(inputs))
                segments[b][cursor:end] = [j] * len(inputs)
                cursor = end
            positions[b][cursor:] = range(cursor, width)  # padding: any valid positions
        return (
            torch.tensor(ids, device=self.device),
            torch.tensor(positions, device=self.device),
            torch.tensor(segments, device=self.device),
        )

    def _mask(self, positions: Any, segments: Any) -> Any:
        """Return the additive 4D mask (a dict per layer type when sliding windows matter)."""
        import torch

        width = segments.shape[1]
        slot = torch.arange(width, device=self.device)
        causal = slot[:, None] >= slot[None, :]
        seg_q, seg_k = segments[:, :, None], segments[:, None, :]
        # A key is visible if it is earlier and is context or in the query's own segment;
        # padding queries see the context, so no attention row is ever empty (no NaN).
        allowed = causal[None] & (seg_k >= 0) & ((seg_k == 0) | (seg_k == seg_q))
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
