"""What structured shrinking cuts out of each weight: the removed rows (outputs) and columns (inputs).

A ``LayerCut`` is one weight seen as a 2-D matrix (Linear: the weight; Conv: each kernel's L2 norm, filters ×
input channels) with the rows and columns a shrink removes. ``layer_cuts`` reads them off a traced dependency
graph and the removed units of a ``ShrinkReport``. The shrink sweep computes them and the figures draw them.

Example:
    >>> import torch
    >>> cut = LayerCut("fc1", torch.arange(6.0).view(3, 2), rows=[1])
    >>> cut.label, cut.kept_matrix().tolist()
    ('3×2 → 2×2', [[0.0, 1.0], [4.0, 5.0]])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def shape_text(shape) -> str:
    """``(300, 64)`` → ``'300×64'``."""
    return "×".join(map(str, shape))


def weight_matrix(weight: torch.Tensor) -> np.ndarray:
    """A weight as a 2-D matrix: Linear as is, Conv as the L2 norm of each kernel (filters × input channels)."""
    weight = weight.detach().cpu().float()
    if weight.dim() == 2:
        return weight.numpy()
    if weight.dim() > 2:
        return weight.flatten(2).norm(dim=2).numpy()
    raise ValueError(f"a weight matrix needs at least 2 dims, got shape {tuple(weight.shape)}")


@dataclass
class LayerCut:
    """One weight before and after shrinking: its matrix and the removed row (output) and column (input) indices."""

    name: str  # module name, e.g. "fc1"
    weight: torch.Tensor  # the dense weight (any Linear/Conv shape)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    columns: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    def __post_init__(self):
        self.matrix = weight_matrix(self.weight)
        self.rows = np.unique(np.asarray(self.rows, dtype=int))
        self.columns = np.unique(np.asarray(self.columns, dtype=int))
        for what, index, size in (
            ("row", self.rows, self.matrix.shape[0]),
            ("column", self.columns, self.matrix.shape[1]),
        ):
            if index.size and (index.min() < 0 or index.max() >= size):
                raise ValueError(
                    f"{self.name}: {what} indices must lie in 0..{size - 1}, got {index.min()}..{index.max()}"
                )

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)

    @property
    def new_shape(self) -> tuple[int, ...]:
        return (self.shape[0] - self.rows.size, self.shape[1] - self.columns.size, *self.shape[2:])

    @property
    def label(self) -> str:
        """``'300×64 → 150×64'``."""
        return f"{shape_text(self.shape)} → {shape_text(self.new_shape)}"

    def kept_rows(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.matrix.shape[0]), self.rows)

    def kept_columns(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.matrix.shape[1]), self.columns)

    def kept_matrix(self) -> np.ndarray:
        """The matrix after shrinking: kept rows and columns only."""
        return self.matrix[np.ix_(self.kept_rows(), self.kept_columns())]


def layer_cuts(weights: dict[str, torch.Tensor], graph, removed: dict[int, list[int]]) -> dict[str, LayerCut]:
    """Every Linear/Conv weight of ``weights`` (by state_dict name) as a LayerCut, from a ShrinkReport's graph
    and removed units.

    A removed unit shows as removed rows in the layers that produce it and removed columns in those that read it.
    """
    cut_rows: dict[str, list] = {}
    cut_columns: dict[str, list] = {}
    for group_id, units in removed.items():
        group = graph.groups[group_id]
        for member in group.members:
            if member.param in weights and member.dim in (0, 1):
                target = cut_rows if member.dim == 0 else cut_columns
                target.setdefault(member.param, []).append(member.indices(torch.as_tensor(units), group.size).numpy())
    cuts = {}
    for name, weight in weights.items():
        if name.endswith(".weight") and weight.dim() in (2, 3, 4):
            rows, columns = (np.concatenate(found.get(name, [np.zeros(0, int)])) for found in (cut_rows, cut_columns))
            module = name.removesuffix(".weight")
            cuts[module] = LayerCut(module, weight, rows, columns)
    return cuts
