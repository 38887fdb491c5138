"""A Pruner bound to an evaluation split: masks and accuracy at any sparsity, and accuracy curves.

Example:
    >>> import workbench as wb
    >>> sweep = Sweep(wb.Pruner(wb.pretrained("mlp")), wb.load_dataset("digits").test)
    >>> mask = sweep.masks(0.5)["fc1.weight"]
    >>> int((~mask).sum()), mask.numel()
    (9600, 19200)
    >>> nm = Sweep(wb.Pruner(wb.pretrained("mlp"), pattern="2:4"), wb.load_dataset("digits").test)
    >>> nm.reachable_curve([0.0, 0.9])[0].tolist()  # 2:4 fixes the sparsity: one point
    [0.5]
"""

from __future__ import annotations

import numpy as np
import torch

from .pruner import Pruner
from .reports import check_sparsity


class Sweep:
    """Accuracy of ``pruner``'s masks on ``split`` (a TensorDataset or an (inputs, labels) tuple).

    The model is never modified: masks are applied to copies of the weights on the fly.
    """

    def __init__(self, pruner: Pruner, split):
        self.pruner = pruner
        self.split = split

    def masks(self, sparsity: float, layer_sparsity: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
        """Bool masks (True = kept) by state_dict name; ``sparsity`` must be a number unless N:M fixes it."""
        if self.pruner.pattern.fixed_sparsity is None and layer_sparsity is None:
            sparsity = check_sparsity(sparsity)
        return self.pruner.masks(sparsity, layer_sparsity)

    def accuracy(self, sparsity: float, masks: dict[str, torch.Tensor] | None = None) -> float:
        """Accuracy at ``sparsity`` (or with the given masks)."""
        return self.pruner.accuracy(masks if masks is not None else self.masks(sparsity), self.split)

    def curve(self, sparsities) -> np.ndarray:
        """Accuracy at each sparsity of a grid."""
        return np.array([self.accuracy(s) for s in sparsities])

    def reachable_curve(self, sparsities) -> tuple[np.ndarray, np.ndarray]:
        """(sparsities, accuracies) the pruner can reach: the pattern's own sparsity alone when it fixes one
        (N:M), else the grid, in order, up to the first sparsity that would empty a layer (global scope keeps one
        group per layer, so it may stop short of the top)."""
        fixed = self.pruner.pattern.fixed_sparsity
        grid = [fixed] if fixed is not None else [check_sparsity(s) for s in sparsities]
        reached = {}
        for sparsity in grid:
            try:
                reached[sparsity] = self.accuracy(sparsity)
            except ValueError:
                break
        return np.array(list(reached)), np.array(list(reached.values()))
