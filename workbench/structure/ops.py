"""The op table: how each aten op moves channel spaces, one entry per op name (``OPS``), and ``handle``.

A channel space starts at a layer or an embedding lookup, flows unchanged through elementwise ops and
spatial padding, is merged with another by a residual ``add``, is placed next to others by ``cat``, is cut
into equal pieces by ``chunk`` and is followed through reshapes, permutes, pools and reductions that keep
the channel dim. Supporting a new op is one entry: its name, and a handler wrapped in the checks it needs
(``reads_channels``, ``tensor_op`` or ``one_input``). An op without an entry makes every space it reads
unprunable, with a warning.

Example:
    >>> OPS["relu"] is OPS["gelu"]  # the elementwise ops share one pass-through entry
    True
    >>> sorted(op for op in OPS if OPS[op] is OPS["linear"])
    ['addmm', 'conv1d', 'conv2d', 'linear']
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .layers import EMBEDDING_OPS, LAYER_OPS, embedding, layer
from .norms import batch_norm, group_norm, layer_norm, rms_norm_module
from .tracer import Tracer, argument, holds_tensors, op_name, tensor_value

Handler = Callable[[Tracer, torch.fx.Node], None]
ChannelHandler = Callable[[Tracer, torch.fx.Node, list[torch.fx.Node]], None]  # also given the traced inputs

ELEMENTWISE = (
    *("relu", "relu_", "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_"),
    *("hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "elu", "elu_", "hardswish", "hardswish_"),
    *("hardsigmoid", "relu6", "mish", "softplus", "abs", "neg", "exp", "log", "sqrt"),
    *("dropout", "dropout_", "feature_dropout", "alpha_dropout"),
    *("clone", "contiguous", "alias", "detach", "_to_copy", "to"),
)
BINARY = ("add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "pow")
POOLS = (
    *("avg_pool1d", "avg_pool2d", "max_pool1d", "max_pool2d", "max_pool2d_with_indices"),
    *("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_avg_pool2d"),
)
REDUCTIONS = ("mean", "sum", "amax", "amin")
RESHAPES = ("view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze")
BATCH_NORMS = ("batch_norm", "_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit")
TUPLE_OPS = (*BATCH_NORMS, "max_pool2d_with_indices")  # their first output carries the channels
SPLITS = ("split", "split_with_sizes", "chunk")  # pieces along a dim; along the channels, a concatenation in reverse
PADS = ("pad", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "replication_pad1d", "replication_pad2d")


# ---- the checks an entry runs before its handler ---------------------------------------------------
def reads_channels(handle: ChannelHandler) -> Handler:
    """Run ``handle(tracer, node, spaced)`` when the node reads traced spaces and is no op on attention heads."""

    def on_node(tracer, node):
        spaced = tracer.spaced_inputs(node)
        if spaced and not tracer.on_heads(node, spaced):
            handle(tracer, node, spaced)

    return on_node


def _tensor_checks(handle: ChannelHandler) -> ChannelHandler:
    """Pass on ops making one tensor (or a ``TUPLE_OPS`` tuple) that read no attention internals."""

    def on_spaced(tracer, node, spaced):
        if tensor_value(node) is None and op_name(node.target) not in TUPLE_OPS:
            if holds_tensors(node):
                tracer.unsupported(node, tracer.sids(spaced), "splits the channels into several tensors")
            return  # shape queries and the like produce no tensor
        if any(n in tracer.internal for n in spaced):
            why = "reads attention internals outside the attention module"
            return tracer.unsupported(node, tracer.sids(spaced), why)
        handle(tracer, node, spaced)

    return on_spaced


def _block_inputs(tracer, node, spaced):
    tracer.unsupported(node, tracer.sids(spaced))


_unmapped_channels = _tensor_checks(_block_inputs)


def tensor_op(handle: ChannelHandler) -> Handler:
    """``reads_channels``, for an op that makes a tensor from channels (not from attention internals)."""
    return reads_channels(_tensor_checks(handle))


def one_input(handle: Handler) -> Handler:
    """``tensor_op``, for an op whose one traced input is its first argument; ``handle(tracer, node)``."""

    def on_tensor(tracer, node, spaced):
        if len(spaced) == 1 and node.args and node.args[0] in tracer.ann:
            handle(tracer, node)
        else:
            _block_inputs(tracer, node, spaced)

    return tensor_op(on_tensor)


# ---- handlers --------------------------------------------------------------------------------------
def pass_through(tracer: Tracer, node) -> None:
    tracer.ann[node] = tracer.ann[node.args[0]]


def getitem(tracer: Tracer, node) -> None:
    """A piece of a split/chunk, or the first output of a ``TUPLE_OPS`` op (any other item is unsupported)."""
    if node.args[0] in tracer.pieces:
        tracer.ann[node] = tracer.pieces[node.args[0]][node.args[1]]
    else:
        _tuple_item(tracer, node)


@reads_channels
def _tuple_item(tracer, node, spaced):
    x = node.args[0]
    if node.args[1] == 0 and x in tracer.ann and op_name(x.target) in TUPLE_OPS:
        tracer.ann[node] = tracer.ann[x]
    else:
        _block_inputs(tracer, node, spaced)


def binary(tracer: Tracer, node, spaced) -> None:
    """add/sub/mul/div/pow: traced operands are merged into one space; a parameter operand is sliced with it."""
    anns = {tracer.ann[n][1:] for n in spaced}
    if len(anns) != 1:
        return tracer.unsupported(node, [tracer.ann[n][0] for n in spaced], "combines channels laid out differently")
    dim, inner = anns.pop()
    sid = tracer.ann[spaced[0]][0]
    for n in spaced[1:]:
        sid = tracer.merge(sid, tracer.ann[n][0], node)
    for arg in node.args[:2]:
        if not isinstance(arg, torch.fx.Node) or arg in spaced:
            continue
        value = tensor_value(arg)
        if value is None or value.dim() < -dim or value.shape[dim] == 1:
            continue  # scalar or broadcast along the channels
        if arg in tracer.params and inner == 1:
            pname = tracer.params[arg]
            tracer.add_member(sid, pname, value.dim() + dim, "member", pname.rpartition(".")[0])
        elif arg in tracer.params:
            why = f"combines the channels with tensor {arg.name!r} that cannot be sliced"
            return tracer.unsupported(node, [sid], why)
        else:  # channels from the model input or an untracked computation: they stay
            tracer.block(
                sid,
                f"combined at node {node.name!r}{tracer.where(node)} with {arg.name!r}, whose channels are fixed",
            )
    tracer.ann[node] = (sid, dim, inner)


def cat(tracer: Tracer, node, spaced) -> None:
    """Along the channels, a new space whose parts are the inputs' spaces at their offsets."""
    tensors = list(node.args[0])
    out = tensor_value(node)
    rank = out.dim()
    dim = argument(node, 1, "dim", 0) % rank - rank
    anns = [tracer.ann.get(t) for t in tensors]
    known = [a for a in anns if a is not None]
    sids = [a[0] for a in known] + [tracer.internal[t] for t in tensors if t in tracer.internal]
    if len(sids) > len(known):
        return tracer.unsupported(node, sids, "concatenates attention internals")
    if all(a[1] != dim for a in known):  # along another dim (tokens, batch): the channels pass through
        layouts = {(tracer.find(a[0]), a[1], a[2]) for a in known}
        if len(layouts) == 1 and all(a is not None or _same_param(tracer, t, known[0]) for t, a in zip(tensors, anns)):
            tracer.ann[node] = known[0]
            return
        return tracer.unsupported(node, sids, "concatenates channels laid out differently")
    parts, offset = [], 0
    for tensor, a in zip(tensors, anns):
        width = tensor_value(tensor).shape[dim]
        if a is not None:
            sid, adim, inner = a
            if adim != dim or tracer.space(sid).size * inner != width:
                return tracer.unsupported(node, sids, "concatenates channels laid out differently")
            parts.append((sid, offset, inner))
        offset += width
    composite = tracer.new_space("channel", out.shape[dim])
    tracer.spaces[composite].parts = parts
    tracer.ann[node] = (composite, dim, 1)


def _same_param(tracer: Tracer, tensor, ann) -> bool:
    """Whether ``tensor`` is a parameter (maybe expanded) whose channels can be sliced with ``ann``'s space."""
    while op_name(getattr(tensor, "target", "")) in ("expand", "alias", "clone") and tensor not in tracer.params:
        tensor = tensor.args[0]
    if tensor not in tracer.params or ann[2] != 1:
        return False
    value = tensor_value(tensor)
    sid, dim = ann[0], ann[1]
    if value.dim() < -dim or value.shape[dim] != tracer.space(sid).size:
        return False
    pname = tracer.params[tensor]
    tracer.add_member(sid, pname, value.dim() + dim, "member", pname.rpartition(".")[0])
    return True


def split(tracer: Tracer, node, spaced) -> None:
    """split/chunk. Along the channels only ``chunk`` into equal pieces follows a shrink (the sizes of
    ``split`` are fixed in the model's code): the source becomes the pieces side by side, and unit u of
    every piece is one unit, so the pieces stay equal (as a GLU's ``a * gate`` needs anyway)."""
    if len(spaced) != 1 or node.args[0] not in tracer.ann:
        return _unmapped_channels(tracer, node, spaced)
    x = node.args[0]
    sid, dim, inner = tracer.ann[x]
    rank = tensor_value(x).dim()
    along = argument(node, 2, "dim", 0) % rank - rank
    widths = [v.shape[along] for v in node.meta["val"]]
    if along != dim:  # along tokens or batch: every piece keeps the channels
        tracer.pieces[node] = [(sid, dim, inner)] * len(widths)
        return
    root = tracer.space(sid)
    if op_name(node.target) != "chunk" or len(set(widths)) != 1 or sum(widths) != root.size:
        why = "splits the channels at sizes fixed in the model's code (only chunk into equal pieces can shrink)"
        return tracer.unsupported(node, [sid], why)
    if inner != 1 or root.parts is not None or root.units_per_group > 1:
        return tracer.unsupported(node, [sid], "splits channels that are concatenated, grouped or flattened")
    piece = tracer.new_space(root.kind, widths[0])
    root.parts = [(piece, index * widths[0], 1) for index in range(len(widths))]
    tracer.pieces[node] = [(piece, dim, 1)] * len(widths)


def pool(tracer: Tracer, node) -> None:
    """Pooling over the spatial dims keeps the channels."""
    x = node.args[0]
    out = tensor_value(node)
    sid, dim, inner = tracer.ann[x]
    rank = len(tensor_value(x).shape)
    if (dim != 1 - rank and not (rank == 3 and dim == -3)) or inner != 1:
        return tracer.unsupported(node, [sid], "pools over the channel dim")
    tracer.ann[node] = (sid, dim - rank + len(out.shape), 1) if out is not None else (sid, dim, 1)


def reduction(tracer: Tracer, node) -> None:
    """A reduction over other dims keeps the channels (at a new position unless ``keepdim``).

    One over the channels reads them all: like a LayerNorm's statistics, removing channels changes it
    (kept whole when exact), unless it is an RMSNorm's mean of squares, which a shrink rescales exactly.
    """
    x = node.args[0]
    sid, dim, inner = tracer.ann[x]
    rank = len(tensor_value(x).shape)
    dims = argument(node, 1, "dim")
    if dims is None or dims == []:  # over every dim
        dims = list(range(rank))
    keepdim = argument(node, 2, "keepdim", False)
    dims = [d % rank for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
    pos = dim % rank
    if pos in dims:
        rms_norm = rms_norm_module(tracer, node)
        if rms_norm is not None:
            return tracer.space(sid).rms_norms.append(rms_norm)
        return tracer.changes_function(
            sid,
            f"reduced by {op_name(node.target)} over the channels at node {node.name!r}{tracer.where(node)}: "
            "removing channels would change it",
        )
    new_pos = pos if keepdim else pos - sum(d < pos for d in dims)
    new_rank = rank if keepdim else rank - len(dims)
    tracer.ann[node] = (sid, new_pos - new_rank, inner)


def reshape(tracer: Tracer, node) -> None:
    """A reshape that keeps the channel dim whole, maybe merging the dims after it into ``inner``."""
    x = node.args[0]
    sid, dim, inner = tracer.ann[x]
    shape_in, shape_out = list(tensor_value(x).shape), list(tensor_value(node).shape)
    p = dim % len(shape_in)
    size = tracer.space(sid).size
    before = math.prod(shape_in[:p])
    channel_block = shape_in[p]  # = outer * size * inner along this dim
    for q in range(len(shape_out)):
        if math.prod(shape_out[:q]) == before and shape_out[q] % channel_block == 0:
            extra = shape_out[q] // channel_block
            if math.prod(shape_in[p + 1 :]) == extra * math.prod(shape_out[q + 1 :]) and shape_in[p] == size * inner:
                tracer.ann[node] = (sid, q - len(shape_out), inner * extra)
                return
    tracer.unsupported(node, [sid], "reshapes the channel dim")


def permute(tracer: Tracer, node) -> None:
    """transpose/permute: the channels move to their new dim."""
    x = node.args[0]
    sid, dim, inner = tracer.ann[x]
    rank = len(tensor_value(x).shape)
    pos = dim % rank
    if op_name(node.target) == "transpose":
        a, b = node.args[1] % rank, node.args[2] % rank
        new = b if pos == a else a if pos == b else pos
    else:
        new = [d % rank for d in node.args[1]].index(pos)
    tracer.ann[node] = (sid, new - rank, inner)


def pad(tracer: Tracer, node) -> None:
    """Padding other dims (spatial "same" padding) keeps the channels; padding the channel dim is unsupported.

    ``pad`` lists (before, after) widths from the last dim backwards, so the channel dim's pair is the
    ``-dim``-th one.
    """
    sid, dim, inner = tracer.ann[node.args[0]]
    widths = list(node.args[1])
    if any(w != 0 for w in widths[2 * (-dim - 1) : 2 * -dim]):
        return tracer.unsupported(node, [sid], "pads the channel dim")
    tracer.ann[node] = (sid, dim, inner)


def index_like(tracer: Tracer, node) -> None:
    """expand/slice/select away from the channel dim keep the channels."""
    op = op_name(node.target)
    x = node.args[0]
    sid, dim, inner = tracer.ann[x]
    shape_in, shape_out = tensor_value(x).shape, tensor_value(node).shape
    rank = len(shape_in)
    if op == "expand":
        ok = shape_out[dim] == shape_in[dim]
        new = dim
    else:
        along = argument(node, 1, "dim", 0) % rank
        ok = along != dim % rank
        new = dim + (op == "select" and along > dim % rank)
    if not ok:
        return tracer.unsupported(node, [sid], f"applies {op} to the channel dim")
    tracer.ann[node] = (sid, new, inner)


# ---- the table -------------------------------------------------------------------------------------
OPS: dict[str, Handler] = {
    **dict.fromkeys(LAYER_OPS, layer),  # every call: a layer makes a new space even from the model input
    **dict.fromkeys(EMBEDDING_OPS, embedding),  # from token indices: no traced input needed
    "getitem": getitem,
    "cat": reads_channels(cat),
    **dict.fromkeys(SPLITS, reads_channels(split)),
    **dict.fromkeys(BINARY, tensor_op(binary)),
    **dict.fromkeys(ELEMENTWISE, one_input(pass_through)),
    **dict.fromkeys(BATCH_NORMS, one_input(batch_norm)),
    **dict.fromkeys(("layer_norm", "rms_norm"), one_input(layer_norm)),
    "group_norm": one_input(group_norm),
    **dict.fromkeys(POOLS, one_input(pool)),
    **dict.fromkeys(PADS, one_input(pad)),
    **dict.fromkeys(REDUCTIONS, one_input(reduction)),
    **dict.fromkeys(RESHAPES, one_input(reshape)),
    **dict.fromkeys(("transpose", "permute"), one_input(permute)),
    **dict.fromkeys(("expand", "slice", "select"), one_input(index_like)),
}
unmapped: Handler = reads_channels(_unmapped_channels)  # every op without an entry


def handle(tracer: Tracer, node) -> None:
    """Update ``tracer`` for one call node through its op's entry in ``OPS`` (or ``unmapped``)."""
    OPS.get(op_name(node.target), unmapped)(tracer, node)
