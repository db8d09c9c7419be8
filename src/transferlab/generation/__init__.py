"""Greedy generation for the base model and every adapter (see ``engine``)."""

from transferlab.generation.engine import (
    DEFAULT_MAX_NEW_TOKENS,
    GenerationRequest,
    cut_at_stops,
    generate,
    stop_strings,
)

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "GenerationRequest",
    "cut_at_stops",
    "generate",
    "stop_strings",
]
