"""Cross-lingual alignment of a model's own representations by bilingual lexicon induction.

dictionaries (entries and seed/test pairs) → representations (hidden states per layer, per model
state) → mapping (PROC, PROC-B) → retrieval (cosine, CSLS; P@k, MRR) → evaluate (one pair and
layer) → command (`transferlab align`). The names below are imported when first used, so that
reading the bundled dictionary (as a study's config check does) loads no model code.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "align_command": "command",
    "BilingualDictionary": "dictionaries",
    "bundled_concepts": "dictionaries",
    "read_dictionary": "dictionaries",
    "Pooling": "representations",
    "entry_representations": "representations",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
