"""Text metrics: exact match as lm-evaluation-harness computes it, chrF and BLEU from sacrebleu,
and ROUGE-L with a tokenisation that works for every script of the grid.

The common ``rouge_score`` tokenizer keeps only ``[a-z0-9]``, so Hindi, Bengali, Arabic or
Chinese text scores 0 against itself. Here a token is a run of letters, combining marks and
digits (Unicode classes L, M, N, via the ``regex`` module, so Devanagari and Bengali vowel signs
stay inside their word), and every Han, Hiragana or Katakana character is a token of its own
(those scripts do not separate words by spaces); tokens are case-folded.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import regex

from transferlab.metrics.registry import Metric, register

_TOKEN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{L}\p{M}\p{N}]+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def exact_match(
    prediction: str,
    references: Sequence[str],
    regexes_to_ignore: Sequence[str] = (),
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_numbers: bool = False,
) -> float:
    """Return 1.0 if the prediction equals a reference after lm-eval's normalisation, else 0.0.

    lm-eval's order: each ignored regex removed (``re.sub``), then lower case, then ASCII
    punctuation removed, then digits removed.
    """

    def clean(text: str) -> str:
        for pattern in regexes_to_ignore:
            text = re.sub(pattern, "", text)
        if ignore_case:
            text = text.lower()
        if ignore_punctuation:
            text = text.translate(_PUNCTUATION)
        if ignore_numbers:
            text = text.translate(str.maketrans("", "", string.digits))
        return text

    return float(any(clean(prediction) == clean(ref) for ref in references))


def tokens(text: str) -> list[str]:
    """Return ``text``'s ROUGE tokens (see the module docstring)."""
    return [t.casefold() for t in _TOKEN.findall(text)]


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """Return the best ROUGE-L F1 (LCS-based, β = 1) of the prediction against any reference."""
    predicted = tokens(prediction)
    best = 0.0
    for reference in references:
        expected = tokens(reference)
        common = _lcs(predicted, expected)
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _streams(references: Sequence[Sequence[str]]) -> list[list[str]]:
    # sacrebleu wants one stream per reference position; items with fewer references repeat
    # their last one (lm-eval requires equal counts)
    width = max(len(r) for r in references)
    return [[r[min(k, len(r) - 1)] for r in references] for k in range(width)]


def chrf(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Return sacrebleu's corpus chrF (char order 6, β 2) as lm-eval computes it, in 0–1."""
    import sacrebleu

    return sacrebleu.corpus_chrf(list(predictions), _streams(references)).score / 100


def bleu(
    predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: str = "13a"
) -> float:
    """Return sacrebleu's corpus BLEU (default tokenizer 13a, as lm-eval) in 0–1."""
    import sacrebleu

    return (
        sacrebleu.corpus_bleu(list(predictions), _streams(references), tokenize=tokenize).score
        / 100
    )


GENERATE = "generate"
register(Metric("exact_match", GENERATE, exact_match, "1 if the output equals a reference "
                "(lm-eval's normalisation options)", "item",
                ("regexes_to_ignore", "ignore_case", "ignore_punctuation", "ignore_numbers")))  # fmt: skip
register(Metric("rouge_l", GENERATE, rouge_l, "ROUGE-L F1, tokens of every script"))
register(Metric("chrf", GENERATE, chrf, "sacrebleu corpus chrF / 100", "corpus"))
register(Metric("bleu", GENERATE, bleu, "sacrebleu corpus BLEU / 100", "corpus", ("tokenize",)))
