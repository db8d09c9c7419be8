"""Bilingual dictionaries for lexicon induction: the bundled CLDR concepts or a user's TSV files.

A ``BilingualDictionary`` holds each side's entries (the retrieval vocabulary) and the seed
(train) and test pairs as indices into them. The bundled one is built from
``data/concepts.tsv`` (scripts/build_dictionaries.py): the same concepts, split the same way,
in every language pair. User files follow xling-eval's ``yacle.*.tsv``: one ``source<TAB>target``
pair per line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from transferlab.errors import UserError, did_you_mean

BUNDLED = "bundled CLDR concepts"


@dataclass(frozen=True)
class BilingualDictionary:
    """Entries of two languages with seed and test pairs (indices into each side's entries)."""

    source_language: str
    target_language: str
    source_entries: tuple[str, ...]
    target_entries: tuple[str, ...]
    train: tuple[tuple[int, int], ...]
    test: tuple[tuple[int, int], ...]
    origin: str  # BUNDLED or the files it was read from

    def content_hash(self) -> str:
        """Return a hash of the entries and both splits (what determines every BLI number)."""
        text = json.dumps(
            [self.source_entries, self.target_entries, self.train, self.test], ensure_ascii=False
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ConceptTable:
    """The bundled concepts: one entry per concept in each language, and each concept's split."""

    languages: tuple[str, ...]
    concepts: tuple[str, ...]
    entries: dict[str, tuple[str, ...]]
    split: tuple[str, ...]  # "train" | "test" per concept

    def pair(self, source: str, target: str) -> BilingualDictionary:
        """Return the dictionary of ``source`` → ``target`` over every shared concept."""
        for language in (source, target):
            if language not in self.entries:
                raise UserError(
                    "--languages",
                    f"the bundled dictionary has no entries for {language!r}"
                    + did_you_mean(language, self.languages),
                    f"choose from {', '.join(self.languages)} or pass --train-dict/--test-dict",
                )
        train = tuple((i, i) for i, s in enumerate(self.split) if s == "train")
        test = tuple((i, i) for i, s in enumerate(self.split) if s == "test")
        return BilingualDictionary(
            source, target, self.entries[source], self.entries[target], train, test, BUNDLED
        )


@cache
def bundled_concepts() -> ConceptTable:
    """Return the concept table shipped with the package."""
    text = files("transferlab.alignment").joinpath("data/concepts.tsv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header, *rows = (line.split("\t") for line in lines)
    languages = tuple(header[3:])
    return ConceptTable(
        languages=languages,
        concepts=tuple(row[0] for row in rows),
        entries={lang: tuple(row[3 + k] for row in rows) for k, lang in enumerate(languages)},
        split=tuple(row[2] for row in rows),
    )


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise UserError(path, "no such dictionary file", "pass a two-column TSV file")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != 2 or not all(fields):
            raise UserError(
                path,
                f"line {number}: expected 'source<TAB>target', found {len(fields)} column(s)",
                "write one tab-separated word pair per line",
            )
        pairs.append((fields[0], fields[1]))
    return pairs


def read_dictionary(
    train_file: Path, test_file: Path, source: str, target: str
) -> BilingualDictionary:
    """Return the dictionary of two xling-eval style TSV files (seed pairs, test pairs).

    Each side's entries are the distinct words of both files in order of first appearance, so
    every test word is retrievable and every gold answer is in the target vocabulary.
    """
    train_pairs, test_pairs = _read_pairs(Path(train_file)), _read_pairs(Path(test_file))
    for path, pairs in ((train_file, train_pairs), (test_file, test_pairs)):
        if not pairs:
            raise UserError(path, "holds no word pairs", "add 'source<TAB>target' lines")
    sides: list[dict[str, int]] = [{}, {}]
    for pair in (*train_pairs, *test_pairs):
        for side, word in zip(sides, pair, strict=True):
            side.setdefault(word, len(side))

    def indices(pairs: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
        return tuple(dict.fromkeys((sides[0][s], sides[1][t]) for s, t in pairs))

    return BilingualDictionary(
        source,
        target,
        tuple(sides[0]),
        tuple(sides[1]),
        indices(train_pairs),
        indices(test_pairs),
        f"{train_file}, {test_file}",
    )
