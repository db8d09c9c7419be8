"""Cross-lingual alignment of a model's own representations by bilingual lexicon induction.

dictionaries (entries and seed/test pairs) → representations (hidden states per layer, per model
state) → mapping (PROC, PROC-B) → retrieval (cosine, CSLS; P@k, MRR) → evaluate (one pair and
layer) → command (`transferlab align`).
"""

from transferlab.alignment.command import align_command
from transferlab.alignment.dictionaries import (
    BilingualDictionary,
    bundled_concepts,
    read_dictionary,
)
from transferlab.alignment.representations import Pooling, entry_representations

__all__ = [
    "BilingualDictionary",
    "Pooling",
    "align_command",
    "bundled_concepts",
    "entry_representations",
    "read_dictionary",
]
