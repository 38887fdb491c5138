"""Per-layer magnitude masks at any sparsity, sorted once so a slider move is a cheap re-threshold.

The count of pruned weights in a layer of n weights is ``round(sparsity * n)`` (Python's
rounding, as in ``torch.nn.utils.prune``); among equal magnitudes the lower flat index goes first.

Example:
    >>> import workbench as wb
    >>> sweep = MagnitudeSweep(wb.pretrained("mlp"), wb.load_dataset("digits").test)
    >>> mask = sweep.masks(0.5)["fc1.weight"]
    >>> int((~mask).sum()), mask.numel()
    (9600, 19200)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call


def check_sparsity(sparsity: float) -> float:
    """Return ``sparsity`` as a float, or raise ValueError unless 0 <= sparsity < 1."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"sparsity must be in [0, 1) (the fraction of weights to prune), got {sparsity!r}")
    return value


def linear_weight_names(model: nn.Module) -> list[str]:
    """The state_dict names of all ``nn.Linear`` weights, in module order."""
    return [f"{name}.weight" for name, module in model.named_modules() if isinstance(module, nn.Linear)]


class MagnitudeSweep:
    """Local (per-layer) L1 magnitude masks of a model's Linear weights, and accuracy at any sparsity.

    The model is never modified: accuracy is computed with ``torch.func.functional_call`` on masked
    copies of the weights.

    Args:
        model: a trained classifier.
        split: the evaluation split (a TensorDataset or an (inputs, labels) tuple).
        weights: state_dict names of the weights to prune (default: every Linear weight).
    """

    def __init__(self, model: nn.Module, split, weights: list[str] | None = None):
        self.model = model
        parameters = dict(model.named_parameters())
        self.weight_names = weights if weights is not None else linear_weight_names(model)
        missing = [name for name in self.weight_names if name not in parameters]
        if missing or not self.weight_names:
            raise ValueError(f"no prunable weights named {missing or self.weight_names}; model has {list(parameters)}")
        self.weights = {name: parameters[name].detach().clone() for name in self.weight_names}
        self.order = {name: w.abs().flatten().argsort(stable=True) for name, w in self.weights.items()}
        self.inputs, self.labels = split.tensors if hasattr(split, "tensors") else split
        self.inputs = self.inputs.to(next(model.parameters()).device)

    def pruned_count(self, name: str, sparsity: float) -> int:
        """How many weights of ``name`` are pruned at ``sparsity``."""
        return round(check_sparsity(sparsity) * self.weights[name].numel())

    def masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        """Bool masks (True = kept), shaped like each weight."""
        result = {}
        for name, weight in self.weights.items():
            keep = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
            keep[self.order[name][: self.pruned_count(name, sparsity)]] = False
            result[name] = keep.view_as(weight)
        return result

    def masked_weights(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: self.weights[name] * mask for name, mask in masks.items()}

    @torch.no_grad()
    def accuracy(self, sparsity: float, masks: dict[str, torch.Tensor] | None = None) -> float:
        """Accuracy of the model with every layer pruned to ``sparsity`` (or with the given masks)."""
        masks = masks if masks is not None else self.masks(sparsity)
        was_training = self.model.training
        self.model.eval()
        try:
            logits = functional_call(self.model, self.masked_weights(masks), (self.inputs,))
        finally:
            self.model.train(was_training)
        return (logits.argmax(1).cpu() == self.labels).float().mean().item()

    def curve(self, sparsities) -> np.ndarray:
        """Accuracy at each sparsity of a grid."""
        return np.array([self.accuracy(s) for s in sparsities])
