"""What the criteria share: the dense weights behind names, gradients batch by batch, unit scores broadcast.

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> tuple(dense_weights(model, ["fc3.weight"])["fc3.weight"].shape)
    (10, 100)
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..data import batches
from ..masks import dense_parameter


def dense_weights(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """The dense tensors behind ``names`` (the originals of masked weights)."""
    return {name: dense_parameter(model, name) for name in names}


@contextmanager
def trainable(params: list[torch.Tensor]):
    """Let gradients reach ``params`` (frozen ones too) and leave their requires_grad and .grad as found."""
    saved = [(p, p.requires_grad, p.grad) for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
            p.grad = None
        yield
    finally:
        for p, requires_grad, gradient in saved:
            p.requires_grad_(requires_grad)
            p.grad = gradient


def weight_gradients(model: nn.Module, names: list[str], data, max_batches: int | None, batch_size: int = 128):
    """Yield {name: (weight, gradient of the mean cross-entropy)} batch by batch, the model in eval mode."""
    params = dense_weights(model, names)
    was_training = model.training
    model.eval()
    with trainable(list(params.values())):
        try:
            device = next(model.parameters()).device
            for inputs, labels in batches(data, batch_size, max_batches):
                for p in params.values():
                    p.grad = None
                F.cross_entropy(model(inputs.to(device)), labels.to(device)).backward()
                yield {name: (p.detach(), p.grad.detach().clone()) for name, p in params.items()}
        finally:
            model.train(was_training)


def broadcast(unit_scores: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One score per output unit, repeated over the unit's weights."""
    return unit_scores.to(weight).view(-1, *[1] * (weight.dim() - 1)).expand_as(weight).clone()
