"""Op handlers for normalizations: BatchNorm slices along the channels, LayerNorm blocks them, GroupNorm groups them.

Each handler is called on a node whose first argument carries a traced channel space (see ``ops``).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from workbench.structure.graph import trace_groups
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.GroupNorm(4, 8), nn.Conv2d(8, 2, 1))
    >>> group = trace_groups(model, torch.randn(1, 3, 4, 4)).groups[0]
    >>> group.size, [m.block for m in group.members]  # 4 units: whole norm groups of 2 channels
    (4, [2, 2, 2, 2, 2])
"""

from __future__ import annotations

import math

import torch

from .tracer import Tracer, argument, op_name, tensor_value


def batch_norm(tracer: Tracer, node) -> None:
    """BatchNorm: its weight, bias and running statistics are sliced with the channels."""
    x = node.args[0]
    sid, dim, inner = tracer.ann[x]
    shape = tensor_value(x).shape
    size = tracer.space(sid).size
    if dim != 1 - len(shape) or shape[1] % (size * inner):
        return tracer.unsupported(node, [sid], "normalizes a dim other than the channel dim")
    for arg in node.args[1:5]:
        if isinstance(arg, torch.fx.Node) and arg in tracer.params:
            tracer.add_member(
                sid,
                tracer.params[arg],
                0,
                "member",
                tracer.params[arg].rpartition(".")[0],
                inner,
                shape[1] // (size * inner),
            )
    tracer.ann[node] = (sid, dim, inner)


def layer_norm(tracer: Tracer, node) -> None:
    """LayerNorm/RMSNorm over the channels: its weight and bias are sliced with them.

    Removing channels changes a LayerNorm's mean and variance, so its channels change the function
    (kept whole when exact). An RMSNorm with a weight stays exact: see ``rms_norm_module``.
    """
    x = node.args[0]
    sid, dim, inner = tracer.ann[x]
    shape = list(node.args[1])
    if dim >= -len(shape):
        for arg in node.args[2:4]:
            if isinstance(arg, torch.fx.Node) and arg in tracer.params:
                pname = tracer.params[arg]
                tracer.add_member(sid, pname, len(shape) + dim, "member", pname.rpartition(".")[0], inner)
        weight = argument(node, 2, "weight")
        if op_name(node.target) == "rms_norm" and weight in tracer.params:
            tracer.space(sid).rms_norms.append(tracer.params[weight].rpartition(".")[0])
        else:
            tracer.changes_function(
                sid,
                f"normalized by {op_name(node.target)} at node {node.name!r}{tracer.where(node)}: "
                "removing channels would change its mean and variance",
            )
    tracer.ann[node] = (sid, dim, inner)


EPS_ATTRIBUTES = ("variance_epsilon", "eps")  # where normalization modules keep their epsilon


def epsilons_of(module) -> dict[str, float]:
    """A module's epsilon attributes that hold a float, by name (empty: not a normalization with one)."""
    return {attr: value for attr in EPS_ATTRIBUTES if isinstance(value := getattr(module, attr, None), float)}


def rms_norm_module(tracer: Tracer, node) -> str | None:
    """The module of a hand-written RMSNorm whose mean of squares is ``node``, or None.

    ``x * rsqrt(mean(x²) + eps) * weight`` over D channels equals, over the D' kept ones when the
    removed channels are zero, the same with ``weight · sqrt(D/D')`` and ``eps · D/D'``, so the group
    can shrink exactly: ``shrink`` rescales the module's weight and epsilon.
    """
    squares = node.args[0]
    if op_name(squares.target) != "pow" or squares.args[1] != 2 or op_name(node.target) != "mean":
        return None
    stack = tracer.stack_modules(node)
    module = tracer.modules.get(stack[-1]) if stack else None
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.nn.Parameter) or weight.dim() != 1 or not epsilons_of(module):
        return None
    return stack[-1]


def group_norm(tracer: Tracer, node) -> None:
    """GroupNorm: removing a whole norm group is exact, so the units become whole norm groups."""
    x = node.args[0]
    sid, dim, inner = tracer.ann[x]
    space = tracer.space(sid)
    channels, num_groups = tensor_value(x).shape[1], node.args[1]
    weight, bias = argument(node, 2, "weight"), argument(node, 3, "bias")
    per_group = channels // num_groups
    if (
        dim != 1 - tensor_value(x).dim()
        or space.parts is not None
        or channels != space.size * inner
        or per_group % inner
    ):
        return tracer.unsupported(node, [sid], "normalizes groups that do not line up with whole channels")
    if weight not in tracer.params or bias not in tracer.params:
        return tracer.unsupported(
            node, [sid], "is a GroupNorm without affine parameters (its group count could not be updated)"
        )
    for arg in (weight, bias):
        tracer.add_member(sid, tracer.params[arg], 0, "member", tracer.params[arg].rpartition(".")[0], inner)
    space.units_per_group = math.lcm(space.units_per_group, per_group // inner)
    tracer.ann[node] = (sid, dim, inner)
