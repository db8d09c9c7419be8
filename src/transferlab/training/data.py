"""Examples → token ids with the scored positions, length-grouped batches and padded tensors."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferlab.errors import UserError
from transferlab.tasks.types import TrainExample
from transferlab.tokenization import Encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of prompt + target; tokens ``loss_start..`` are the ones the loss is taken on."""

    doc_id: str
    input_ids: tuple[int, ...]
    loss_start: int
    truncated: bool = False

    @property
    def n_loss_tokens(self) -> int:
        return len(self.input_ids) - self.loss_start


def encode_example(encoder: Encoder, example: TrainExample, max_length: int) -> EncodedExample:
    """Return the example tokenised as the scorer (and lm-eval) splits context and continuation.

    So the target tokens trained on are exactly the continuation tokens that are scored later.
    """
    context, continuation = encoder.pair(example.prompt, example.target)
    whole = [*context, *continuation]
    if example.loss_on == "all":
        loss_start = 1
    elif example.loss_on == "target":
        loss_start = max(len(context), 1)
    else:
        raise UserError(
            f"example {example.doc_id!r}",
            f"loss_on must be 'target' or 'all', got {example.loss_on!r}",
            "fix the task's training format",
        )
    if loss_start >= len(whole):
        raise UserError(
            f"example {example.doc_id!r}",
            f"target {example.target!r} adds no tokens after the prompt, so nothing can be learnt",
            "give the example a non-empty target",
        )
    truncated = len(whole) > max_length
    if truncated:
        # Keep the answer: drop tokens from the start of the prompt, as lm-eval truncates contexts.
        drop = len(whole) - max_length
        whole, loss_start = whole[drop:], max(loss_start - drop, 1)
    return EncodedExample(example.doc_id, tuple(whole), loss_start, truncated)


def encode_examples(
    tokenizer: Any, examples: Sequence[TrainExample], max_length: int
) -> list[EncodedExample]:
    """Return every example encoded; logs how many lost the start of their prompt."""
    encoder = Encoder(tokenizer, max_length)
    encoded = [encode_example(encoder, example, max_length) for example in examples]
    n_truncated = sum(e.truncated for e in encoded)
    if n_truncated:
        log.warning(
            "%d of %d examples are longer than max_length=%d tokens; their prompts were "
            "shortened from the start",
            n_truncated,
            len(encoded),
            max_length,
        )
    return encoded


def data_fingerprint(train: Sequence[EncodedExample], validation: Sequence[EncodedExample]) -> str:
    """Return a hash of the exact token ids and loss positions of both splits."""
    digest = hashlib.sha256()
    for split in (train, validation):
        digest.update(b"|split|")
        for example in split:
            digest.update(example.doc_id.encode())
            digest.update(np.asarray(example.input_ids, dtype=np.int64).tobytes())
            digest.update(example.loss_start.to_bytes(8, "little"))
    return digest.hexdigest()[:16]


def epoch_batches(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int,
    group_by_length: bool = True,
    group_batches: int = 16,
    bucket_tokens: int = 8,
) -> list[list[int]]:
    """Return this epoch's batches of example indices: shuffled, similar lengths together.

    Within windows of ``group_batches`` batches, examples are ordered by length rounded down to
    ``bucket_tokens`` (ties stay in shuffled order): padding stays under a bucket, and examples
    whose lengths differ by a token or two (often a sign of similar content) still mix.
    A pure function of its arguments, so a resumed run sees the same order.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)).tolist()
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * group_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -(lengths[i] // bucket_tokens))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches)).tolist()]


def eval_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Return batches of example indices sorted by length (longest first) for evaluation."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(examples: Sequence[EncodedExample], pad_id: int, device: str = "cpu") -> dict[str, Any]:
    """Return right-padded ids and mask plus where (row, position) each loss token is predicted."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    rows, cols, targets = [], [], []
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        mask[row, :n] = 1
        # The hidden state at position j-1 predicts token j.
        positions = range(example.loss_start, n)
        rows += [row] * len(positions)
        cols += [j - 1 for j in positions]
        targets += [example.input_ids[j] for j in positions]
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "rows": torch.tensor(rows, device=device),
        "cols": torch.tensor(cols, device=device),
        "targets": torch.tensor(targets, device=device),
        "n_tokens": int(mask.sum()),
    }
