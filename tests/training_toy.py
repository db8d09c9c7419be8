"""A learnable toy source for the training tests: the answer letter follows from the question."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

from transferlab.tasks.types import TrainExample

CONTINENTS = ("Europe", "Asia", "Africa", "Oceania")


def toy_examples(n: int, start: int = 0, seed: int = 0) -> list[TrainExample]:
    """Return ``n`` letter-format examples of varied length whose answer the prompt determines."""
    rng = random.Random(seed)
    examples = []
    for i in range(start, start + n):
        k = rng.randrange(4)
        preamble = "Frage: " * (i % 4)  # varied lengths, so padding and grouping matter
        options = "\n".join(
            f"{letter}) {name}" for letter, name in zip("ABCD", CONTINENTS, strict=True)
        )
        prompt = f"{preamble}Question: Which continent is {CONTINENTS[k]} in?\n{options}\nAnswer:"
        examples.append(TrainExample(f"toy-{i}", prompt, f" {'ABCD'[k]}"))
    return examples


def learnable_copy(tiny_dir: Path, out: Path, scale: float = 25.0) -> Path:
    """Write a copy of a tiny random model whose logits can become confident.

    The random tiny model's tied embeddings are so small that its logits span about one nat
    whatever the hidden state, so no LoRA update could fit anything; scaling them lifts that cap.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(scale)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(out)
    return out


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: tiny models gain nothing from two, and suffer on a busy CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
