"""The store's records: job rows, unit scores and the packed per-item columns of a unit."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobRecord:
    """One row of the jobs table."""

    key: str
    kind: str
    label: str
    status: str
    attempts: int
    error: str | None
    owner: str | None
    host: str | None
    wall_s: float | None
    units: tuple[str, ...]  # the evaluation units of an evaluation job


@dataclass(frozen=True)
class UnitScore:
    """The committed score of one (model, state, target cell) evaluation unit."""

    unit_key: str
    model: str
    state: str  # "base" or the training job key of the adapter
    task: str
    language: str
    n: int
    metrics: dict[str, float]  # metric name → mean over the unit's items
    provenance: dict[str, Any]


def pack_items(items: dict[str, Any]) -> bytes:
    """Return per-item columns (doc_id, gold, loglikelihoods, metrics: {name: list}) compressed."""
    return zlib.compress(json.dumps(items, separators=(",", ":")).encode(), 6)


def unpack_items(payload: bytes) -> dict[str, list]:
    """Return the per-item columns packed by ``pack_items``."""
    return json.loads(zlib.decompress(payload))
