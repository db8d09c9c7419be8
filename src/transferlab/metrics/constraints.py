"""Verifiable instruction constraints and ``constraints_met``: the share an output satisfies.

A constraint is a mapping ``{"type": NAME, ...parameters}``; each type is a registered checker
``(output, **parameters) -> bool``. The response language is identified with py3langid (its model
ships inside the package, so it works offline) among ``LANGUAGE_CANDIDATES``: major languages
without their close neighbours in py3langid's 97 (Malay for Indonesian, Galician for Portuguese,
Extremaduran for Spanish, Wu for Chinese), which it otherwise names for one-sentence answers; sentences are split at ., !, ?, ।, 。, ！, ？ and
the Arabic question mark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import regex

from transferlab.errors import UserError, did_you_mean
from transferlab.metrics.registry import Metric, register
from transferlab.metrics.text import GENERATE, tokens

_SENTENCE_END = regex.compile(r"[.!?।。！？؟]+")
_BULLET = regex.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S", regex.MULTILINE)

CHECKS: dict[str, Callable[..., bool]] = {}


def check(name: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    """Register the decorated function as the checker of constraint type ``name``."""

    def add(function: Callable[..., bool]) -> Callable[..., bool]:
        CHECKS[name] = function
        return function

    return add


# The grid's 11 languages and 15 other widely written ones.
LANGUAGE_CANDIDATES = (
    "ar", "bn", "de", "en", "es", "fr", "hi", "id", "it", "pt", "zh",
    "el", "fa", "he", "ja", "ko", "nl", "pl", "ru", "sv", "ta", "th", "tr", "uk", "ur", "vi",
)  # fmt: skip


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(list(LANGUAGE_CANDIDATES))
    return identifier


def detect_language(text: str) -> str:
    """Return the ISO 639-1 code py3langid identifies for ``text`` among LANGUAGE_CANDIDATES."""
    return _identifier().classify(text)[0]


def sentences(text: str) -> list[str]:
    """Return the non-empty sentences of ``text``."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


@check("language")
def _language(output: str, value: str) -> bool:
    return bool(output.strip()) and detect_language(output) == value


@check("max_words")
def _max_words(output: str, value: int) -> bool:
    return len(tokens(output)) <= value


@check("min_words")
def _min_words(output: str, value: int) -> bool:
    return len(tokens(output)) >= value


@check("sentences")
def _sentences(output: str, value: int) -> bool:
    return len(sentences(output)) == value


@check("bullets")
def _bullets(output: str, value: int) -> bool:
    return len(_BULLET.findall(output)) == value


@check("contains")
def _contains(output: str, value: str) -> bool:
    return value.casefold() in output.casefold()


@check("excludes")
def _excludes(output: str, value: str) -> bool:
    return value.casefold() not in output.casefold()


@check("lowercase")
def _lowercase(output: str) -> bool:
    return output == output.lower() and any(c.isalpha() for c in output)


@check("uppercase")
def _uppercase(output: str) -> bool:
    return output == output.upper() and any(c.isalpha() for c in output)


@check("no_digits")
def _no_digits(output: str) -> bool:
    # a number written in words: no digit of any script
    return not regex.search(r"\p{Nd}", output)


@check("ends_with")
def _ends_with(output: str, value: str) -> bool:
    return output.rstrip().endswith(value)


def check_constraint(constraint: Mapping[str, Any], where: str) -> None:
    """Raise UserError if ``constraint`` names no known type or lacks its parameters."""
    import inspect

    kind = constraint.get("type")
    if kind not in CHECKS:
        raise UserError(where, f"unknown constraint type {kind!r}{did_you_mean(str(kind), list(CHECKS))}",
                        f"use one of {', '.join(sorted(CHECKS))}")  # fmt: skip
    wanted = set(inspect.signature(CHECKS[kind]).parameters) - {"output"}
    given = set(constraint) - {"type"}
    if wanted != given:
        raise UserError(where, f"constraint {kind} takes {sorted(wanted) or 'no parameters'}, "
                        f"got {sorted(given)}", "fix the constraint's keys")  # fmt: skip


def constraints_met(output: str, constraints: Sequence[Mapping[str, Any]]) -> float:
    """Return the share of ``constraints`` that ``output`` satisfies (0 when there are none)."""
    if not constraints:
        return 0.0
    met = [CHECKS[c["type"]](output, **{k: v for k, v in c.items() if k != "type"})
           for c in constraints]  # fmt: skip
    return sum(met) / len(met)


def _constraints_metric(prediction: str, references: Sequence[Any]) -> float:
    # an instruction item's "references" are its constraints
    return constraints_met(prediction, references)


register(Metric("constraints_met", GENERATE, _constraints_metric,
                "share of the item's verifiable constraints the output satisfies"))  # fmt: skip
