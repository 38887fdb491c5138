"""A Pruner bound to an evaluation split: masks and accuracy at any sparsity, and accuracy curves.

Example:
    >>> import workbench as wb
    >>> sweep = Sweep(wb.Pruner(wb.pretrained("mlp")), wb.load_dataset("digits").test)
    >>> mask = sweep.masks(0.5)["fc1.weight"]
    >>> int((~mask).sum()), mask.numel()
    (9600, 19200)
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
