"""Op handlers for Linear/Conv calls: they consume the input's channels and produce a new space (or heads).

A layer's input channels become its weight columns (*consumers*); its rows/filters are the
*producers* of a new channel space. A depthwise conv passes its input channels through, and the
q/k/v projections of an attention module produce its head space instead.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from workbench.structure.tracer import Tracer
    >>> model = nn.Sequential(nn.Linear(8, 4))
    >>> ep = torch.export.export(model, (torch.randn(2, 8),))
    >>> tracer = Tracer(model)
    >>> tracer.run(ep, layer)  # the graph calls nothing but the Linear
    >>> [(m.param, m.role) for m in tracer.spaces[0].members]
    [('0.weight', 'producer'), ('0.bias', 'member')]
"""

from __future__ import annotations

import torch
from torch import nn

from .tracer import Tracer, argument, op_name, tensor_value

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
LAYER_OPS = ("linear", "conv1d", "conv2d")


def _calls(weight: torch.fx.Node) -> int:
    """How many layer calls use the parameter node ``weight`` as their weight."""
    return sum(
        user.op == "call_function" and op_name(user.target) in LAYER_OPS and user.args[1] is weight
        for user in weight.users
    )


def layer(tracer: Tracer, node) -> None:
    """A linear/conv1d/conv2d call (every one, whether or not its input is traced)."""
    op = op_name(node.target)
    x, w = node.args[0], node.args[1]
    b = argument(node, 2, "bias")
    wname = tracer.params.get(w) if isinstance(w, torch.fx.Node) else None
    in_space = tracer.ann.get(x)
    in_sids = [in_space[0]] if in_space else [tracer.internal[x]] if x in tracer.internal else []
    out = tensor_value(node)
    module_name = wname.rpartition(".")[0] if wname else None
    module = tracer.modules.get(module_name)
    out_dim = -1 if op == "linear" else 1 - len(out.shape)
    if wname is None or not isinstance(module, LAYERS) or _calls(w) != 1:
        why = (
            "uses a weight that is not a Linear/Conv module parameter"
            if wname is None or not isinstance(module, LAYERS)
            else f"calls module {module_name!r} more than once"
        )
        tracer.unsupported(node, in_sids, why)
        return
    if x in tracer.internal:
        return tracer.unsupported(node, in_sids, f"applies {module_name!r} to attention internals")
    bname = tracer.params.get(b) if isinstance(b, torch.fx.Node) else None
    in_rank = len(tensor_value(x).shape)
    feature_dim = -1 if op == "linear" else 1 - in_rank  # channels: dim 1
    if op.startswith("conv") and module.groups != 1:
        return _grouped_conv(tracer, node, module, module_name, wname, bname, in_space, feature_dim, out_dim)
    if in_space is not None:
        sid, dim, inner = in_space
        if dim != feature_dim:
            tracer.unsupported(node, [sid], f"applies {module_name!r} over a dim that is not the channel dim")
        else:
            size = tracer.space(sid).size
            features = module.weight.shape[1]
            if features % (size * inner):
                tracer.unsupported(node, [sid], f"reads {features} features that do not split into {size} channels")
            else:
                tracer.add_consumer(sid, module_name, wname, dim, inner, features // (size * inner))
    if module_name in tracer.projections:
        attention, part = tracer.projections[module_name]
        return _projection(tracer, node, attention, part, wname, bname, module_name)
    sid = tracer.new_space("channel", module.weight.shape[0])
    tracer.add_member(sid, wname, 0, "producer", module_name)
    if bname:
        tracer.add_member(sid, bname, 0, "member", module_name)
    tracer.ann[node] = (sid, out_dim, 1)


def _grouped_conv(tracer, node, module, module_name, wname, bname, in_space, feature_dim, out_dim):
    """Depthwise convs pass their input channels through (``multiplier`` outputs each); other groups are unsupported."""
    depthwise = module.groups == module.in_channels
    if depthwise and (in_space is None or in_space[1] == feature_dim):
        multiplier = module.out_channels // module.in_channels
        if in_space is None:  # the model input: fixed channels, nothing produces them
            in_space = (tracer.new_space("channel", module.in_channels), feature_dim, 1)
            tracer.block(in_space[0], f"{module_name!r} filters channels that no layer produces")
        sid, _, inner = in_space
        if tracer.space(sid).size * inner == module.in_channels:
            for name in filter(None, (wname, bname)):
                tracer.add_member(sid, name, 0, "member", module_name, inner * multiplier)
            tracer.ann[node] = (sid, out_dim, inner * multiplier)
            return
    why = f"is a grouped conv (groups={module.groups}): its channels cannot be removed one by one"
    tracer.unsupported(node, [in_space[0]] if in_space else [], why)
    sid = tracer.new_space("channel", module.out_channels)
    tracer.block(sid, f"output of grouped conv {module_name!r}")
    tracer.ann[node] = (sid, out_dim, 1)


def _projection(tracer, node, attention, part, wname, bname, module_name):
    """A q/k/v projection (or a fused qkv one): its rows in blocks of ``head_dim`` join the head space."""
    layout = tracer.attentions[attention]
    if attention not in tracer.head_spaces:
        tracer.head_spaces[attention] = tracer.new_space("head", layout.num_heads, attention)
    sid = tracer.head_spaces[attention]
    tracer.attention_rank[attention] = tensor_value(node).dim()
    hd = layout.head_dim
    if part == "qkv":  # fused: q and k rows at offsets 0 and width (outer 2), v rows at 2·width
        for name in filter(None, (wname, bname)):
            tracer.add_member(sid, name, 0, "member", module_name, hd, 2)
            tracer.add_member(
                sid, name, 0, "producer" if name == wname else "member", module_name, hd, 1, 2 * layout.width
            )
        tracer.internal[node] = sid
        return
    tracer.add_member(sid, wname, 0, "producer" if part == "v" else "member", module_name, hd)
    if bname:
        tracer.add_member(sid, bname, 0, "member", module_name, hd)
    tracer.ann[node] = (sid, -1, hd)
