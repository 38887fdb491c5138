"""Masked models through ``torch.nn.utils.parametrize``: apply, read, undo and bake bool masks.

A mask is a ``WeightMask`` parametrization: ``module.weight`` is computed as ``original * mask``, the
dense weights live on in ``module.parametrizations.weight.original``. Optimizer steps update
``original``, so a pruned weight stays exactly zero however the optimizer moves its original;
``parametrize.remove_parametrizations`` (or ``undo``/``bake``) removes the machinery.

Example:
    >>> from torch import nn
    >>> layer = nn.Linear(3, 2)
    >>> _ = apply_masks(layer, {"weight": torch.tensor([[True, False, True], [False, True, True]])})
    >>> int((layer.weight == 0).sum())
    2
    >>> undo(layer); is_masked(layer)
    False
"""

from __future__ import annotations

import re
from contextlib import contextmanager

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


def qualified(module_name: str, leaf: str) -> str:
    """The state_dict name of ``leaf`` in module ``module_name`` ("" is the model itself)."""
    return f"{module_name}.{leaf}" if module_name else leaf


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


def functional_weights(
    model: nn.Module, weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Arguments for ``torch.func.functional_call`` running ``model`` with ``weights * masks`` in place of
    the named parameters, whether or not the model is masked (its own masks are then overridden)."""
    overrides = {}
    for name, mask in masks.items():
        module, leaf = _owner(model, name)
        existing = _mask_of(module, leaf)
        if existing is None:
            overrides[name] = weights[name] * mask
        else:
            prefix = qualified(name.rpartition(".")[0], f"parametrizations.{leaf}")
            index = list(module.parametrizations[leaf]).index(existing)
            overrides[f"{prefix}.original"] = weights[name]
            overrides[f"{prefix}.{index}.mask"] = mask
    return overrides


@contextmanager
def unmasked(model: nn.Module):
    """Run a block with every mask of ``model`` set to all-True (a dense forward); masks restored after."""
    masks = get_masks(model)
    saved = {name: mask.clone() for name, mask in masks.items()}
    try:
        for mask in masks.values():
            mask.fill_(True)
        yield model
    finally:
        for name, mask in masks.items():
            mask.copy_(saved[name])


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor], compose: bool = False) -> dict[str, torch.Tensor]:
    """Mask each named parameter of ``model``; an existing mask is replaced (or AND-ed when ``compose``).

    All masks are validated before anything changes, so a bad call leaves the model untouched.
    Returns the masks now in force, by name.
    """
    checked = []
    for name, mask in masks.items():
        module, leaf = _owner(model, name)
        if not isinstance(mask, torch.Tensor):
            raise ValueError(f"mask for {name!r} must be a bool tensor, got {type(mask).__name__}")
        tensor = (
            dense_parameter(model, name)
            if leaf in module._parameters or parametrize.is_parametrized(module, leaf)
            else None
        )
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"model has no parameter {name!r}")
        if mask.shape != tensor.shape or mask.dtype != torch.bool:
            raise ValueError(
                f"mask for {name!r} must be a bool tensor of shape {tuple(tensor.shape)}, got {mask.dtype} "
                f"{tuple(mask.shape)}"
            )
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
                    result[qualified(module_name, leaf)] = mask.mask
    return result


def is_masked(model: nn.Module) -> bool:
    return bool(get_masks(model))


def _own_class(module: nn.Module) -> None:
    """Give a parametrized module a class of its own: a deep copy shares torch's generated class with its
    original, and removing a parametrization edits that class, which would break the original too."""
    cls = module.__class__
    namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    module.__class__ = type(cls.__name__, cls.__bases__, namespace)


def _remove_all(model: nn.Module, leave_parametrized: bool) -> None:
    for name in list(get_masks(model)):
        module, leaf = _owner(model, name)
        _own_class(module)
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
            name = qualified(module_name, leaf)
            value = getattr(model.get_submodule(module_name), leaf)
        state[name] = value.detach().clone()
    return state
