"""Shields against third-party libraries' noise that is not the user's business."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """Run PEFT calls without the FutureWarning they trigger inside transformers.

    PEFT still reads transformers' deprecated ``is_gradient_checkpointing`` alias when it wraps
    or loads a model; the warning is about PEFT's code, so users should not see it every time.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        yield
