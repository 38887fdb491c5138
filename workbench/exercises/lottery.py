"""Exercise of notebook 09: one round of iterative magnitude pruning, the step that finds a lottery ticket.

Example:
    >>> import torch
    >>> def next_ticket_mask(weight, mask, sparsity):
    ...     keep = weight.numel() - round(sparsity * weight.numel())
    ...     scores = weight.abs().masked_fill(~mask, -1.0).flatten()
    ...     new = torch.zeros(weight.numel(), dtype=torch.bool)
    ...     new[scores.topk(keep).indices] = True
    ...     return new.view(weight.shape)
    >>> check("next_ticket_mask", next_ticket_mask).passed
    True
"""

from __future__ import annotations

import torch

from ..masks import apply_masks
from ..pruner import Pruner
from .basics import holder
from .checker import Wrong, as_bool_mask, call, check, exercise

__all__ = ["check", "reference_round"]


def reference_round(weight: torch.Tensor, mask: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The library's next mask (what ``wb.lottery_ticket`` prunes with): magnitude, composed with ``mask``."""
    layer = holder(weight)
    apply_masks(layer, {"weight": mask})
    return Pruner(layer, "magnitude", "unstructured", compose=True).masks(sparsity)["weight"]


def _cases():
    generator = torch.Generator().manual_seed(9)
    weight = torch.randn(6, 8, generator=generator)
    everything = torch.ones_like(weight, dtype=torch.bool)
    yield "case 1 (a dense 6×8 matrix to 20 %)", weight, everything, 0.2
    first = reference_round(weight, everything, 0.2)
    yield "case 2 (the same matrix, from 20 % to 36 %)", weight, first, 0.36
    revived = weight.clone()
    revived[~first] = 10 * weight.abs().max()  # pruned weights whose stored values grew: they stay pruned
    yield "case 3 (pruned weights still storing large values)", revived, first, 0.36
    conv = torch.randn(8, 4, 3, 3, generator=generator)
    half = reference_round(conv, torch.ones_like(conv, dtype=torch.bool), 0.5)
    yield "case 4 (an 8×4×3×3 convolution from 50 % to 75 %)", conv, half, 0.75
    yield "case 5 (a round that prunes nothing more)", conv, half, 0.5


@exercise(
    "next_ticket_mask",
    hints=(
        "the layer keeps n − round(sparsity × n) weights: the largest |w| among those the mask still keeps",
        "a pruned weight stays pruned, whatever value is stored for it: rank it below every kept weight (e.g. give "
        "it the score −1 with masked_fill(~mask, -1.0)) before taking the largest",
    ),
)
def _check_next_ticket_mask(attempt) -> str:
    for case, weight, mask, sparsity in _cases():
        expected = reference_round(weight, mask, sparsity)
        got = as_bool_mask(call(attempt, weight.clone(), mask.clone(), sparsity, case=case), weight.shape, case)
        if torch.equal(got, expected):
            continue
        if bool((got & ~mask).any()):
            raise Wrong(
                f"in {case} your mask keeps {int((got & ~mask).sum())} weight(s) that the previous round pruned",
                hint="in iterative pruning the masks only shrink: a weight pruned once stays pruned",
            )
        if int(got.sum()) != int(expected.sum()):
            raise Wrong(f"in {case} your mask keeps {int(got.sum())} weights; it should keep {int(expected.sum())}")
        raise Wrong(f"in {case} your mask keeps the right number of weights, but not the largest |w| still kept")
    return "your rounds match the library's (wb.lottery_ticket's) masks in every case"
