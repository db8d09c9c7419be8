"""Datasets of a task: local files, or a Hugging Face hub dataset (or a local copy of one)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.errors import UserError
from transferlab.tasks.files import read_rows
from transferlab.tasks.prompts import per_language

log = logging.getLogger(__name__)

# A folder holding hub datasets in the hub's layout: $TRANSFERLAB_DATASETS/<owner>/<name>/...
DATASETS_ENV = "TRANSFERLAB_DATASETS"


def fill_language(pattern: str, language: str) -> str:
    """Return ``pattern`` with ``{language}`` replaced."""
    return pattern.replace("{language}", language)


@dataclass
class LocalFiles:
    """Rows from local files: ``files`` maps a pool (split) name to a file pattern, or one
    pattern holds every pool and ``split_column`` says which rows belong to which."""

    base: Path
    files: str | dict[str, Any]
    where: str
    split_column: str | None = None
    language_column: str | None = None
    _cache: dict[Path, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def pools(self) -> list[str] | None:
        """Return the pool names the files declare (None when a split column decides)."""
        return None if isinstance(self.files, str) else list(self.files)

    def _read(self, path: Path, field_name: str) -> list[dict[str, Any]]:
        if path not in self._cache:
            self._cache[path] = read_rows(path, self.where, field_name)
        return self._cache[path]

    def _select(self, rows, column: str, value: str, field_name: str) -> list[dict[str, Any]]:
        if rows and column not in rows[0]:
            raise UserError(
                self.where,
                f"{field_name}: column {column!r} is not in the data",
                f"use one of: {', '.join(rows[0])}",
            )
        return [row for row in rows if str(row[column]) == value]

    def load(self, language: str, pool: str) -> list[dict[str, Any]]:
        """Return the rows of one pool in one language."""
        if isinstance(self.files, str):
            pattern, field_name = self.files, "data.files"
        else:
            if pool not in self.files:
                raise UserError(
                    self.where,
                    f"data.files: no file for split {pool!r}",
                    f"add `{pool}:` under data.files (it has {', '.join(self.files)})",
                )
            pattern, field_name = self.files[pool], f"data.files.{pool}"
        pattern = per_language(pattern, language, self.where, field_name)
        rows = self._read(self.base / fill_language(pattern, language), field_name)
        if self.language_column:
            rows = self._select(rows, self.language_column, language, "data.language_column")
        if self.split_column:
            rows = self._select(rows, self.split_column, pool, "data.split_column")
        elif isinstance(self.files, str) and self.pools() is None:
            raise UserError(
                self.where,
                "data.split_column: one file holds every split but no split column is named",
                "name the column that says each row's split, or map splits to files",
            )
        return rows

    def describe(self) -> str:
        """Return a short description of where the rows come from."""
        bundled = self.base.resolve() == (Path(__file__).parent / "suite").resolve()
        return "bundled" if bundled else f"local files in {self.base}"


def _hub_resolvable() -> bool:
    # A DNS lookup fails at once offline, where `datasets` would retry for half a minute.
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    try:
        socket.getaddrinfo(host or "huggingface.co", 443)
    except OSError:
        return False
    return True


@dataclass
class HubDataset:
    """Rows from a Hugging Face hub dataset (per-language config; pools are the hub's splits).

    When ``$TRANSFERLAB_DATASETS/<owner>/<name>`` exists it is read instead of the hub, so a copy
    made with ``huggingface-cli download --repo-type dataset <id> --local-dir ...`` works offline.
    """

    path: str | dict[str, str]
    where: str
    config: str | dict[str, str] | None = "{language}"
    revision: str | None = None
    _cache: dict[tuple[str, str, str], list[dict[str, Any]]] = field(
        default_factory=dict, repr=False
    )

    def resolve(self, language: str) -> tuple[str, str | None, Path | None]:
        """Return (hub id, config name, local copy folder or None) for one language."""
        hub_id = per_language(self.path, language, self.where, "data.hub")
        config = per_language(self.config, language, self.where, "data.config")
        config = fill_language(config, language) if config else None
        root = os.environ.get(DATASETS_ENV)
        local = Path(root) / hub_id if root else None
        return hub_id, config, local if local is not None and local.is_dir() else None

    def load(self, language: str, pool: str) -> list[dict[str, Any]]:
        """Return the rows of one hub split in one language's config."""
        hub_id, config, local = self.resolve(language)
        key = (str(local or hub_id), config or "", pool)
        if key not in self._cache:
            self._cache[key] = self._fetch(hub_id, config, local, pool)
        return self._cache[key]

    def _fetch(self, hub_id: str, config: str | None, local: Path | None, pool: str):
        import datasets

        source = str(local) if local else hub_id
        if not local and not _hub_resolvable():
            raise UserError(
                self.where,
                f"data.hub: {hub_id} has no local copy and the hub cannot be reached",
                f"set {DATASETS_ENV} to a folder holding a copy at <folder>/{hub_id} "
                f"(huggingface-cli download --repo-type dataset {hub_id} "
                f"--local-dir <folder>/{hub_id}) or connect to the hub",
            )
        log.info("loading %s (config %s, split %s)", source, config, pool)
        try:
            dataset = datasets.load_dataset(
                source,
                config,
                split=pool,
                revision=None if local else self.revision,
                cache_dir=os.environ.get("HF_DATASETS_CACHE"),
            )
        except Exception as error:  # datasets raises many types for one cause: not reachable
            hint = (
                f"check that {local} holds config {config!r} with split {pool!r}"
                if local
                else f"check the dataset id, or put a copy under ${DATASETS_ENV}/{hub_id}"
            )
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(
                self.where, f"data.hub: cannot load {hub_id} ({config}/{pool}): {message}", hint
            ) from None
        return dataset.to_list()

    def describe(self) -> str:
        """Return a short description, saying whether a local copy is present."""
        hub_id = self.path if isinstance(self.path, str) else self.path.get("default", "")
        others = [] if isinstance(self.path, str) else sorted(set(self.path.values()) - {hub_id})
        names = ", ".join([hub_id, *others])
        root = os.environ.get(DATASETS_ENV)
        present = root and all((Path(root) / n).is_dir() for n in [hub_id, *others])
        return f"hub {names}" + (
            " (local copy)" if present else f" (needs the hub or {DATASETS_ENV})"
        )
