"""Which layers a (criterion, pattern) choice cannot prune, and why: a shape an N:M or block pattern cannot tile,
a layer bn_scale cannot score (no BatchNorm after it). Leaving them dense lets the rest of the model be pruned.

Example:
    >>> import workbench as wb
    >>> unfit_layers(wb.pretrained("mlp"), "magnitude", "block4x4")
    {'fc3': 'shape does not fit block4x4'}
"""

from __future__ import annotations

from .criteria import CRITERIA
from .masks import qualified
from .patterns import build_targets, parse_pattern, prunable_layers


def unfit_layers(model, criterion: str, pattern: str) -> dict[str, str]:
    """Layers to leave dense, with why: shapes an N:M or block pattern cannot tile, layers bn_scale cannot score.

    Empty when that would leave nothing to prune, so the Pruner raises its own explanation instead.
    """
    kind = parse_pattern(pattern).kind
    layers = prunable_layers(model)
    unfit = {}
    for name, layer in layers.items():
        if kind in ("nm", "block"):
            try:
                build_targets(layer, pattern)  # the pattern's own shape rule, on this layer alone
            except ValueError:
                unfit[name] = f"shape does not fit {pattern}"
                continue
        if criterion == "bn_scale":
            try:
                CRITERIA["bn_scale"].fn(model, [qualified(name, "weight")], None)
            except ValueError:
                unfit[name] = "no BatchNorm after it"
    return unfit if len(unfit) < len(layers) else {}
