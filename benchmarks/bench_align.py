"""BLI over every language pair and layer, for the base model and K adapters, timed by stage.

What `transferlab align` computes (all 55 pairs of the 11 grid languages, one way, every layer,
base + 4 fresh LoRA adapters, Gemma 3 270M by default), through the same functions, timed stage
by stage: the representation extraction (one batched forward per entry gives every layer), then
mapping + retrieval state by state, each state's time printed as soon as it is done (with the
load average: on a shared machine the figures move with it). ``--mapping-budget S`` stops after
the first state that ends past S seconds of mapping and extrapolates the rest from the states
done, saying so. Then, on a sample of entries, it times what a notebook would do instead, one
forward per entry, against the batched extraction of the same entries, and checks that both give
the same vectors.

    .venv/bin/python benchmarks/bench_align.py [--adapters 4] [--method none --method proc]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_eval import make_adapters  # noqa: E402

from transferlab.hardware import describe_cpu_line  # noqa: E402

LANGUAGES = "ar,bn,de,en,es,fr,hi,id,it,pt,zh"


def load() -> str:
    """Return the 1-, 5- and 15-minute load averages as text."""
    return "load " + " / ".join(f"{x:.2f}" for x in os.getloadavg())


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
    parser.add_argument("--mapping-budget", type=float, default=None, help="seconds (see above)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import pandas as pd

    from transferlab.alignment.command import induction_rows
    from transferlab.alignment.dictionaries import bundled_concepts
    from transferlab.alignment.evaluate import METHODS
    from transferlab.alignment.representations import Pooling, entry_representations
    from transferlab.alignment.retrieval import RETRIEVALS
    from transferlab.alignment.table import COLUMNS
    from transferlab.models import load_model, resolve_model
    from transferlab.scoring.adapters import ModelState
    from transferlab.scoring.command import model_states

    work = Path(tempfile.mkdtemp(prefix="bench-align-"))
    adapters = make_adapters(resolve_model(args.model), work / "adapters", args.adapters, rank=32)
    languages = args.languages.split(",")
    methods = args.methods or list(METHODS)
    table = bundled_concepts()
    dictionaries = [table.pair(s, t) for s, t in itertools.combinations(languages, 2)]
    print(describe_cpu_line())
    loaded = load_model(args.model, dtype=args.dtype)
    states = model_states(adapters)
    n_layers = loaded.model.config.get_text_config().num_hidden_layers + 1
    print(f"model {args.model} ({loaded.dtype}), {len(states)} model states, {len(languages)} "
          f"languages ({len(dictionaries)} pairs, one way), {n_layers} layers, methods "
          f"{', '.join(methods)}, retrieval {', '.join(RETRIEVALS)}; {len(table.concepts)} "
          f"entries per language ({len(dictionaries[0].train)} seed, "
          f"{len(dictionaries[0].test)} test pairs)")  # fmt: skip
    print(f"start: {load()}", flush=True)

    entries = {language: table.entries[language] for language in languages}
    started = time.perf_counter()
    vectors = entry_representations(loaded, states, entries, Pooling(), progress=False,
                                    cache=False)  # fmt: skip
    extraction = time.perf_counter() - started
    n_entries = len(states) * sum(len(words) for words in entries.values())
    print(f"representation extraction: {extraction:.1f} s ({n_entries} entries × every layer, "
          f"{n_entries / extraction:.0f} entries/s); {load()}", flush=True)  # fmt: skip

    rows, per_state = [], []
    layers = list(range(n_layers))
    for state in states:
        t0 = time.perf_counter()
        found, _ = induction_rows(vectors, [state.name], dictionaries, layers, methods,
                                  RETRIEVALS, ("unit", "center", "unit"))  # fmt: skip
        per_state.append(time.perf_counter() - t0)
        rows += found
        each = per_state[-1] / (len(dictionaries) * n_layers)
        print(f"  mapping and retrieval, {state.name}: {per_state[-1]:.1f} s ({each:.2f} s per "
              f"pair and layer, every method and retrieval); {load()}", flush=True)  # fmt: skip
        if args.mapping_budget is not None and sum(per_state) > args.mapping_budget:
            break
    mapping = sum(per_state)
    print(f"representation extraction: {extraction:.1f} s")
    if len(per_state) == len(states):
        print(f"mapping and retrieval:     {mapping:.1f} s")
    else:
        estimate = mapping / len(per_state) * len(states)
        print(f"mapping and retrieval:     {mapping:.1f} s for {len(per_state)} of {len(states)} "
              f"states; all {len(states)}: about {estimate:.0f} s (extrapolated)")  # fmt: skip
    frame = pd.DataFrame(rows, columns=COLUMNS)
    best = frame.loc[frame.groupby("model_state")["mrr"].idxmax()]
    print(best.to_string(index=False, float_format=lambda x: f"{x:.3f}"))

    words = list(table.entries["de"][: args.sample])
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
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
