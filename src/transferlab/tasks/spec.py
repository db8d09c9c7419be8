"""TaskSpec: a multiple-choice task as data, with its parallel splits, items and training examples."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from transferlab.errors import UserError, did_you_mean
from transferlab.metrics import PRIMARY, metric_names
from transferlab.tasks.generative import GenerationSettings
from transferlab.tasks.splits import SPLITS, SplitPlan, check_unique, select_splits
from transferlab.tasks.types import GenItem, MCItem, TrainExample

ANSWER_FORMATS = ("letters", "cloze")
METRICS = metric_names("multiple_choice")  # the registered metrics a task may name headline
TRAIN_FORMATS = ("letters", "answer_text", "continuation")
OUTPUT_TYPES = ("multiple_choice", "generate")
HASH_VERSION = "tasks-v1"


class Dataset(Protocol):
    """Where a task's rows come from: named pools (splits) per language."""

    def load(self, language: str, pool: str) -> list[dict[str, Any]]:
        """Return the rows of one pool in one language."""

    def describe(self) -> str:
        """Return a short human description (shown by `tasks list`)."""


class Renderer(Protocol):
    """Turns a row into an item ID, an evaluation item and a training example."""

    def doc_id(self, row: dict[str, Any], index: int) -> str | None:
        """Return the row's ID, or None when items are numbered by position."""

    def eval_item(self, row: dict[str, Any], language: str, doc_id: str) -> MCItem | GenItem: ...

    def train_example(self, row: dict[str, Any], language: str, doc_id: str) -> TrainExample: ...


@dataclass
class TaskSpec:
    """A multiple-choice task: where its data lives, how items are rendered, how it is scored.

    ``answer_format`` is how evaluation presents the options (``letters``: listed A–D in the
    prompt, the letter scored; ``cloze``: each option's text scored as the continuation);
    ``metric`` is the headline metric; ``train_format`` is how training examples are built.
    """

    name: str
    languages: tuple[str, ...]
    answer_format: str
    metric: str
    data: Dataset  # where its rows come from (local files, a hub dataset)
    renderer: Renderer
    plan: SplitPlan
    description: str = ""
    output_type: str = "multiple_choice"
    train_format: str = "letters"
    origin: str = ""
    needs: str = ""
    generation: GenerationSettings | None = None  # set for output_type "generate"
    _prepared: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _hashes: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    # --- public ---------------------------------------------------------------------------

    @property
    def metrics(self) -> tuple[str, ...]:
        """Return the metrics every result of this task carries."""
        if self.generation is not None:
            return tuple(self.generation.metric_keys())
        return metric_names(self.output_type)

    @property
    def primary_metric(self) -> str:
        """Return the acc-like metric of the paper's ``score`` column (``metric`` is the headline)."""
        return PRIMARY.get(self.output_type, self.metric)

    def items(self, language: str, split: str = "test") -> list[MCItem | GenItem]:
        """Return the evaluation items of one language's split (train | validation | test)."""
        return [
            self.renderer.eval_item(row, language, doc_id)
            for doc_id, row in self._rows(language, split)
        ]

    def train_examples(self, language: str, split: str = "train") -> list[TrainExample]:
        """Return the training examples of one language's split (train | validation | test)."""
        return [
            self.renderer.train_example(row, language, doc_id)
            for doc_id, row in self._rows(language, split)
        ]

    def split_ids(self, split: str) -> list[str]:
        """Return the item IDs of a split (the same in every language)."""
        self._check_split(split)
        return list(self._prepare()["splits"][split])

    def content_hash(self, language: str) -> str:
        """Return a hash of everything that determines this language's items and prompts."""
        self.check_language(language)
        if language not in self._hashes:
            # An evaluation-only task (e.g. an lm-eval YAML with just a test split) has no
            # training pool: hash the splits it has.
            splits = [s for s in SPLITS if s == "test" or self.plan.train_pool is not None]
            payload = {
                "version": HASH_VERSION,
                "output_type": self.output_type,
                "language": language,
                "answer_format": self.answer_format,
                "train_format": self.train_format,
                "items": {s: [asdict(i) for i in self.items(language, s)] for s in splits},
                "train": {
                    s: [_example_dict(e) for e in self.train_examples(language, s)] for s in splits
                },
            }
            if self.generation is not None:  # absent for MC tasks: their hashes stay as they were
                payload["generation"] = asdict(self.generation)
            blob = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
            self._hashes[language] = hashlib.sha256(blob).hexdigest()[:16]
        return self._hashes[language]

    def split_sizes(self) -> dict[str, int]:
        """Return the number of items per split."""
        return {split: len(ids) for split, ids in self._prepare()["splits"].items()}

    # --- internals ------------------------------------------------------------------------

    def validate(self) -> None:
        """Read the data, check IDs and splits, and render every test item (UserError if bad)."""
        self._prepare()

    def check_language(self, language: str) -> None:
        """Raise a UserError when the task has no such language."""
        if language not in self.languages:
            raise UserError(
                self.origin or self.name,
                f"task {self.name!r} has no language {language!r}"
                + did_you_mean(language, self.languages),
                f"choose one of: {', '.join(self.languages)}",
            )

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise UserError(
                "split", f"unknown split {split!r}", f"choose one of: {', '.join(SPLITS)}"
            )
        if split != "test" and self.plan.train_pool is None:
            raise UserError(
                self.origin or self.name,
                f"task {self.name!r} has no training split, so no {split} items",
                "add a training split to the task (e.g. `training_split` or splits.train)",
            )

    def _rows(self, language: str, split: str) -> list[tuple[str, dict[str, Any]]]:
        self.check_language(language)
        self._check_split(split)
        prepared = self._prepare()
        by_id = prepared["rows"][language]
        return [(doc_id, by_id[doc_id]) for doc_id in prepared["splits"][split]]

    def _prepare(self) -> dict[str, Any]:
        if self._prepared is not None:
            return self._prepared
        where = self.origin or self.name
        pools = [self.plan.test_pool]
        if self.plan.train_pool and self.plan.train_pool != self.plan.test_pool:
            pools.append(self.plan.train_pool)
        rows: dict[str, dict[str, dict[str, Any]]] = {lang: {} for lang in self.languages}
        ids: dict[str, dict[str, list[str]]] = {pool: {} for pool in pools}
        for language in self.languages:
            for pool in pools:
                pool_rows = self.data.load(language, pool)
                pool_ids = [
                    _position_id(self.renderer.doc_id(row, i), i, pool, self.plan.test_pool)
                    for i, row in enumerate(pool_rows)
                ]
                check_unique(pool_ids, where, language, pool)
                ids[pool][language] = pool_ids
                rows[language].update(zip(pool_ids, pool_rows, strict=True))
        splits = select_splits(ids, self.plan, where)
        self._prepared = {"rows": rows, "splits": splits}
        self._validate_rendering()
        return self._prepared

    def _validate_rendering(self) -> None:
        # Render every test item once so template and gold errors surface at load, not mid-run.
        for language in self.languages:
            for doc_id, row in self._rows(language, "test"):
                self.renderer.eval_item(row, language, doc_id)


def _position_id(doc_id: str | None, index: int, pool: str, test_pool: str) -> str:
    # Without an ID column, an item is its position, as lm-eval numbers documents; positions in
    # another pool carry the pool's name so they cannot collide with test positions.
    if doc_id is not None:
        return doc_id
    return str(index) if pool == test_pool else f"{pool}:{index}"


def _example_dict(example: TrainExample) -> dict[str, str]:
    return {
        "doc_id": example.doc_id,
        "prompt": example.prompt,
        "target": example.target,
        "loss_on": example.loss_on,
    }
