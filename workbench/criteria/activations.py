"""Criteria that score whole output units: APoZ and mean activation (from data), BatchNorm scale (network slimming).

Every weight of a unit carries the unit's score, so any pattern can group them.

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("cnn")
    >>> sorted(following_batchnorm(model))[:2]
    ['block1.conv1', 'block1.conv2']
    >>> CRITERIA["bn_scale"].unscorable(model, ["fc"])
    {'fc': 'no BatchNorm after it'}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import batches
from .common import broadcast, dense_weights
from .registry import CRITERIA, Scores, register

__all__ = ["CRITERIA", "following_batchnorm"]

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def following_batchnorm(model: nn.Module) -> dict[str, nn.Module]:
    """For each Linear/Conv whose output feeds only a BatchNorm, that BatchNorm (found on an fx trace)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # models with data-dependent Python cannot be traced; no pairs then
        return {}
    modules = dict(model.named_modules())
    pairs = {}
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), (nn.Linear, nn.Conv1d, nn.Conv2d)):
            users = list(node.users)
            if (
                len(users) == 1
                and users[0].op == "call_module"
                and isinstance(modules[users[0].target], nn.modules.batchnorm._BatchNorm)
            ):
                pairs[node.target] = modules[users[0].target]
    return pairs


def _unit_activations(model, names, data, max_batches, reduce_fn) -> Scores:
    """Per output unit: reduce_fn over the activations after each layer (after its BatchNorm when it has one)."""
    layer_names = [name.rpartition(".")[0] for name in names]
    followers = following_batchnorm(model)
    sums, counts, handles = {}, {}, []

    def hook(layer_name, features_last):
        def record(_module, _inputs, output):
            channel_last = output if features_last or output.dim() == 2 else output.movedim(1, -1)
            values = reduce_fn(F.relu(channel_last)).reshape(-1, channel_last.shape[-1])
            sums[layer_name] = sums.get(layer_name, 0) + values.sum(0).detach()
            counts[layer_name] = counts.get(layer_name, 0) + values.shape[0]

        return record

    for layer_name in layer_names:
        layer = model.get_submodule(layer_name)
        watched = followers.get(layer_name, layer)
        handles.append(watched.register_forward_hook(hook(layer_name, isinstance(watched, nn.Linear))))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            for inputs, _ in batches(data, max_batches=max_batches):
                model(inputs.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    params = dense_weights(model, names)
    return {name: broadcast(sums[layer] / counts[layer], params[name]) for name, layer in zip(names, layer_names)}


@register(
    "apoz",
    needs_data=True,
    description="1 − APoZ: share of nonzero activations (after ReLU) per output unit",
    scores="units",
)
def apoz(model, names, data, max_batches: int | None = 8) -> Scores:
    return _unit_activations(model, names, data, max_batches, lambda a: (a > 0).float())


@register(
    "mean_activation", needs_data=True, description="mean activation (after ReLU) per output unit", scores="units"
)
def mean_activation(model, names, data, max_batches: int | None = 8) -> Scores:
    return _unit_activations(model, names, data, max_batches, lambda a: a)


def _without_batchnorm(model: nn.Module, layer_names: list[str]) -> dict[str, str]:
    followers = following_batchnorm(model)
    return {name: "no BatchNorm after it" for name in layer_names if name not in followers}


@register(
    "bn_scale",
    needs_data=False,
    description="|γ| of the BatchNorm after each layer (network slimming)",
    scores="units",
    needs_batchnorm=True,
    unscorable=_without_batchnorm,
)
def bn_scale(model, names, data) -> Scores:
    """|γ| per output unit; a BatchNorm's own weight name scores as itself (dependency groups list them)."""
    own = {name for name in names if isinstance(model.get_submodule(name.rpartition(".")[0]), NORMS)}
    layers = [name.rpartition(".")[0] for name in names if name not in own]
    if missing := _without_batchnorm(model, layers):
        raise ValueError(
            f"bn_scale needs a BatchNorm right after each pruned layer; none after {list(missing)}; exclude those "
            "layers"
        )
    followers = following_batchnorm(model)
    params = dense_weights(model, names)
    return {
        name: params[name].detach().abs()
        if name in own
        else broadcast(followers[name.rpartition(".")[0]].weight.detach().abs(), params[name])
        for name in names
    }
