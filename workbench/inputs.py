"""A model's positional inputs, checked: what every tracing, timing and measuring entry point accepts.

Example:
    >>> import torch
    >>> [tuple(x.shape) for x in as_inputs(torch.zeros(2, 3))]
    [(2, 3)]
"""

from __future__ import annotations

import torch


def as_inputs(example_inputs) -> tuple[torch.Tensor, ...]:
    """A model's positional inputs as a tuple: a tensor alone, or a non-empty tuple/list of tensors."""
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else example_inputs
    if not isinstance(inputs, (tuple, list)) or not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise ValueError(
            f"example inputs must be a tensor or a non-empty tuple of tensors, got {type(example_inputs).__name__}"
        )
    return tuple(inputs)
