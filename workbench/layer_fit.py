"""Which layers a (criterion, pattern) choice cannot prune, and why: a shape an N:M or block pattern cannot tile,
a layer the criterion cannot score (bn_scale: no BatchNorm after it), both asked of the registries. Leaving them
dense lets the rest of the model be pruned.

Example:
    >>> import workbench as wb
    >>> unfit_layers(wb.pretrained("mlp"), "magnitude", "block4x4")
    {'fc3': 'shape does not fit block4x4'}
"""

from __future__ import annotations

from .criteria import get_criterion
from .layers import prunable_layers
from .patterns import build_targets, parse_pattern


def unfit_layers(model, criterion: str, pattern: str) -> dict[str, str]:
    """Layers to leave dense, with why: shapes the pattern cannot tile, layers the criterion cannot score.

    Empty when that would leave nothing to prune, so the Pruner raises its own explanation instead.
    """
    spec = parse_pattern(pattern).spec
    layers = prunable_layers(model)
    unfit = {}
    if spec.check is not None:
        for name, layer in layers.items():
            try:
                build_targets(layer, pattern)  # the pattern's own shape rule, on this layer alone
            except ValueError:
                unfit[name] = f"shape does not fit {pattern}"
    for name, why in get_criterion(criterion).unscorable(model, [n for n in layers if n not in unfit]).items():
        unfit[name] = why
    return unfit if len(unfit) < len(layers) else {}
