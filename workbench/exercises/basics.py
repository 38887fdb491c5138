"""Exercises of notebooks 00 and 01: the 'within one point' scan, a magnitude mask by hand, local sparsity.

Example:
    >>> import torch
    >>> def magnitude_mask(weight, sparsity):
    ...     pruned = round(sparsity * weight.numel())
    ...     order = weight.abs().flatten().argsort()
    ...     mask = torch.ones(weight.numel(), dtype=torch.bool)
    ...     mask[order[:pruned]] = False
    ...     return mask.view(weight.shape)
    >>> check("magnitude_mask", magnitude_mask).passed
    True
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models import count_parameters
from ..pruner import Pruner
from .checker import Wrong, as_bool_mask, as_number, call, check, exercise

__all__ = ["check", "holder", "reference_mask"]

GRID = np.round(np.arange(0.0, 1.0, 0.01), 2)  # the tour's scan: 0, 0.01, …, 0.99


def _curve(*within: tuple[float, float]):
    """An accuracy curve 0.98 on the intervals ``within`` (inclusive) and 0.5 elsewhere."""
    return lambda s: 0.98 if any(lo - 1e-9 <= s <= hi + 1e-9 for lo, hi in within) else 0.5


def _scan_cases():
    yield "case 1 (a cliff)", _curve((0.0, 0.42)), 0.985, 0.01
    boundary = 0.985 - 0.01  # exactly dense − tolerance: still within
    yield (
        "case 2 (a curve exactly on the line up to the cliff)",
        lambda s: boundary if s <= 0.3 + 1e-9 else 0.9,
        0.985,
        0.01,
    )
    yield (
        "case 3 (a curve that falls below the line and comes back above it)",
        _curve((0, 0.2), (0.61, 0.65)),
        0.98,
        0.01,
    )
    yield "case 4 (a curve within the tolerance everywhere)", _curve((0.0, 1.0)), 0.98, 0.01
    yield "case 5 (a wider tolerance, 0.05)", lambda s: 0.98 - 0.1 * s, 0.98, 0.05
    yield "case 6 (a curve already below the line at 1 %)", _curve((0.0, 0.0)), 0.98, 0.01


@exercise(
    "tour_scan",
    hints=(
        "scan the grid 0, 0.01, …, 0.99 (np.round(np.arange(0, 1, 0.01), 2)), keep every s with "
        "accuracy(s) >= dense_accuracy - tolerance, and return the largest of them",
        "the largest tolerable sparsity is not the one before the first intolerable: a curve may come back",
    ),
)
def _check_tour_scan(attempt, accuracy=None, dense_accuracy=None) -> str:
    cases = list(_scan_cases())
    if accuracy is not None:
        cases.append(("the tour's curve (the MLP's magnitude sweep)", accuracy, dense_accuracy, 0.01))
    for case, curve, dense, tolerance in cases:
        expected = max(s for s in GRID if curve(float(s)) >= dense - tolerance)
        got = as_number(call(attempt, curve, dense, tolerance, case=case), f"in {case} your answer")
        if abs(got - expected) < 1e-6:
            continue
        if not any(abs(got - s) < 1e-6 for s in GRID):
            raise Wrong(f"in {case} your function returned {got:g}, which is not on the grid 0, 0.01, …, 0.99")
        if curve(got) < dense - tolerance:
            raise Wrong(
                f"in {case} your function returned {got:g}, where accuracy is more than the tolerance below dense"
            )
        raise Wrong(f"in {case} your function returned {got:g}, but a larger sparsity of the grid is still within")
    return f"right on all {len(cases)} curves"


def holder(weight: torch.Tensor) -> nn.Module:
    """A bias-free Linear (2-D weight) or Conv2d (4-D) holding a copy of ``weight``, for the library to prune."""
    if weight.dim() == 2:
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    else:
        layer = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def reference_mask(weight: torch.Tensor, sparsity: float, pattern: str = "unstructured") -> torch.Tensor:
    """The library's magnitude mask of one weight (``wb.Pruner`` on a layer holding it)."""
    return Pruner(holder(weight), "magnitude", pattern).masks(sparsity)["weight"]


def _mask_cases():
    generator = torch.Generator().manual_seed(1)
    tiny = torch.tensor([[0.90, -0.10], [0.30, -0.25], [-0.05, 0.70]])
    yield "case 1 (a third of notebook 01's 3×2 matrix)", tiny, 1 / 3
    yield "case 2 (sparsity 0.5 of a 4×5 matrix)", torch.randn(4, 5, generator=generator), 0.5
    yield "case 3 (sparsity 0.29 of a 10×10 matrix)", torch.randn(10, 10, generator=generator), 0.29
    yield "case 4 (sparsity 0 of a 3×7 matrix)", torch.randn(3, 7, generator=generator), 0.0
    yield "case 5 (sparsity 0.7 of an 8×4×3×3 convolution)", torch.randn(8, 4, 3, 3, generator=generator), 0.7
    yield "case 6 (sparsity 0.95 of a 30×64 matrix)", torch.randn(30, 64, generator=generator), 0.95


def _shape_text(weight: torch.Tensor) -> str:
    return "×".join(map(str, weight.shape))


@exercise(
    "magnitude_mask",
    hints=(
        "prune the round(sparsity × n) weights with the smallest |w|: weight.abs().flatten().argsort() lists "
        "them first",
        "a mask is True where the weight is kept, False where it is pruned, with the weight's shape",
        "round(), not int(): int(0.29 * 100) is 28, because 0.29 * 100 is 28.999999999999996",
    ),
)
def _check_magnitude_mask(attempt) -> str:
    cases = list(_mask_cases())
    for case, weight, sparsity in cases:
        given = weight.clone()
        mask = as_bool_mask(call(attempt, given, sparsity, case=case), weight.shape, case)
        if not torch.equal(given, weight):
            raise Wrong(f"in {case} your function changed the weight it was given: build a new mask instead")
        n, pruned = weight.numel(), int((~mask).sum())
        if pruned != round(sparsity * n):
            raise Wrong(
                f"your mask prunes {pruned} of {n} weights in {case}: it should prune exactly round(s·n) of them"
            )
        magnitude = weight.abs()
        if pruned and pruned < n and magnitude[~mask].max() > magnitude[mask].min():
            raise Wrong(
                f"in {case} your mask prunes a weight with a larger |w| than one it keeps",
                hint="the smallest |w| go first: is your mask inverted, or does it compare w instead of |w|?",
            )
        if not torch.equal(mask, reference_mask(weight, sparsity)):
            raise Wrong(f"in {case} your mask differs from wb.Pruner's magnitude mask")
    return f"your masks match wb.Pruner's on all {len(cases)} cases (matrices and a convolution)"


@exercise(
    "fc3_sparsity",
    hints=(
        "local scope prunes round(s × n) of fc3's n = 1,000 weights: which s leaves 137 of them?",
        "sparsity is the fraction pruned, not the fraction kept",
    ),
)
def _check_fc3_sparsity(attempt) -> str:
    from ..pruning import prune
    from ..zoo import pretrained

    sparsity = as_number(attempt, "my_sparsity")
    model = pretrained("mlp")
    try:
        prune(model, sparsity=sparsity)
    except ValueError as error:
        raise Wrong(f"wb.prune refuses sparsity {sparsity:g}: {error}") from None
    kept = int(torch.count_nonzero(model.fc3.weight))
    if kept != 137:
        raise Wrong(f"with sparsity {sparsity:g}, fc3 keeps {kept} nonzero weights, not 137 (of its 1,000)")
    return f"fc3 keeps exactly 137 of its 1,000 weights (the model: {count_parameters(model):,} parameters)"
