"""What pruning did, in numbers: sparsity per parameter and overall, and the checks every pruner shares.

Example:
    >>> import torch
    >>> report = report_from_masks({"fc.weight": torch.tensor([[True, False], [False, False]])})
    >>> report.sparsity
    0.75
    >>> check_sparsity("0.5")
    Traceback (most recent call last):
    ...
    ValueError: sparsity must be a number in [0, 1), got '0.5' (str)
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .layers import prunable_layers
from .masks import get_masks, qualified

SCOPES = ("local", "global")


def check_sparsity(sparsity, what: str = "sparsity") -> float:
    """Return ``sparsity`` as a float, or raise ValueError unless it is a number with 0 <= sparsity < 1."""
    if isinstance(sparsity, torch.Tensor) and sparsity.numel() == 1 and sparsity.is_floating_point():
        sparsity = sparsity.item()  # a slider or schedule may hand over a 0-d tensor
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
        raise ValueError(f"{what} must be a number in [0, 1), got {sparsity!r} ({type(sparsity).__name__})")
    value = float(sparsity)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1) (the fraction of weights to prune), got {sparsity!r}")
    return value


@dataclass
class LayerSparsity:
    name: str  # state_dict name of the parameter
    shape: tuple[int, ...]
    total: int
    pruned: int

    @property
    def sparsity(self) -> float:
        return self.pruned / self.total if self.total else 0.0

    @property
    def kept(self) -> int:
        return self.total - self.pruned


@dataclass
class SparsityReport:
    """Per-parameter and overall sparsity; ``str()`` is a table."""

    layers: list[LayerSparsity]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(layer.total for layer in self.layers)

    @property
    def pruned(self) -> int:
        return sum(layer.pruned for layer in self.layers)

    @property
    def sparsity(self) -> float:
        return self.pruned / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        rows = [
            {
                "name": l.name,
                "shape": list(l.shape),
                "total": l.total,
                "pruned": l.pruned,
                "kept": l.kept,
                "sparsity": l.sparsity,
            }
            for l in self.layers
        ]
        return {
            "layers": rows,
            "total": self.total,
            "pruned": self.pruned,
            "sparsity": self.sparsity,
            "notes": self.notes,
        }

    def __str__(self) -> str:
        width = max([len(l.name) for l in self.layers] + [5])
        lines = [f"{'layer':<{width}}  {'shape':<16} {'kept':>9} {'total':>9} {'sparsity':>9}"]
        for l in self.layers:
            shape = "×".join(map(str, l.shape))
            lines.append(f"{l.name:<{width}}  {shape:<16} {l.kept:>9,} {l.total:>9,} {l.sparsity:>9.2%}")
        lines.append(
            f"{'all':<{width}}  {'':<16} {self.total - self.pruned:>9,} {self.total:>9,} {self.sparsity:>9.2%}"
        )
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


@dataclass
class PruneResult(SparsityReport):
    """What ``wb.prune`` did: the masks by state_dict name, and the sparsity table."""

    masks: dict[str, torch.Tensor] = field(default_factory=dict)


def report_from_masks(masks: dict[str, torch.Tensor], notes=()) -> SparsityReport:
    layers = [LayerSparsity(name, tuple(m.shape), m.numel(), int(m.numel() - m.sum())) for name, m in masks.items()]
    return SparsityReport(layers, list(notes))


def sparsity_report(model: nn.Module) -> SparsityReport:
    """Zeros in every Linear/Conv weight and every masked parameter of any model (masked or not).

    Example:
        >>> import workbench as wb
        >>> wb.sparsity_report(wb.build_model("mlp")).sparsity
        0.0
    """
    names = {qualified(name, "weight") for name in prunable_layers(model)} | set(get_masks(model))
    layers = []
    for name, _ in model.named_parameters():  # keeps module order; masked weights appear as .original
        plain = re.sub(r"(^|\.)parametrizations\.", r"\1", name).removesuffix(".original")
        if plain in names:
            module_name, _, leaf = plain.rpartition(".")
            value = getattr(model.get_submodule(module_name), leaf)
            layers.append(LayerSparsity(plain, tuple(value.shape), value.numel(), int((value == 0).sum())))
    return SparsityReport(layers)


def check_choice(what: str, value, allowed) -> None:
    """ValueError naming the allowed values unless ``value`` is one of them."""
    if not any(value is choice or (isinstance(value, str) and value == choice) for choice in allowed):
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(map(repr, allowed))}")
