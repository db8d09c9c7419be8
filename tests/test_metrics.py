"""Generation metrics: lm-eval's exact match and sacrebleu's corpus scores, ROUGE-L in every
script (hand-computed), the instruction constraints."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from lm_eval.api.metrics import exact_match_hf_evaluate

from transferlab.errors import UserError
from transferlab.metrics import check_options, get_metric
from transferlab.metrics.constraints import constraints_met
from transferlab.metrics.text import rouge_l, tokens

CASES = [
    ("The answer is 42.", "the answer is 42", {}),
    ("The answer is 42.", "the answer is 42", {"ignore_case": True}),
    ("The answer is 42.", "the answer is 42", {"ignore_case": True, "ignore_punctuation": True}),
    # regexes go first: "The " is no longer there once lower-cased, so the order matters
    ("the answer", "answer", {"regexes_to_ignore": ["The "], "ignore_case": True}),
    ("The answer", "answer", {"regexes_to_ignore": ["The "], "ignore_case": True}),
    ("Antwort: 1.234", "1234", {"regexes_to_ignore": ["Antwort: "], "ignore_punctuation": True}),
    ("答案是 7。", "答案是 7", {"ignore_punctuation": True}),  # 。 is not ASCII punctuation
    ("x 12 y", "x  y", {"ignore_numbers": True}),
]


@pytest.mark.parametrize(("prediction", "reference", "options"), CASES)
def test_exact_match_is_lm_evals(prediction, reference, options):
    expected = exact_match_hf_evaluate([prediction], [reference], **options)["exact_match"]
    assert get_metric("exact_match").score_items(prediction, [reference], **options) == expected


def test_exact_match_cases_cover_both_outcomes():
    values = [get_metric("exact_match").score_items(p, [r], **o) for p, r, o in CASES]
    assert values == [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]


def test_chrf_and_bleu_are_sacrebleus_corpus_scores_in_0_to_1():
    predictions = ["Der Hund schläft im Garten.", "我喜欢喝茶", "यह एक परीक्षण है"]
    references = [["Der Hund schläft im Garten."], ["我很喜欢喝绿茶"], ["यह परीक्षण है"]]
    streams = [[r[0] for r in references]]
    chrf = get_metric("chrf").score_corpus(predictions, references)
    assert chrf == pytest.approx(sacrebleu.corpus_chrf(predictions, streams).score / 100)
    bleu = get_metric("bleu").score_corpus(predictions, references)
    assert bleu == pytest.approx(sacrebleu.corpus_bleu(predictions, streams).score / 100)
    assert 0 < bleu < chrf < 1


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("我喜欢猫", "我喜欢狗", 0.75),  # 4 Han tokens each, LCS 3: P = R = 3/4
        ("मुझे हिंदी पसंद है", "मुझे हिंदी बहुत पसंद है", 2 * 1 * 0.8 / 1.8),  # LCS 4 of 4 and 5
        ("القطة سوداء", "القطة البيضاء", 0.5),  # LCS 1 of 2 and 2
        ("আমি ভাত খাই", "আমি ভাত খাই", 1.0),
        ("The Cat sat", "the cat sat on the mat", 2 * 1 * 0.5 / 1.5),
    ],
)
def test_rouge_l_by_hand_in_every_script(prediction, reference, expected):
    assert rouge_l(prediction, [reference]) == pytest.approx(expected)
    assert rouge_l(prediction, ["unrelated words", reference]) == pytest.approx(expected)


def test_tokens_keep_combining_marks_and_split_han():
    assert tokens("हिंदी भाषा") == ["हिंदी", "भाषा"]  # vowel signs and virama stay in the word
    assert tokens("中文，English!") == ["中", "文", "english"]
    assert tokens("") == []


def test_constraints_met_is_the_share_satisfied():
    output = "- Berlin ist groß.\n- Paris ist schön.\n- Rom ist alt."
    constraints = [
        {"type": "language", "value": "de"},
        {"type": "bullets", "value": 3},
        {"type": "max_words", "value": 5},  # 9 words: not met
        {"type": "no_digits"},
    ]
    assert constraints_met(output, constraints) == pytest.approx(0.75)
    assert get_metric("constraints_met").score_items(output, constraints) == pytest.approx(0.75)
    assert constraints_met("这是一个中文句子。它很短。", [{"type": "language", "value": "zh"},
                                                      {"type": "sentences", "value": 2}]) == 1.0  # fmt: skip
    assert constraints_met("", [{"type": "language", "value": "en"}]) == 0.0


def test_unknown_metric_or_option_is_one_clear_error():
    with pytest.raises(UserError, match="unknown metric 'exact_mach'.*did you mean 'exact_match'"):
        get_metric("exact_mach", "task.yaml: metric_list")
    with pytest.raises(UserError, match="no option 'ignore_cas'"):
        check_options(get_metric("exact_match"), {"ignore_cas": True}, "task.yaml")


def test_corpus_mean_of_an_item_metric():
    metric = get_metric("rouge_l")
    value = metric.score_corpus(["a b", "c"], [["a b"], ["d"]])
    assert value == pytest.approx(np.mean([1.0, 0.0]))
