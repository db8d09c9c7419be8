"""The items a task yields: what the scorer and the trainer consume."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice item, rendered exactly as lm-evaluation-harness would.

    The scored continuation of choice ``i`` is ``target_delimiter + choices[i]`` after ``context``;
    acc_norm divides each choice's log-likelihood by the length of ``choices[i]`` as lm-eval does.
    """

    doc_id: str
    context: str
    choices: tuple[str, ...]
    gold: int
    target_delimiter: str = " "


@dataclass(frozen=True)
class GenItem:
    """One generative item: the model continues ``context``; ``references`` are the answers.

    For an instruction-following item the references are its verifiable constraints.
    """

    doc_id: str
    context: str
    references: tuple
    target_delimiter: str = ""


@dataclass(frozen=True)
class TrainExample:
    """One supervised example: the model reads ``prompt`` and learns ``target``.

    ``loss_on`` is ``"target"`` (loss on the answer tokens only, e.g. the letter) or ``"all"``
    (loss on prompt and target, as the reference study does for TruthfulQA).
    """

    doc_id: str
    prompt: str
    target: str
    loss_on: str = "target"
    meta: dict = field(default_factory=dict, compare=False, hash=False)
