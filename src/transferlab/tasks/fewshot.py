"""Few-shot contexts exactly as lm-evaluation-harness 0.4.x builds them.

For each evaluated document, in document order, lm-eval draws ``num_fewshot`` examples from the
few-shot pool (``fewshot_split``, else the training split, else the validation split, else the
test split) with one ``random.Random(1234)`` shared by the whole task (the default sampler:
``rnd.sample(pool, n)``, or ``n + 1`` with the document itself removed when the pool is the test
split; ``sampler: first_n`` takes the first ``n`` instead). The context is the description,
then per example its ``doc_to_text`` + ``target_delimiter`` + its answer + ``fewshot_delimiter``,
then the document's own ``doc_to_text``. Because the random state runs through the documents in
order, the contexts of a task are built together, once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from transferlab.errors import UserError

FEWSHOT_SEED = 1234  # lm-eval's simple_evaluate(fewshot_random_seed=1234)
SAMPLERS = ("default", "first_n")


@dataclass(frozen=True)
class FewShot:
    """A task's few-shot settings: how many examples, from which pool, joined how."""

    n: int
    pool: str
    sampler: str = "default"
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    seed: int = FEWSHOT_SEED


def parse_fewshot(doc: dict[str, Any], where: str) -> FewShot | None:
    """Return the few-shot settings of an lm-eval task (None for zero-shot)."""
    n = doc.get("num_fewshot") or 0
    if not isinstance(n, int) or n < 0:
        raise UserError(where, f"num_fewshot: {n!r} is not a count", "use 0 or a positive integer")
    config = doc.get("fewshot_config") or {}
    if not isinstance(config, dict):
        raise UserError(where, "fewshot_config: must be a mapping", "e.g. {sampler: first_n}")
    unknown = sorted(set(config) - {"sampler"})
    if unknown:
        raise UserError(where, f"fewshot_config: {', '.join(unknown)} not supported",
                        "only `sampler` (default or first_n) is read")  # fmt: skip
    sampler = str(config.get("sampler", "default"))
    if sampler not in SAMPLERS:
        raise UserError(where, f"fewshot_config.sampler: {sampler!r} is not supported",
                        f"use {' or '.join(SAMPLERS)}")  # fmt: skip
    if n == 0:
        return None
    pool = doc.get("fewshot_split") or doc.get("training_split") or doc.get("validation_split")
    pool = pool or doc.get("test_split")
    delimiter = doc.get("target_delimiter", " ")
    return FewShot(n, str(pool), sampler, str(delimiter), str(doc.get("fewshot_delimiter", "\n\n")))


def fewshot_prefixes(
    settings: FewShot,
    documents: Sequence[dict[str, Any]],
    pool: Sequence[dict[str, Any]],
    example: Callable[[dict[str, Any]], tuple[str, str]],
    pool_is_test: bool,
) -> list[str]:
    """Return, per document in order, the few-shot examples that precede its own text.

    ``example(row)`` returns an example's (text, answer).
    """
    rnd = random.Random(settings.seed)
    prefixes = []
    for document in documents:
        if settings.sampler == "first_n":
            candidates = [row for row in pool if row != document] if pool_is_test else list(pool)
            chosen = candidates[: settings.n]
        elif pool_is_test:
            chosen = [row for row in rnd.sample(list(pool), settings.n + 1) if row != document]
            chosen = chosen[: settings.n]
            if len(chosen) < settings.n:  # copies of the document were drawn: lm-eval redraws
                chosen = rnd.sample([row for row in pool if row != document], settings.n)
        else:
            chosen = rnd.sample(list(pool), settings.n)
        if len(chosen) < settings.n:
            raise UserError("num_fewshot", f"{settings.n} examples asked, the pool has {len(chosen)}",
                            "lower num_fewshot or use a larger fewshot_split")  # fmt: skip
        text = ""
        for row in chosen:
            question, answer = example(row)
            text += question + (settings.target_delimiter + answer + settings.fewshot_delimiter
                                if answer != "" else "")  # fmt: skip
        prefixes.append(text)
    return prefixes


@dataclass
class FewShotContexts:
    """The few-shot examples before each test document, built for the whole test split at once."""

    settings: FewShot
    data: Any  # the task's rows (LmEvalFiles or a hub dataset)
    test_pool: str
    example: Callable[[dict[str, Any]], tuple[str, str]]
    _prefixes: list[str] | None = field(default=None, repr=False)

    def prefix(self, language: str, doc_id: str) -> str:
        """Return the examples before test document ``doc_id`` (training rows: none)."""
        if not doc_id.isdigit():  # a training or validation row, rendered zero-shot
            return ""
        if self._prefixes is None:
            documents = self.data.load(language, self.test_pool)
            pool = self.data.load(language, self.settings.pool)
            self._prefixes = fewshot_prefixes(self.settings, documents, pool, self.example,
                                              self.settings.pool == self.test_pool)  # fmt: skip
        return self._prefixes[int(doc_id)]


def with_fewshot(renderer: Any, doc: dict[str, Any], where: str, data: Any, test_pool: str) -> Any:
    """Return ``renderer`` with the task's few-shot contexts (unchanged when zero-shot)."""
    settings = parse_fewshot(doc, where)
    if settings is None:
        return renderer
    return replace(renderer, fewshot=FewShotContexts(settings, data, test_pool, renderer.example))
