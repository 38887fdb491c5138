"""Layer sensitivity: prune one layer at a time across a sparsity grid and record accuracy (no retraining).

Scores are computed once (one ``Pruner``); each grid point is ``Pruner.masks(layer_sparsity={layer: s})``
with every other layer dense, evaluated by ``Pruner.accuracy``. The model is never modified.

Example:
    >>> import workbench as wb
    >>> result = sensitivity(wb.pretrained("mlp"), wb.load_dataset("digits").test, sparsities=(0.0, 0.5, 0.9))
    >>> list(result.accuracies), bool(result.accuracies["fc1"][0] == result.baseline)
    (['fc1', 'fc2', 'fc3'], True)
    >>> result.max_sparsity(tolerance=1.0)  # any drop allowed: the largest grid sparsity
    {'fc1': 0.9, 'fc2': 0.9, 'fc3': 0.9}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pruner import Pruner
from .reports import check_sparsity

SPARSITIES = tuple(round(0.1 * k, 1) for k in range(10))  # 0.0, 0.1, …, 0.9


@dataclass
class SensitivityResult:
    """Accuracy of the model with one target (layer) pruned, per target and grid sparsity."""

    sparsities: np.ndarray  # the grid, ascending, no duplicates
    accuracies: dict[str, np.ndarray]  # target name → accuracy at each grid sparsity
    baseline: float  # accuracy of the dense model

    def max_sparsity(self, tolerance: float) -> dict[str, float]:
        """Per target, the largest grid sparsity whose accuracy is ≥ baseline − tolerance.

        Any grid point counts, not only those before the first drop below. A target with no such
        point (possible only when the grid lacks 0) gets 0.0: left dense. Comparisons allow 1e-9 of
        float rounding.
        """
        if not tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0 (an accuracy drop), got {tolerance!r}")
        floor = self.baseline - tolerance - 1e-9
        chosen = {}
        for name, accuracies in self.accuracies.items():
            allowed = self.sparsities[accuracies >= floor]
            chosen[name] = float(allowed.max()) if len(allowed) else 0.0
        return chosen

    def to_dict(self) -> dict:
        return {
            "sparsities": self.sparsities.tolist(),
            "baseline": self.baseline,
            "accuracies": {name: values.tolist() for name, values in self.accuracies.items()},
        }


def scan(pruner: Pruner, split, sparsities=SPARSITIES) -> SensitivityResult:
    """The sensitivity scan of an existing ``Pruner`` (local scope, a pattern with adjustable sparsity)."""
    if pruner.scope != "local" or pruner.pattern.fixed_sparsity is not None:
        raise ValueError(
            "a sensitivity scan sets each layer's own sparsity: it needs scope='local' and a pattern "
            "whose sparsity can change (N:M fixes it)"
        )
    grid = np.unique([check_sparsity(s) for s in sparsities])
    if len(grid) == 0:
        raise ValueError("sparsities is empty: give at least one grid sparsity")
    baseline = pruner.accuracy(pruner.masks(0.0), split)
    accuracies = {
        target.name: np.array([pruner.accuracy(pruner.masks(layer_sparsity={target.name: s}), split) for s in grid])
        for target in pruner.targets
    }
    return SensitivityResult(grid, accuracies, baseline)


def sensitivity(
    model, split, criterion="magnitude", pattern="unstructured", sparsities=SPARSITIES, data=None, **pruner_options
) -> SensitivityResult:
    """Prune each target of ``pattern`` alone at every grid sparsity; accuracy on ``split``.

    Args:
        model: a trained classifier; not modified.
        split: where accuracy is measured (a TensorDataset or an (inputs, labels) tuple).
        criterion, pattern, data, **pruner_options: see ``Pruner`` (scope stays local; N:M patterns,
            whose sparsity is fixed, cannot be scanned).
        sparsities: the grid, each in [0, 1).
    """
    return scan(Pruner(model, criterion, pattern, data=data, **pruner_options), split, sparsities)
