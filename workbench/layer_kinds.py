"""How a prunable layer lays out its weight: rows are outputs (Linear, Conv), or columns are (transposed Linear).

Hugging Face's ``Conv1D`` (GPT-2) is a Linear layer whose weight is stored transposed, as (in, out), and
computed as ``torch.addmm(bias, x.view(-1, in), weight)``; it is recognized by its ``nf`` attribute (the
number of outputs), so workbench needs no import of ``transformers``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Conv1D(nn.Module):  # the layout of transformers.pytorch_utils.Conv1D
    ...     def __init__(self, nf, nx):
    ...         super().__init__()
    ...         self.nf, self.nx = nf, nx
    ...         self.weight, self.bias = nn.Parameter(torch.randn(nx, nf)), nn.Parameter(torch.zeros(nf))
    >>> weight_dims(Conv1D(6, 4)), weight_dims(nn.Linear(4, 6))
    ((1, 0), (0, 1))
    >>> features(Conv1D(6, 4)) == features(nn.Linear(4, 6)) == (4, 6)
    True
"""

from __future__ import annotations

import torch
from torch import nn


def is_transposed_linear(module: nn.Module) -> bool:
    """Whether ``module`` computes ``x @ weight + bias`` with ``weight`` stored as (in, out) and ``nf`` outputs."""
    weight = getattr(module, "weight", None)
    return (
        not isinstance(module, nn.Linear)
        and isinstance(weight, torch.Tensor)
        and weight.dim() == 2
        and getattr(module, "nf", None) == weight.shape[1]
    )


def weight_dims(module: nn.Module) -> tuple[int, int]:
    """(output dim, input dim) of a layer's weight: (0, 1), or (1, 0) for a transposed Linear."""
    return (1, 0) if is_transposed_linear(module) else (0, 1)


def features(module: nn.Module) -> tuple[int, int]:
    """(input features, output features) of a Linear, Conv or transposed Linear layer (Conv: per group)."""
    out_dim, in_dim = weight_dims(module)
    return module.weight.shape[in_dim], module.weight.shape[out_dim]


def set_features(module: nn.Module) -> None:
    """Make a transposed Linear's size attributes (``nf``, ``nx``) match its (resized) weight."""
    if hasattr(module, "nx"):
        module.nx = module.weight.shape[0]
    module.nf = module.weight.shape[1]
