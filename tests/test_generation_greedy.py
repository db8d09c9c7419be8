"""The greedy choice screened in bf16: always the fp32 argmax, ties to the first token."""

from __future__ import annotations

import pytest
import torch

from test_generation import OPENED, _requests, _stops_from
from test_scoring import make_lora
from transferlab.generation import GenerationRequest, generate
from transferlab.generation.greedy import FULL_ROW_CANDIDATES, ScreenedArgmax, next_token_chooser
from transferlab.models import load_model
from transferlab.scoring.adapters import ModelState


def _vocabulary(seed: int = 0, size: int = 6000, hidden: int = 64) -> torch.Tensor:
    """A vocabulary matrix with exact duplicates and pairs bf16 cannot tell apart."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(size, hidden, generator=g) * 0.05
    weight[:, 0] = 0.05 + 1e-6 * torch.randn(size, generator=g)  # a channel all tokens share
    weight[4000] = weight[17]  # an exact tie: the first of equals, 17, must win
    weight[300] = weight[3000] * (1 + 1e-4)  # 300 beats 3000 in fp32 by far less than bf16 sees
    weight[2500] = weight[12] * (1 - 1e-4)
    return weight


def _hidden_rows(weight: torch.Tensor, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(40, weight.shape[1], generator=g)
    rows[:, 3] *= 60  # outlier channels, as language models' final hidden states have
    rows[:10] = weight[[17, 4000, 300, 3000, 12, 2500, 17, 300, 12, 5]] * 400  # peaked on a pair
    rows[10:14] = 1e-4 * rows[10:14]
    rows[10:14, 0] = 100  # flat rows, all logits near 5: every token stays a candidate
    return rows


def test_the_screen_chooses_the_fp32_argmax_with_ties_to_the_first_token():
    weight = _vocabulary()
    hidden = _hidden_rows(weight)  # peaked, flat (the full row) and ordinary rows
    expected = (hidden @ weight.T).argmax(-1).tolist()
    assert expected[:10] == [17, 17, 300, 300, 12, 12, 17, 300, 12, 5]
    assert ScreenedArgmax(weight)(hidden) == expected


def test_every_bf16_logit_lies_within_the_bound_of_the_fp32_one():
    # the bound's premises (fp32 accumulation in the bf16 product, its output rounded once)
    # checked on this machine's kernels, at Gemma 3's hidden size
    g = torch.Generator().manual_seed(4)
    weight = torch.randn(8000, 640, generator=g) * 0.03
    hidden = torch.randn(64, 640, generator=g) * 3
    hidden[:, [7, 300]] *= 80  # outlier channels
    screened = ScreenedArgmax(weight)
    screen, slack = screened.screen(hidden)
    error = ((hidden @ weight.T) - screen.float()).abs()
    bound = slack[:, None] + screened.output_roundoff * screen.float().abs()
    assert (error <= bound).all()
    assert (error.amax(dim=1) > bound.amin(dim=1) / 50).all()  # a bound, not a blanket


def test_the_true_argmax_is_always_a_candidate_and_peaked_rows_leave_few():
    weight = _vocabulary(seed=2)
    hidden = _hidden_rows(weight, seed=3)
    mask = ScreenedArgmax(weight).candidates(hidden)
    best = (hidden @ weight.T).argmax(-1)
    assert mask[torch.arange(len(hidden)), best].all()
    counts = mask.sum(dim=1)
    assert counts[9] == 1  # one token stands out: nothing left to check in fp32
    assert counts[0] == 2 and counts[2] == 2  # the pairs bf16 cannot separate, checked in fp32
    assert (counts[10:14] > FULL_ROW_CANDIDATES).all()  # flat rows: the full row in fp32


def test_a_screened_generation_is_the_plain_one_and_the_output_layer_comes_back(
    tiny_gemma_dir, tmp_path
):
    loaded = load_model(str(tiny_gemma_dir))
    head = loaded.model.get_output_embeddings()
    states = [
        ModelState("base"),
        ModelState("a", make_lora(tiny_gemma_dir, tmp_path / "a", seed=7)),
    ]
    free = generate(loaded, states[:1], _requests(), batch_size=4, progress=False)["base"]
    requests = _requests(_stops_from(free)) + [GenerationRequest(c, (), 12) for c in OPENED]
    screened = generate(loaded, states, requests, batch_size=4, progress=False, bf16_screen=True)
    plain = generate(loaded, states, requests, batch_size=4, progress=False, bf16_screen=False)
    assert screened == plain
    assert loaded.model.get_output_embeddings() is head


@pytest.mark.parametrize("screen", [True, False])
def test_the_chooser_reads_what_the_model_returns_in_its_mode(tiny_gemma_dir, screen):
    loaded = load_model(str(tiny_gemma_dir))
    ids = torch.tensor([[2, 40, 41, 42]])
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids).logits[:, -1]
        with next_token_chooser(loaded, bf16_screen=screen) as choose:
            out = loaded.model(input_ids=ids, logits_to_keep=1).logits[:, -1]
            assert out.shape[-1] == (
                loaded.model.config.hidden_size if screen else logits.shape[-1]
            )
            assert choose(out) == logits.argmax(-1).tolist()
