"""The greedy choice of the next token: the argmax of the output layer, made cheaper where exact.

Gemma 3's vocabulary product (262,144 × 640) is much of a decoding step on a CPU. Where the CPU
has bf16 instructions that product runs about twice as fast in bf16 (0.12 s against 0.22 s for
48 rows on one AVX-512-bf16 core), but bf16 logits alone would change some greedy choices. Here
bf16 only screens: a rigorous bound on how far a bf16 logit can lie from the fp32 one leaves the
few tokens that could still be the fp32 argmax, and only those are computed in fp32 (by a
smaller product: the same values up to the order of summation, which a batch's shape already
varies). The token chosen is the one the fp32 output layer ranks first, the first of equals as
``argmax``; the screen changes what is computed, not what is chosen. Elsewhere (no bf16
instructions, a GPU, an output layer that is not a plain bias-free fp32 matrix, capped logits)
the full logits are computed and their argmax taken.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from transferlab.hardware import cpu_has_native_bf16
from transferlab.models import LoadedModel

Chooser = Callable[..., list[int]]  # the output's last position ([rows, ...]) → one token per row

_BF16_ROUNDOFF = 2.0**-8  # unit roundoff of bf16 (8 significant bits), round to nearest
_FP32_ROUNDOFF = 2.0**-24
_NORM_SAFETY = 1.001  # the norms in the bound are themselves computed in fp32
FULL_ROW_CANDIDATES = 4096  # beyond this many candidates a row's full fp32 logits are cheaper


class ScreenedArgmax:
    """``argmax(hidden @ weight.T)`` in fp32, from a bf16 product and an fp32 check of the rest.

    Why the bound holds, for token ``i``, hidden row ``h`` (``ŵ``, ``ĥ``: bf16 roundings;
    ``n = hidden size``; ``γ = n·2⁻²⁴ / (1 − n·2⁻²⁴)``):

    - the fp32 logit is within ``γ‖w‖‖h‖`` of the exact ``w·h`` (any summation order);
    - ``w·h − ŵ·ĥ = (w − ŵ)·h + ŵ·(h − ĥ)``, at most ``‖w − ŵ‖‖h‖ + ‖ŵ‖‖h − ĥ‖``;
    - the bf16 product accumulates in fp32 (within ``γ‖ŵ‖‖ĥ‖``) and rounds its output to bf16
      (within ``u|out|/(1 − u)``, ``u = 2⁻⁸``).

    So ``|fp32 − screen| ≤ C + u'|screen|`` with ``C`` per row (norm maxima over the
    vocabulary). Token ``i`` can beat the screen's best ``j`` in fp32 only if
    ``screen_i + u'|screen_i| ≥ screen_j − u'|screen_j| − 2C``; the left side grows with
    ``screen_i``, so this is one threshold per row.
    """

    def __init__(self, weight) -> None:
        import torch

        weight = weight.detach()
        self.weight = weight
        self.weight_bf16 = weight.to(torch.bfloat16)
        size = weight.shape[1]
        self._gamma = size * _FP32_ROUNDOFF / (1 - size * _FP32_ROUNDOFF)
        maxima = torch.zeros(3)  # ‖w‖, ‖ŵ‖, ‖w − ŵ‖ over the vocabulary
        for rows, rows_bf16 in zip(weight.split(8192), self.weight_bf16.split(8192), strict=True):
            rounded = rows_bf16.float()  # in slices: no vocabulary-sized temporaries
            norms = torch.stack([rows.norm(dim=1).max(), rounded.norm(dim=1).max(),
                                 (rows - rounded).norm(dim=1).max()])  # fmt: skip
            maxima = torch.maximum(maxima, norms)
        self._max_norm, self._max_norm_bf16, self._max_residual = maxima.tolist()
        self.output_roundoff = _BF16_ROUNDOFF / (1 - _BF16_ROUNDOFF)

    def screen(self, hidden):
        """Return the bf16 logits ``[rows, vocabulary]`` and each row's ``C``.

        For every token, ``|fp32 logit − screen| ≤ C + output_roundoff · |screen|``.
        """
        import torch

        hidden_bf16 = hidden.to(torch.bfloat16)
        rounded = hidden_bf16.float()
        norm, norm_bf16 = hidden.norm(dim=1), rounded.norm(dim=1)
        residual = (hidden - rounded).norm(dim=1)
        slack = _NORM_SAFETY * (self._max_residual * norm + self._max_norm_bf16 * residual
                                + self._gamma * (self._max_norm * norm
                                                 + self._max_norm_bf16 * norm_bf16))  # fmt: skip
        return hidden_bf16 @ self.weight_bf16.T, slack

    def thresholds(self, screen, slack):
        """Return, per row, the smallest screen logit a token needs to stay a candidate."""
        import torch

        best = screen.max(dim=1).values.float()
        u = self.output_roundoff
        target = best - u * best.abs() - 2 * slack
        # invert s ↦ s + u|s| (increasing); the margin covers this fp32 arithmetic's rounding
        threshold = torch.where(target >= 0, target / (1 + u), target / (1 - u))
        return threshold - 1e-6 * threshold.abs() - 1e-30

    def candidates(self, hidden):
        """Return the ``[rows, vocabulary]`` mask of tokens that may be a row's fp32 argmax."""
        screen, slack = self.screen(hidden)
        return screen >= self.thresholds(screen, slack)[:, None]

    def __call__(self, hidden) -> list[int]:
        import torch

        hidden = hidden.contiguous()
        # (row, token) pairs in row order, tokens ascending: argmax keeps the first of equals
        pairs = self.candidates(hidden).nonzero()
        counts = torch.bincount(pairs[:, 0], minlength=len(hidden)).tolist()
        tokens_per_row = pairs[:, 1].split(counts)
        chosen = []
        for row, tokens in enumerate(tokens_per_row):
            if len(tokens) == 1:
                chosen.append(int(tokens[0]))
            elif len(tokens) > FULL_ROW_CANDIDATES:
                chosen.append(int((self.weight @ hidden[row]).argmax()))
            else:
                chosen.append(int(tokens[(self.weight[tokens] @ hidden[row]).argmax()]))
        return chosen


def _screenable_head(loaded: LoadedModel):
    """Return the output layer when its argmax can be screened in bf16 here, else None."""
    import torch

    model = loaded.model
    head = model.get_output_embeddings()
    config = model.config.get_text_config()
    if (
        type(head) is not torch.nn.Linear  # an adapter on the output layer, or another kind
        or head.bias is not None
        or head.weight.dtype != torch.float32
        or head.weight.device.type != "cpu"
        or getattr(config, "final_logit_softcapping", None) is not None  # ties after tanh
    ):
        return None
    return head


@contextlib.contextmanager
def next_token_chooser(loaded: LoadedModel, bf16_screen: bool | None = None) -> Iterator[Chooser]:
    """Yield the function from the model output's last position to each row's greedy token.

    ``bf16_screen``: None screens where the CPU has bf16 instructions; True or False force it
    (where the output layer allows). While screening, the output layer is set aside: the model
    returns its last hidden state in place of the logits, and the chooser applies the layer.
    """
    model = loaded.model
    head = _screenable_head(loaded)
    if bf16_screen is None:
        bf16_screen = cpu_has_native_bf16()
    if head is None or not bf16_screen:
        with _contiguous_head_input(model):
            yield lambda logits: logits.argmax(-1).tolist()
        return
    import torch

    screened = ScreenedArgmax(head.weight)

    def choose(last):
        if last.shape[-1] != head.in_features:  # a model that applies its head by other means
            return last.argmax(-1).tolist()
        return screened(last)

    model.set_output_embeddings(torch.nn.Identity())
    try:
        yield choose
    finally:
        model.set_output_embeddings(head)


@contextlib.contextmanager
def _contiguous_head_input(model) -> Iterator[None]:
    """Hand the output layer a contiguous hidden state while generating.

    ``logits_to_keep=1`` slices the last position into a strided ``[batch, 1, hidden]`` view.
    torch's matmul folds such an input into one matrix product only when the weight requires
    grad; once PEFT has frozen the base (every adapter state) it falls back to a batched
    product that first copies the vocabulary matrix once per row: 50 rows × 262k × 640 for
    Gemma 3, 7× the whole generation time. A contiguous copy of the sliced rows is tiny.
    """
    head = model.get_output_embeddings()
    if head is None:
        yield
        return
    hook = head.register_forward_pre_hook(lambda _module, args: (args[0].contiguous(), *args[1:]))
    try:
        yield
    finally:
        hook.remove()
