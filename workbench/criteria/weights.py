"""Criteria that read only the weights: magnitude (L1, L2), random, FPGM, and data-free SynFlow.

Example:
    >>> import torch, workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> scores = CRITERIA["magnitude"].fn(model, ["fc1.weight"], None)
    >>> bool(torch.equal(scores["fc1.weight"], model.fc1.weight.abs()))
    True
"""

from __future__ import annotations

import copy

import torch

from ..data import batches
from ..masks import dense_parameter
from ..models import input_shape
from .common import broadcast, dense_weights
from .registry import CRITERIA, Scores, register

__all__ = ["CRITERIA", "RANDOM_STREAM"]


def _absolute(model, names) -> Scores:
    return {name: p.detach().abs() for name, p in dense_weights(model, names).items()}


@register("magnitude", needs_data=False, description="|w|; groups reduce it to an L2 norm by default", reduce="l2")
def magnitude(model, names, data) -> Scores:
    return _absolute(model, names)


@register("l1", needs_data=False, description="|w|; a group's score is its L1 norm (sum of |w|)", reduce="sum")
def l1(model, names, data) -> Scores:
    return _absolute(model, names)


@register("l2", needs_data=False, description="|w|; a group's score is its L2 norm", reduce="l2")
def l2(model, names, data) -> Scores:
    return _absolute(model, names)


RANDOM_STREAM = 0x5C0_12E5  # offsets the seed: seed 0 must not replay torch.manual_seed(0)'s init draws


@register("random", needs_data=False, description="uniform random scores (a baseline), seeded")
def random_scores(model, names, data, seed: int = 0) -> Scores:
    generator = torch.Generator().manual_seed(RANDOM_STREAM + seed)
    return {
        name: torch.rand(p.shape, generator=generator).to(p.device) for name, p in dense_weights(model, names).items()
    }


@register(
    "fpgm",
    needs_data=False,
    description="FPGM: sum of distances to the other filters (small = near the geometric median = redundant)",
    scores="units",
)
def fpgm(model, names, data) -> Scores:
    result = {}
    for name, p in dense_weights(model, names).items():
        filters = p.detach().flatten(1)
        result[name] = broadcast(torch.cdist(filters, filters).sum(1), p)
    return result


@register(
    "synflow",
    needs_data=False,
    description="SynFlow |θ·∂R/∂θ| with R = sum of the |θ|-network's output on ones; data-free, meant iteratively",
)
def synflow(model, names, data) -> Scores:
    probe = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in probe.parameters():
            p.abs_().requires_grad_(True)
    shape = _input_shape(model, data)
    ones = torch.ones((1, *shape), dtype=torch.float64, device=next(probe.parameters()).device)
    probe(ones).sum().backward()
    params = dense_weights(probe, names)
    return {name: (p * p.grad).detach().abs().to(dense_parameter(model, name).dtype) for name, p in params.items()}


def _input_shape(model, data) -> tuple[int, ...]:
    if data is not None:
        inputs, _ = next(batches(data, batch_size=1))
        return tuple(inputs.shape[1:])
    shape = input_shape(model)
    if shape is None:
        raise ValueError("synflow needs the input shape: pass data=... (one batch is enough) for this model")
    return shape
