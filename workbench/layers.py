"""Which layers a pruner may touch: Linear, Conv and transposed Linear (GPT-2's ``Conv1D``) layers, chosen by name,
with ``exclude`` names or globs.

An ``exclude`` entry that matches nothing is an error (a typo would otherwise prune the layer it meant to keep).

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> list(prunable_layers(model, exclude=["2"]))
    ['0']
    >>> check_exclude(model, ["3"])
    Traceback (most recent call last):
    ...
    ValueError: exclude '3' matches no layer of Sequential; its Linear/Conv layers and attention modules are: 0, 2
"""

from __future__ import annotations

import fnmatch

from torch import nn

from .attention import attention_layouts
from .layer_kinds import is_transposed_linear

PRUNABLE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)  # and transposed Linears (``layer_kinds.is_transposed_linear``)


def is_prunable_layer(module: nn.Module) -> bool:
    """A Linear, Conv or transposed Linear layer."""
    return isinstance(module, PRUNABLE_LAYERS) or is_transposed_linear(module)


def as_names(exclude) -> tuple[str, ...]:
    """``exclude`` as a tuple of names or globs: one string or an iterable of strings."""
    if isinstance(exclude, str):
        return (exclude,)
    names = tuple(exclude or ())
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"exclude takes module names or globs (strings), got {list(names)!r}")
    return names


def is_excluded(name: str, exclude) -> bool:
    return any(name == pattern or fnmatch.fnmatchcase(name, pattern) for pattern in exclude)


def check_exclude(model: nn.Module, exclude) -> tuple[str, ...]:
    """``exclude`` as names, or ValueError naming an entry that matches no Linear/Conv layer or attention module."""
    exclude = as_names(exclude)
    candidates = [*prunable_layers(model), *attention_layouts(model)]
    for pattern in exclude:
        if not any(is_excluded(name, (pattern,)) for name in candidates):
            raise ValueError(
                f"exclude {pattern!r} matches no layer of {type(model).__name__}; its Linear/Conv layers and "
                f"attention modules are: {', '.join(candidates) or 'none'}"
            )
    return exclude


def prunable_layers(model: nn.Module, exclude=()) -> dict[str, nn.Module]:
    """Linear, Conv and transposed Linear layers by module name, minus those matching ``exclude`` (names or globs)."""
    return {
        name: module
        for name, module in model.named_modules()
        if is_prunable_layer(module) and not is_excluded(name, exclude)
    }
