"""Masked models through ``torch.nn.utils.parametrize``: apply, read, undo and bake bool masks.

A mask is a ``WeightMask`` parametrization: ``module.weight`` is computed as ``original * mask``, the
dense weights live on in ``module.parametrizations.weight.original``. Optimizer steps update
``original``, so a pruned weight stays exactly zero however the optimizer moves its original;
``parametrize.remove_parametrizations`` (or ``undo``/``bake``) removes the machinery.

Example:
    >>> from torch import nn
    >>> layer = nn.Linear(3, 2)
    >>> apply_masks(layer, {"weight": torch.tensor([[True, False, True], [False, True, True]])})
    >>> int((layer.weight == 0).sum())
    2
    >>> undo(layer); is_masked(layer)
    False
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn.utils import parametrize


class WeightMask(nn.Module):
    """Parametrization multiplying a tensor by a fixed bool mask (kept in a buffer, saved in state_dict)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.to(torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask

    def extra_repr(self) -> str:
        return f"sparsity={1 - self.mask.float().mean().item():.3f}"


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module holding parameter ``name`` (a state_dict-style name like "fc1.weight") and the leaf name."""
    module_name, _, leaf = name.rpartition(".")
    try:
        return model.get_submodule(module_name), leaf
    except AttributeError:
        raise ValueError(f"model has no module {module_name!r} (from parameter name {name!r})") from None


def _mask_of(module: nn.Module, leaf: str) -> WeightMask | None:
    if parametrize.is_parametrized(module, leaf):
        for p in module.parametrizations[leaf]:
            if isinstance(p, WeightMask):
                return p
    return None


def dense_parameter(model: nn.Module, name: str) -> torch.Tensor:
    """The unmasked tensor behind parameter ``name`` (the original when masked)."""
    module, leaf = _owner(model, name)
    if parametrize.is_parametrized(module, leaf):
        return module.parametrizations[leaf].original
    return getattr(module, leaf)


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor], compose: bool = False) -> dict[str, torch.Tensor]:
    """Mask each named parameter of ``model``; an existing mask is replaced (or AND-ed when ``compose``).

    All masks are validated before anything changes, so a bad call leaves the model untouched.
    Returns the masks now in force, by name.
    """
    checked = []
    for name, mask in masks.items():
        module, leaf = _owner(model, name)
        tensor = dense_parameter(model, name) if leaf in module._parameters or parametrize.is_parametrized(module, leaf) else None
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"model has no parameter {name!r}")
        if mask.shape != tensor.shape or mask.dtype != torch.bool:
            raise ValueError(f"mask for {name!r} must be a bool tensor of shape {tuple(tensor.shape)}, got {mask.dtype} {tuple(mask.shape)}")
        checked.append((name, module, leaf, mask.to(tensor.device)))
    applied = {}
    for name, module, leaf, mask in checked:
        existing = _mask_of(module, leaf)
        if existing is None:
            existing = WeightMask(mask.clone())
            parametrize.register_parametrization(module, leaf, existing)
        else:
            existing.mask.copy_(existing.mask & mask if compose else mask)
        applied[name] = existing.mask
    return applied


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The bool mask of every masked parameter, by plain state_dict name ("fc1.weight")."""
    result = {}
    for module_name, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for leaf in module.parametrizations:
                mask = _mask_of(module, leaf)
                if mask is not None:
                    result[f"{module_name}.{leaf}" if module_name else leaf] = mask.mask
    return result


def is_masked(model: nn.Module) -> bool:
    return bool(get_masks(model))


def _remove_all(model: nn.Module, leave_parametrized: bool) -> None:
    for name in list(get_masks(model)):
        module, leaf = _owner(model, name)
        parametrize.remove_parametrizations(module, leaf, leave_parametrized=leave_parametrized)


def undo(model: nn.Module) -> None:
    """Remove every mask and restore the dense weights exactly as they are stored (pruning undone)."""
    _remove_all(model, leave_parametrized=False)


def bake(model: nn.Module) -> None:
    """Make pruning permanent: weights become ``original * mask`` plain parameters, masks removed."""
    _remove_all(model, leave_parametrized=True)


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A state_dict with plain names and pruned weights zeroed, loadable by an unmasked copy of the model."""
    state = {}
    for name, value in model.state_dict().items():
        match = re.fullmatch(r"(?:(.*)\.)?parametrizations\.([^.]+)\.(original|\d+\..+)", name)
        if match:
            if match[3] != "original":
                continue  # the mask buffers
            module_name, leaf = match[1] or "", match[2]
            name = f"{module_name}.{leaf}" if module_name else leaf
            value = getattr(model.get_submodule(module_name), leaf)
        state[name] = value.detach().clone()
    return state
