"""Shared fixtures: tiny random models built once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from a second thread, and on a busy 2-core machine every op waits for
# both OpenMP threads to be scheduled (measured: tests/test_scoring.py 36 s → 7 s with one).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tiny_model import build_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama-architecture model folder with a byte-level BPE tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")


@pytest.fixture(scope="session")
def tiny_gemma_dir(tmp_path_factory) -> Path:
    """A tiny random Gemma-3-architecture model folder (the embedded default's architecture)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gemma3"), arch="gemma3")
