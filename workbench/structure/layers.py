"""Op handlers for Linear/Conv calls: they consume the input's channels and produce a new space (or heads).

A layer's input channels become its weight columns (*consumers*); its rows/filters are the
*producers* of a new channel space. A transposed Linear (GPT-2's ``Conv1D``, called as
``addmm(bias, x, weight)``) is the same with rows and columns swapped. A depthwise conv passes its
input channels through, and the q/k/v projections of an attention module produce its head space instead.

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

from ..layer_kinds import is_transposed_linear, weight_dims
from .tracer import Tracer, argument, op_name, tensor_value

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
LAYER_OPS = ("linear", "conv1d", "conv2d", "addmm")
EMBEDDING_OPS = ("embedding",)


def _operands(node) -> tuple:
    """(input, weight, bias) of a layer call: ``linear(x, w, b)``, ``conv(x, w, b)`` or ``addmm(b, x, w)``."""
    if op_name(node.target) == "addmm":
        return node.args[1], node.args[2], node.args[0]
    return node.args[0], node.args[1], argument(node, 2, "bias")


def _is_layer(module, op) -> bool:
    return is_transposed_linear(module) if op == "addmm" else isinstance(module, LAYERS)


def _calls(weight: torch.fx.Node) -> int:
    """How many layer calls use the parameter node ``weight`` as their weight."""
    return sum(
        user.op == "call_function" and op_name(user.target) in LAYER_OPS and _operands(user)[1] is weight
        for user in weight.users
    )


def layer(tracer: Tracer, node) -> None:
    """A linear/conv1d/conv2d call, or an addmm with a transposed Linear's weight (every one, traced input or not)."""
    op = op_name(node.target)
    x, w, b = _operands(node)
    wname = tracer.params.get(w) if isinstance(w, torch.fx.Node) else None
    in_space = tracer.ann.get(x)
    in_sids = [in_space[0]] if in_space else [tracer.internal[x]] if x in tracer.internal else []
    out = tensor_value(node)
    module_name = wname.rpartition(".")[0] if wname else None
    module = tracer.modules.get(module_name)
    if op == "addmm" and not (wname and is_transposed_linear(module)):
        if in_sids:  # a product of other tensors: nothing to slice
            tracer.unsupported(node, in_sids)
        return
    out_dim = 1 - len(out.shape) if op.startswith("conv") else -1
    if op == "linear" and wname in tracer.embeddings and in_space is not None:
        return _tied_output(tracer, node, wname, in_space)
    if wname is None or not _is_layer(module, op) or _calls(w) != 1:
        why = (
            "uses a weight that is not a Linear/Conv module parameter"
            if wname is None or not _is_layer(module, op)
            else f"calls module {module_name!r} more than once"
        )
        tracer.unsupported(node, in_sids, why)
        return
    if x in tracer.internal:
        return tracer.unsupported(node, in_sids, f"applies {module_name!r} to attention internals")
    bname = tracer.params.get(b) if isinstance(b, torch.fx.Node) else None
    in_rank = len(tensor_value(x).shape)
    feature_dim = 1 - in_rank if op.startswith("conv") else -1  # channels: dim 1
    if op.startswith("conv") and module.groups != 1:
        return _grouped_conv(tracer, node, module, module_name, wname, bname, in_space, feature_dim, out_dim)
    rows, columns = weight_dims(module)
    if in_space is not None:
        sid, dim, inner = in_space
        if dim != feature_dim:
            tracer.unsupported(node, [sid], f"applies {module_name!r} over a dim that is not the channel dim")
        else:
            size = tracer.space(sid).size
            features = module.weight.shape[columns]
            if features % (size * inner):
                tracer.unsupported(node, [sid], f"reads {features} features that do not split into {size} channels")
            else:
                tracer.add_consumer(sid, module_name, wname, dim, inner, features // (size * inner), columns)
    if module_name in tracer.projections:
        attention, part = tracer.projections[module_name]
        return _projection(tracer, node, attention, part, wname, bname, module_name, rows)
    sid = tracer.new_space("channel", module.weight.shape[rows])
    tracer.add_member(sid, wname, rows, "producer", module_name)
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


def _projection(tracer, node, attention, part, wname, bname, module_name, rows):
    """A q/k/v projection (or a fused qkv one): its rows (weight dim ``rows``) in ``head_dim`` blocks join the heads.

    With grouped-query attention a unit is one key/value head: ``head_dim`` rows of k and v, and the
    ``group_size × head_dim`` rows of q of the query heads that read it."""
    layout = tracer.attentions[attention]
    if attention not in tracer.head_spaces:
        tracer.head_spaces[attention] = tracer.new_space("head", layout.units, attention)
    sid = tracer.head_spaces[attention]
    tracer.attention_rank[attention] = tensor_value(node).dim()
    hd = layout.head_dim * (layout.group_size if part == "q" else 1)  # a unit: a key/value group's rows
    if part == "qkv":  # fused: q and k rows at offsets 0 and width (outer 2), v rows at 2·width
        for name, dim in ((wname, rows), (bname, 0)):
            if name:
                tracer.add_member(sid, name, dim, "member", module_name, hd, 2)
                role = "producer" if name == wname else "member"
                tracer.add_member(sid, name, dim, role, module_name, hd, 1, 2 * layout.width)
        tracer.internal[node] = sid
        return
    tracer.add_member(sid, wname, rows, "producer" if part == "v" else "member", module_name, hd)
    if bname:
        tracer.add_member(sid, bname, 0, "member", module_name, hd)
    tracer.ann[node] = (sid, -1, hd)


def embedding(tracer: Tracer, node) -> None:
    """An ``nn.Embedding`` lookup: its columns produce a new channel space (token and position embeddings)."""
    weight = node.args[0]
    wname = tracer.params.get(weight)
    module_name = wname.rpartition(".")[0] if wname else None
    if not isinstance(tracer.modules.get(module_name), nn.Embedding):
        return
    sid = tracer.new_space("channel", tensor_value(weight).shape[1])
    tracer.add_member(sid, wname, 1, "producer", module_name)
    tracer.embeddings[wname] = sid
    tracer.ann[node] = (sid, -1, 1)


def _tied_output(tracer: Tracer, node, wname, in_space) -> None:
    """A Linear whose weight is an embedding's (GPT-2's tied ``lm_head``): it reads the embedding columns."""
    sid, dim, inner = in_space
    caller = tracer.stack_modules(node)[-1]
    if dim != -1 or inner != 1 or tracer.space(sid).size != tensor_value(node.args[1]).shape[1]:
        return tracer.unsupported(node, [sid], f"reads the channels of tied embedding {wname!r} laid out differently")
    tracer.add_consumer(sid, caller, wname, dim, inner, 1)
    out = tracer.new_space("channel", tensor_value(node.args[1]).shape[0])
    tracer.add_member(out, wname, 0, "producer", caller)
    tracer.ann[node] = (out, -1, 1)
