"""The output layer on a strided last-position slice: the torch slow path adapter runs fall into.

``logits_to_keep=1`` (what ``generate`` passes) slices the last position of the hidden states
into a strided ``[rows, 1, hidden]`` view. torch folds such an input into one matrix product
only while the weight requires grad; a frozen weight (every PEFT adapter state) takes a batched
product that copies the vocabulary matrix once per row. This times Gemma 3 270M's output layer
(262,144 × 640) on 16 rows for both dtypes, both requires_grad settings and both layouts;
transferlab's generation hands the layer a contiguous copy of the slice.

    .venv/bin/python benchmarks/bench_head_input.py [--rows 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

VOCAB, HIDDEN = 262_144, 640  # Gemma 3's tied embedding


def best_of(fn, repeats: int) -> float:
    """Return the fastest of ``repeats`` calls after a warm-up (none for one call: a slow path)."""
    if repeats > 1:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.rows} rows, {VOCAB} × {HIDDEN} output layer, {args.threads} thread(s)")
    for dtype in (torch.float32, torch.bfloat16):
        head = torch.nn.Linear(HIDDEN, VOCAB, bias=False, dtype=dtype)
        hidden = torch.randn(args.rows, 30, HIDDEN, dtype=dtype)
        strided = hidden[:, -1:, :]
        for trainable in (True, False):
            head.weight.requires_grad_(trainable)
            with torch.inference_mode():
                times = {
                    layout: best_of(
                        lambda x=x, head=head: head(x), repeats=1 if layout == "strided" else 3
                    )
                    for layout, x in (("contiguous", strided.contiguous()), ("strided", strided))
                }
            print(f"{str(dtype).removeprefix('torch.'):8} weight requires_grad={trainable!s:5}  "
                  f"contiguous {times['contiguous']:.3f} s  strided {times['strided']:.3f} s  "
                  f"({times['strided'] / times['contiguous']:.1f}×)")  # fmt: skip


if __name__ == "__main__":
    main()
