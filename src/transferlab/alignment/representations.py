"""Hidden-state representations of dictionary entries, at every layer, for many model states.

One forward pass per entry gives every layer (``output_hidden_states``); entries are batched by
length with right padding, so a real token never attends to a pad (causal attention) and an
entry's vectors are the same alone or in a batch. Each entry is tokenised as lm-eval splits a
context and its continuation: the template's text before ``{entry}`` is the context (BOS when
empty), the entry the continuation, and only the entry's tokens are pooled (their mean, or the
last one). The base model stays loaded; adapters are swapped in and out as for scoring.
Results are cached under ``$TRANSFERLAB_HOME/representations`` by everything that determines
them: model hash, adapter hash, the entries, pooling, template, dtype and library versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from transferlab.adapter_files import adapter_hash
from transferlab.conversion import transferlab_home
from transferlab.errors import UserError
from transferlab.models import LoadedModel
from transferlab.scoring.adapters import AdapterSwitch, ModelState, check_adapter
from transferlab.tokenization import Encoder, pad_token_id

POOLINGS = ("mean", "last")
ENTRY = "{entry}"


@dataclass(frozen=True)
class Pooling:
    """How an entry becomes one vector per layer: token mean or last token, inside a template."""

    mode: str = "mean"
    template: str = ENTRY

    def __post_init__(self) -> None:
        if self.mode not in POOLINGS:
            raise UserError("--pooling", f"unknown pooling {self.mode!r}", "use mean or last")
        if self.template.count(ENTRY) != 1:
            raise UserError(
                "--template", f"{self.template!r} must hold {ENTRY} once", 'e.g. "Word: {entry}"'
            )


@dataclass(frozen=True)
class EncodedEntry:
    """An entry's token ids and the slice of them that is the entry itself."""

    ids: tuple[int, ...]
    start: int
    end: int


def encode_entries(tokenizer, entries: Sequence[str], template: str) -> list[EncodedEntry | None]:
    """Return each entry's tokens inside ``template`` (None where the entry has no tokens)."""
    encoder = Encoder(tokenizer, max_length=1 << 30)
    prefix, _, suffix = template.partition(ENTRY)
    suffix_ids = encoder.encode(suffix, add_special_tokens=False) if suffix else []
    out: list[EncodedEntry | None] = []
    for entry in entries:
        context, tokens = encoder.pair(prefix, entry)
        if not entry.strip() or not tokens:
            out.append(None)
            continue
        ids = (*context, *tokens, *suffix_ids)
        out.append(EncodedEntry(ids, len(context), len(context) + len(tokens)))
    return out


def _forward(loaded: LoadedModel, batch: list[EncodedEntry], pooling: str, pad: int) -> np.ndarray:
    """Return [layers, len(batch), hidden] pooled vectors of one right-padded batch."""
    import torch

    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    pool = torch.zeros((len(batch), width), dtype=torch.float32)
    for row, entry in enumerate(batch):
        ids[row, : len(entry.ids)] = torch.tensor(entry.ids)
        mask[row, : len(entry.ids)] = 1
        if pooling == "mean":
            pool[row, entry.start : entry.end] = 1.0 / (entry.end - entry.start)
        else:
            pool[row, entry.end - 1] = 1.0
    device = loaded.device
    # The decoder alone: the LM head would project every position onto the whole vocabulary
    # (Gemma's 262k tokens), most of the cost, for logits nothing here reads.
    decoder = loaded.model.base_model
    with torch.inference_mode():
        out = decoder(
            input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True
        )
        layers = torch.stack([h.float() for h in out.hidden_states])  # [L+1, B, T, H]
        pooled = torch.einsum("lbth,bt->lbh", layers, pool.to(device))
    return pooled.cpu().numpy()


def _cache_file(loaded: LoadedModel, state: ModelState, entries: Sequence[str], pooling: Pooling):
    import torch
    import transformers

    parts = {
        "model": loaded.model_hash,
        "adapter": adapter_hash(state.adapter_dir) if state.adapter_dir else None,
        "entries": hashlib.sha256("\n".join(entries).encode()).hexdigest(),
        "pooling": asdict(pooling),
        "dtype": loaded.dtype,
        "versions": [torch.__version__, transformers.__version__],
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    return transferlab_home() / "representations" / f"{key}.npy"


def _save(file: Path, array: np.ndarray) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    staging = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    with staging.open("wb") as fh:
        np.save(fh, array)
    os.replace(staging, file)  # a killed run never leaves a half-written cache entry


def entry_representations(
    loaded: LoadedModel,
    states: Sequence[ModelState],
    entries: dict[str, Sequence[str]],
    pooling: Pooling | None = None,
    batch_size: int = 32,
    progress: bool = True,
    cache: bool = True,
) -> dict[tuple[str, str], np.ndarray]:
    """Return {(state name, language): [layers, entries, hidden]} (NaN rows: entries w/o tokens).

    Layer 0 is the embedding output, layer ``i`` the output of decoder block ``i``. With
    ``cache`` False nothing is read from or written to the representation cache.
    """
    from tqdm import tqdm

    pooling = pooling or Pooling()
    for state in states:
        if state.adapter_dir is not None:
            check_adapter(loaded, state.adapter_dir)
    encoded = {lang: encode_entries(loaded.tokenizer, words, pooling.template)
               for lang, words in entries.items()}  # fmt: skip
    pad = pad_token_id(loaded.tokenizer)
    out: dict[tuple[str, str], np.ndarray] = {}
    total = len(states) * sum(len(words) for words in entries.values())
    bar = tqdm(total=total, desc="representations", unit="entry", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)  # fmt: skip
    with AdapterSwitch(loaded) as switch, bar:
        for state in states:
            bar.set_postfix_str(state.name)
            with switch.active(state):
                for lang, words in entries.items():
                    file = _cache_file(loaded, state, words, pooling) if cache else None
                    if file is not None and file.exists():
                        out[state.name, lang] = np.load(file)
                    else:
                        out[state.name, lang] = _extract(loaded, encoded[lang], pooling, pad,
                                                         batch_size)  # fmt: skip
                        if file is not None:
                            _save(file, out[state.name, lang])
                    bar.update(len(words))
    return out


def _extract(
    loaded: LoadedModel,
    encoded: list[EncodedEntry | None],
    pooling: Pooling,
    pad: int,
    batch_size: int,
) -> np.ndarray:
    kept = [i for i, e in enumerate(encoded) if e is not None]
    kept.sort(key=lambda i: -len(encoded[i].ids))  # similar lengths together: little padding
    n_layers = loaded.model.config.get_text_config().num_hidden_layers + 1
    hidden = loaded.model.config.get_text_config().hidden_size
    result = np.full((n_layers, len(encoded), hidden), np.nan, dtype=np.float32)
    for start in range(0, len(kept), batch_size):
        rows = kept[start : start + batch_size]
        result[:, rows] = _forward(loaded, [encoded[i] for i in rows], pooling.mode, pad)
    return result
