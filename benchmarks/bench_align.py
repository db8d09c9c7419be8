"""BLI over every language pair and layer, for the base model and K adapters, timed by stage.

Runs `transferlab align` (all 55 pairs of the 11 grid languages, one way, every layer, base + 4
fresh LoRA adapters, Gemma 3 270M by default) and prints the wall time of the representation
extraction (one batched forward per entry gives every layer) and of mapping + retrieval. Then,
on a sample of entries, it times what a notebook would do instead, one forward per entry, against
the batched extraction of the same entries, and checks that both give the same vectors.

    .venv/bin/python benchmarks/bench_align.py [--adapters 4] [--method none --method proc]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_eval import make_adapters  # noqa: E402

from transferlab.hardware import describe_cpu_line  # noqa: E402

LANGUAGES = "ar,bn,de,en,es,fr,hi,id,it,pt,zh"


def one_forward_per_entry(loaded, words: list[str]):
    """Return [layers, entries, hidden] mean-pooled vectors, one unbatched forward per entry."""
    import numpy as np
    import torch

    from transferlab.alignment.representations import encode_entries

    rows = []
    for entry in encode_entries(loaded.tokenizer, words, "{entry}"):
        with torch.inference_mode():
            out = loaded.model(torch.tensor([entry.ids]), output_hidden_states=True)
        rows.append(
            [h[0, entry.start : entry.end].float().mean(0).numpy() for h in out.hidden_states]
        )
    return np.stack(rows, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--adapters", type=int, default=4)
    parser.add_argument("--languages", default=LANGUAGES)
    parser.add_argument("--method", dest="methods", action="append", default=None)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--sample", type=int, default=200, help="entries for the unbatched check")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np

    from transferlab.alignment import Pooling, align_command, bundled_concepts
    from transferlab.alignment.evaluate import METHODS
    from transferlab.alignment.representations import entry_representations
    from transferlab.models import load_model, resolve_model
    from transferlab.scoring.adapters import ModelState

    work = Path(tempfile.mkdtemp(prefix="bench-align-"))
    model_dir = resolve_model(args.model)
    adapters = make_adapters(model_dir, work / "adapters", args.adapters, rank=32)
    languages = args.languages.split(",")
    methods = args.methods or list(METHODS)
    print(describe_cpu_line())
    print(f"model {args.model}, {1 + len(adapters)} model states, {len(languages)} languages "
          f"({len(languages) * (len(languages) - 1) // 2} pairs, one way), every layer, "
          f"methods {', '.join(methods)}, dtype {args.dtype}")  # fmt: skip
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average)")
    started = time.perf_counter()
    table = align_command(args.model, adapters, languages, work / "out", methods=methods,
                          dtype=args.dtype, one_way=True, progress=False, cache=False)  # fmt: skip
    total = time.perf_counter() - started
    info = json.loads((work / "out" / "alignment.json").read_text())
    print(f"rows: {len(table)}; total {total:.1f} s")
    print(f"  representation extraction: {info['extraction_s']:.1f} s")
    print(f"  mapping and retrieval:      {info['induction_s']:.1f} s")
    best = table.loc[table.groupby("model_state")["mrr"].idxmax()]
    print(best.to_string(index=False, float_format=lambda x: f"{x:.3f}"))

    words = list(bundled_concepts().entries["de"][: args.sample])
    loaded = load_model(args.model, dtype=args.dtype)
    t0 = time.perf_counter()
    batched = entry_representations(loaded, [ModelState("base")], {"de": words}, Pooling(),
                                    progress=False, cache=False)["base", "de"]  # fmt: skip
    t1 = time.perf_counter()
    single = one_forward_per_entry(loaded, words)
    t2 = time.perf_counter()
    # relative: Gemma's hidden states have dimensions in the thousands, so absolute differences
    # of bf16 rounding look large
    relative = np.linalg.norm(batched - single, axis=-1) / np.linalg.norm(single, axis=-1)
    print(f"{len(words)} entries, base model: batched extraction {t1 - t0:.1f} s, one forward "
          f"per entry {t2 - t1:.1f} s ({(t2 - t1) / (t1 - t0):.1f}x); largest relative "
          f"difference of a vector {relative.max():.1e} ({loaded.dtype})")  # fmt: skip
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
