"""Trace a model and find its coupled channel groups (the units a structured shrink removes together).

A *channel space* is born at the output of a Linear/Conv layer (its rows/filters are the
*producers*), flows unchanged through elementwise ops (ReLU, GELU, BatchNorm, dropout, …) and
depthwise convs, is merged with another space by a residual ``add``, is placed next to other spaces
by ``torch.cat`` (its members then carry an index ``offset``), is cut into equal pieces by ``chunk``
(unit u of every piece is one unit, as a GLU's value and gate need), and ends at the inputs of Linear/Conv
layers (the weight columns / input channels are the *consumers*). GroupNorm makes whole norm groups
the units. Attention modules (see ``workbench.patterns.attention_layout``: separate or fused q/k/v
Linear layers) form one *head* group each: q/k/v rows in blocks of ``head_dim``, out columns.

Every op we cannot map makes the spaces it touches unprunable, with a ``warnings.warn`` naming the
node, so a shrink never produces a silently wrong model.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> graph = trace_groups(model, torch.randn(2, 8))
    >>> [(g.size, g.prunable) for g in graph.groups]
    [(4, True), (2, False)]
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from ..attention import attention_layouts
from ..masks import is_masked, undo
from ..measure import as_inputs

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)

ELEMENTWISE = {
    "relu",
    "relu_",
    "gelu",
    "gelu_",
    "silu",
    "silu_",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "hardtanh",
    "hardtanh_",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "elu_",
    "dropout",
    "dropout_",
    "clone",
    "contiguous",
    "alias",
    "detach",
    "hardswish",
    "hardswish_",
    "hardsigmoid",
    "relu6",
    "mish",
    "softplus",
    "abs",
    "neg",
    "exp",
    "log",
    "sqrt",
    "_to_copy",
    "to",
    "feature_dropout",
    "alpha_dropout",
}
BINARY = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"}
POOLS = {
    "avg_pool1d",
    "avg_pool2d",
    "max_pool1d",
    "max_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "max_pool2d_with_indices",
    "_adaptive_avg_pool2d",
}
REDUCTIONS = {"mean", "sum", "amax", "amin"}
RESHAPES = {"view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze"}
BATCH_NORMS = {"batch_norm", "_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit"}
TUPLE_OPS = BATCH_NORMS | {"max_pool2d_with_indices"}  # their first output carries the channels
SPLITS = {"split", "split_with_sizes", "chunk"}  # pieces along a dim; along the channels, a concatenation in reverse


@dataclass
class Member:
    """One parameter slice of a group: unit ``u`` owns ``indices(u)`` along ``dim`` of ``param``.

    Along ``dim`` the index of (outer o, unit u, inner r) is ``offset + (o * size + u) * block + r``.
    """

    param: str  # state_dict name, e.g. "fc1.weight"
    dim: int
    role: str  # "producer" (its zeros make a unit dead), "consumer" (reads the units), "member" (sliced along)
    module: str  # owning module name
    block: int = 1
    outer: int = 1
    offset: int = 0  # where the group's slice starts along dim (a space placed after others by torch.cat)

    def indices(self, units: torch.Tensor, size: int) -> torch.Tensor:
        units = torch.as_tensor(units, dtype=torch.long).view(1, -1, 1)
        outer = torch.arange(self.outer).view(-1, 1, 1)
        inner = torch.arange(self.block).view(1, 1, -1)
        return ((outer * size + units) * self.block + inner).flatten() + self.offset

    def unit_slices(self, tensor: torch.Tensor, size: int) -> torch.Tensor:
        """(units, elements): every element of ``tensor`` this member assigns to each unit, as rows."""
        values = tensor.detach().index_select(self.dim, self.indices(torch.arange(size), size).to(tensor.device))
        return values.movedim(self.dim, 0).reshape(self.outer, size, self.block, -1).transpose(0, 1).reshape(size, -1)

    def end(self, size: int) -> int:
        """One past the last index this member touches along ``dim``."""
        return self.offset + self.outer * size * self.block


@dataclass
class ConsumerPoint:
    """Where a group's units are read: the input of ``module`` (a Linear/Conv), units along ``dim``."""

    module: str
    param: str  # the consumer weight
    dim: int  # negative dim of the module input holding the units
    block: int
    outer: int
    offset: int = 0

    def member(self, group: DependencyGroup) -> Member:
        """The consumer member of ``group`` this point reads through."""
        return next(
            m for m in group.members if m.role == "consumer" and m.param == self.param and m.offset == self.offset
        )


@dataclass
class DependencyGroup:
    """Coupled units that are removed together, with every parameter slice they touch."""

    id: int
    kind: str  # "channel" or "head"
    size: int
    members: list[Member] = field(default_factory=list)
    consumers: list[ConsumerPoint] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why not prunable (empty: prunable)
    attention: str | None = None  # the attention module of a head group

    @property
    def prunable(self) -> bool:
        return not self.reasons

    @property
    def producers(self) -> list[Member]:
        return [m for m in self.members if m.role == "producer"]

    def __str__(self) -> str:
        what = f"{self.kind} group {self.id}: {self.size} units" + (f" ({self.attention})" if self.attention else "")
        lines = [what + ("" if self.prunable else f" — NOT prunable: {'; '.join(self.reasons)}")]
        for m in self.members:
            extra = f", block {m.block}" if m.block > 1 else ""
            extra += f", ×{m.outer}" if m.outer > 1 else ""
            extra += f", from {m.offset}" if m.offset else ""
            lines.append(f"  {m.role:<8} {m.param}[dim {m.dim}{extra}]")
        return "\n".join(lines)


@dataclass
class DependencyGraph:
    """The groups of a traced model, the shapes it was traced with, timings and warnings."""

    groups: list[DependencyGroup]
    trace_seconds: float
    group_seconds: float
    warnings: list[str] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # state_dict name → shape

    def mismatch(self, model: nn.Module) -> str | None:
        """Why the graph does not describe ``model`` (a plain model), or None when it does."""
        shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
        if shapes == self.shapes:
            return None
        missing, extra = sorted(self.shapes.keys() - shapes.keys()), sorted(shapes.keys() - self.shapes.keys())
        if missing or extra:
            return f"the graph has tensors {missing[:3]} the model lacks and the model has {extra[:3]} the graph lacks"
        name = next(n for n in shapes if shapes[n] != self.shapes[n])
        return f"{name} is {tuple(shapes[name])} in the model but {tuple(self.shapes[name])} in the graph"

    def __str__(self) -> str:
        return "\n".join(str(g) for g in self.groups)


class _Space:
    def __init__(self, sid, kind, size, attention=None):
        self.id, self.kind, self.size, self.attention = sid, kind, size, attention
        self.members: list[Member] = []
        self.consumers: list[ConsumerPoint] = []
        self.reasons: list[str] = []
        self.parts: list[tuple[int, int, int]] | None = None  # concatenation: (space, channel offset, inner)
        self.units_per_group = 1  # GroupNorm: units that must go together


def _op_name(target) -> str:
    name = getattr(target, "__name__", str(target))  # "linear.default"
    return name.split(".")[0]


def _val(node):
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return value if isinstance(value, torch.Tensor) else None


def _holds_tensors(node) -> bool:
    value = node.meta.get("val")
    return isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value)


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _arg(node, index, name, default=None):
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


class _Tracer:
    def __init__(self, model: nn.Module):
        self.model = model
        self.modules = dict(model.named_modules())
        self.attentions = attention_layouts(model)
        self.projections = {  # q/k/v Linear module name → (attention module name, "q"|"k"|"v"|"qkv")
            (f"{name}.{child}" if name else child): (name, "qkv" if layout.qkv[0][0] == layout.qkv[1][0] else "qkv"[i])
            for name, layout in self.attentions.items()
            for i, (child, _) in enumerate(layout.qkv)
        }
        self.spaces: dict[int, _Space] = {}
        self.parent: dict[int, int] = {}
        self.ann: dict[torch.fx.Node, tuple[int, int, int]] = {}  # node → (space, negative dim, inner)
        self.internal: dict[torch.fx.Node, int] = {}  # node inside attention → head space (layout not tracked)
        self.pieces: dict[torch.fx.Node, list[tuple[int, int, int]]] = {}  # split/chunk node → each piece's annotation
        self.attention_rank: dict[str, int] = {}
        self.params: dict[torch.fx.Node, str] = {}
        self.head_spaces: dict[str, int] = {}
        self.messages: list[str] = []

    # union-find
    def find(self, sid):
        while self.parent[sid] != sid:
            self.parent[sid] = self.parent[self.parent[sid]]
            sid = self.parent[sid]
        return sid

    def new_space(self, kind, size, attention=None):
        sid = len(self.spaces)
        self.spaces[sid] = _Space(sid, kind, size, attention)
        self.parent[sid] = sid
        return sid

    def space(self, sid) -> _Space:
        return self.spaces[self.find(sid)]

    def merge(self, a, b, node):
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        sa, sb = self.spaces[a], self.spaces[b]
        if sa.size != sb.size or sa.kind != sb.kind:
            self.unsupported(node, [a, b], f"merges spaces of sizes {sa.size} and {sb.size}")
        if sa.parts is not None and sb.parts is not None:
            self.unsupported(node, [a, b], "combines two concatenations")
            return a
        if sb.parts is not None:  # a concatenation stays the root: its members go to its parts
            a, b, sa, sb = b, a, sb, sa
        if sa.parts is not None and sb.units_per_group > 1:
            self.unsupported(node, [a, b], "combines GroupNorm'd channels with concatenated channels")
            return a
        self.parent[b] = a
        sa.members += sb.members
        sa.consumers += sb.consumers
        sa.reasons += sb.reasons
        sa.units_per_group = math.lcm(sa.units_per_group, sb.units_per_group)
        return a

    def block(self, sid, reason):
        space = self.space(sid)
        if reason not in space.reasons:
            space.reasons.append(reason)

    def unsupported(self, node, sids, why="is not supported by structured shrinking"):
        message = (
            f"node {node.name!r} ({node.target}{self._where(node)}) {why}; the channels it touches are left unpruned"
        )
        if message not in self.messages:
            self.messages.append(message)
            warnings.warn(message, stacklevel=4)
        for sid in sids:
            self.block(sid, f"unsupported op at node {node.name!r} ({node.target}{self._where(node)})")

    @staticmethod
    def _where(node):
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            name = list(stack.values())[-1][0]
            return f" in module {name!r}" if name else ""
        return ""

    def stack_modules(self, node):
        return [path for path, _ in (node.meta.get("nn_module_stack") or {}).values()]

    def add_member(self, sid, param, dim, role, module, block=1, outer=1, offset=0):
        space = self.space(sid)
        member = Member(param, dim, role, module, block, outer, offset)
        if member not in space.members:
            space.members.append(member)

    def add_consumer(self, sid, module_name, wname, dim, inner, outer):
        self.add_member(sid, wname, 1, "consumer", module_name, inner, outer)
        point = ConsumerPoint(module_name, wname, dim, inner, outer)
        if point not in self.space(sid).consumers:
            self.space(sid).consumers.append(point)

    def sids(self, nodes):
        return [self.ann[n][0] if n in self.ann else self.internal[n] for n in nodes]

    # ---- ops -------------------------------------------------------------------------------------
    def run(self, ep):
        sig = ep.graph_signature
        names = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
        self.weight_uses: dict[str, int] = {}
        for node in ep.graph.nodes:
            if node.op == "call_function" and _op_name(node.target) in ("linear", "conv1d", "conv2d"):
                pname = names.get(getattr(node.args[1], "name", None))
                if pname:
                    self.weight_uses[pname] = self.weight_uses.get(pname, 0) + 1
        for node in ep.graph.nodes:
            if node.op == "placeholder":
                if node.name in names:
                    self.params[node] = names[node.name]
            elif node.op == "call_function":
                self.call(node)
            elif node.op == "output":
                for arg in self._flat(node.args):
                    if arg in self.ann or arg in self.internal:
                        self.block(self.sids([arg])[0], "reaches the model output")

    @staticmethod
    def _flat(args):
        out = []

        def visit(a):
            if isinstance(a, torch.fx.Node):
                out.append(a)
            elif isinstance(a, (list, tuple)):
                for b in a:
                    visit(b)
            elif isinstance(a, dict):
                for b in a.values():
                    visit(b)

        visit(args)
        return out

    def call(self, node):
        op = _op_name(node.target)
        if op in ("linear", "conv1d", "conv2d"):
            return self.layer(node, op)
        if op == "getitem" and node.args[0] in self.pieces:
            self.ann[node] = self.pieces[node.args[0]][node.args[1]]
            return
        inputs = self._flat((node.args, node.kwargs))
        spaced = [n for n in inputs if n in self.ann or n in self.internal]
        if not spaced:
            return
        if self.heads(node, op, spaced):
            return
        if op in SPLITS and len(spaced) == 1 and node.args[0] in self.ann:
            return self.split(node)
        out = _val(node)
        x = node.args[0] if node.args else None
        if op == "cat":
            return self.cat(node)
        if op == "getitem":
            if node.args[1] == 0 and x in self.ann and _op_name(x.target) in TUPLE_OPS:
                self.ann[node] = self.ann[x]
            else:
                self.unsupported(node, self.sids(spaced))
            return
        if out is None and op not in TUPLE_OPS:
            if _holds_tensors(node):
                self.unsupported(node, self.sids(spaced), "splits the channels into several tensors")
            return  # shape queries and the like produce no tensor
        if any(n in self.internal for n in spaced):
            return self.unsupported(node, self.sids(spaced), "reads attention internals outside the attention module")
        one = len(spaced) == 1 and x in self.ann
        if op in ELEMENTWISE and one:
            self.ann[node] = self.ann[x]
            return
        if op in BINARY:
            return self.binary(node, spaced)
        if op in BATCH_NORMS and one:
            return self.batch_norm(node)
        if op in ("layer_norm", "rms_norm") and one:
            return self.layer_norm(node, op)
        if op == "group_norm" and one:
            return self.group_norm(node)
        if op in POOLS and one:
            sid, dim, inner = self.ann[x]
            rank = len(_val(x).shape)
            if (dim != 1 - rank and not (rank == 3 and dim == -3)) or inner != 1:
                return self.unsupported(node, [sid], "pools over the channel dim")
            self.ann[node] = (sid, dim - rank + len(out.shape), 1) if out is not None else (sid, dim, 1)
            return
        if op in REDUCTIONS and one:
            return self.reduction(node)
        if op in RESHAPES and one:
            return self.reshape(node)
        if op in ("transpose", "permute") and one:
            return self.permute(node, op)
        if op in ("expand", "slice", "select") and one:
            return self.index_like(node, op)
        self.unsupported(node, self.sids(spaced))

    # ---- attention -------------------------------------------------------------------------------
    def inside_attention(self, node):
        for path in reversed(self.stack_modules(node)):
            if path in self.attentions:
                return path
        return None

    def heads(self, node, op, spaced) -> bool:
        """Ops inside an attention module on its head tensors: the head layout is trusted, not traced."""
        attention = self.inside_attention(node)
        head = self.head_spaces.get(attention)
        heads = [n for n in spaced if head is not None and self.find(self.sids([n])[0]) == self.find(head)]
        if attention is None or not heads:
            return False
        if len(heads) != len(spaced):
            self.unsupported(
                node, self.sids(spaced), f"mixes other channels with the heads of attention module {attention!r}"
            )
            return True
        out = _val(node)
        layout = self.attentions[attention]
        if out is not None and out.dim() == self.attention_rank[attention] and out.shape[-1] == layout.width:
            self.ann[node] = (head, -1, layout.head_dim)  # heads laid out again as (…, heads × head_dim)
        elif out is not None or _holds_tensors(node):
            self.internal[node] = head
        return True

    def projection(self, node, attention, part, wname, bname, module_name):
        layout = self.attentions[attention]
        if attention not in self.head_spaces:
            self.head_spaces[attention] = self.new_space("head", layout.num_heads, attention)
        sid = self.head_spaces[attention]
        self.attention_rank[attention] = _val(node).dim()
        hd = layout.head_dim
        if part == "qkv":  # fused: q and k rows at offsets 0 and width (outer 2), v rows at 2·width
            for name in filter(None, (wname, bname)):
                self.add_member(sid, name, 0, "member", module_name, hd, 2)
                self.add_member(
                    sid, name, 0, "producer" if name == wname else "member", module_name, hd, 1, 2 * layout.width
                )
            self.internal[node] = sid
            return
        self.add_member(sid, wname, 0, "producer" if part == "v" else "member", module_name, hd)
        if bname:
            self.add_member(sid, bname, 0, "member", module_name, hd)
        self.ann[node] = (sid, -1, hd)

    # ---- layers ----------------------------------------------------------------------------------
    def layer(self, node, op):
        x, w = node.args[0], node.args[1]
        b = _arg(node, 2, "bias")
        wname = self.params.get(w) if isinstance(w, torch.fx.Node) else None
        in_space = self.ann.get(x)
        in_sids = [in_space[0]] if in_space else [self.internal[x]] if x in self.internal else []
        out = _val(node)
        module_name = wname.rpartition(".")[0] if wname else None
        module = self.modules.get(module_name)
        out_dim = -1 if op == "linear" else 1 - len(out.shape)
        if wname is None or not isinstance(module, LAYERS) or self.weight_uses.get(wname, 0) != 1:
            why = (
                "uses a weight that is not a Linear/Conv module parameter"
                if wname is None or not isinstance(module, LAYERS)
                else f"calls module {module_name!r} more than once"
            )
            self.unsupported(node, in_sids, why)
            return
        if x in self.internal:
            return self.unsupported(node, in_sids, f"applies {module_name!r} to attention internals")
        bname = self.params.get(b) if isinstance(b, torch.fx.Node) else None
        in_rank = len(_val(x).shape)
        feature_dim = -1 if op == "linear" else 1 - in_rank  # channels: dim 1
        if op.startswith("conv") and module.groups != 1:
            return self.grouped_conv(node, module, module_name, wname, bname, in_space, feature_dim, out_dim)
        if in_space is not None:
            sid, dim, inner = in_space
            if dim != feature_dim:
                self.unsupported(node, [sid], f"applies {module_name!r} over a dim that is not the channel dim")
            else:
                size = self.space(sid).size
                features = module.weight.shape[1]
                if features % (size * inner):
                    self.unsupported(node, [sid], f"reads {features} features that do not split into {size} channels")
                else:
                    self.add_consumer(sid, module_name, wname, dim, inner, features // (size * inner))
        if module_name in self.projections:
            attention, part = self.projections[module_name]
            return self.projection(node, attention, part, wname, bname, module_name)
        sid = self.new_space("channel", module.weight.shape[0])
        self.add_member(sid, wname, 0, "producer", module_name)
        if bname:
            self.add_member(sid, bname, 0, "member", module_name)
        self.ann[node] = (sid, out_dim, 1)

    def grouped_conv(self, node, module, module_name, wname, bname, in_space, feature_dim, out_dim):
        """Depthwise convs pass their input channels through (``multiplier`` outputs each); other groups are unsupported."""
        depthwise = module.groups == module.in_channels
        if depthwise and (in_space is None or in_space[1] == feature_dim):
            multiplier = module.out_channels // module.in_channels
            if in_space is None:  # the model input: fixed channels, nothing produces them
                in_space = (self.new_space("channel", module.in_channels), feature_dim, 1)
                self.block(in_space[0], f"{module_name!r} filters channels that no layer produces")
            sid, _, inner = in_space
            if self.space(sid).size * inner == module.in_channels:
                for name in filter(None, (wname, bname)):
                    self.add_member(sid, name, 0, "member", module_name, inner * multiplier)
                self.ann[node] = (sid, out_dim, inner * multiplier)
                return
        why = f"is a grouped conv (groups={module.groups}): its channels cannot be removed one by one"
        self.unsupported(node, [in_space[0]] if in_space else [], why)
        sid = self.new_space("channel", module.out_channels)
        self.block(sid, f"output of grouped conv {module_name!r}")
        self.ann[node] = (sid, out_dim, 1)

    # ---- channel ops -----------------------------------------------------------------------------
    def binary(self, node, spaced):
        anns = {self.ann[n][1:] for n in spaced}
        if len(anns) != 1:
            return self.unsupported(node, [self.ann[n][0] for n in spaced], "combines channels laid out differently")
        dim, inner = anns.pop()
        sid = self.ann[spaced[0]][0]
        for n in spaced[1:]:
            sid = self.merge(sid, self.ann[n][0], node)
        for arg in node.args[:2]:
            if not isinstance(arg, torch.fx.Node) or arg in spaced:
                continue
            value = _val(arg)
            if value is None or value.dim() < -dim or value.shape[dim] == 1:
                continue  # scalar or broadcast along the channels
            if arg in self.params and inner == 1:
                pname = self.params[arg]
                self.add_member(sid, pname, value.dim() + dim, "member", pname.rpartition(".")[0])
            elif arg in self.params:
                return self.unsupported(
                    node, [sid], f"combines the channels with tensor {arg.name!r} that cannot be sliced"
                )
            else:  # channels from the model input or an untracked computation: they stay
                self.block(
                    sid,
                    f"combined at node {node.name!r}{self._where(node)} with {arg.name!r}, whose channels are fixed",
                )
        self.ann[node] = (sid, dim, inner)

    def cat(self, node):
        tensors = list(node.args[0])
        out = _val(node)
        rank = out.dim()
        dim = _arg(node, 1, "dim", 0) % rank - rank
        anns = [self.ann.get(t) for t in tensors]
        spaced = [a for a in anns if a is not None]
        sids = [a[0] for a in spaced] + [self.internal[t] for t in tensors if t in self.internal]
        if len(sids) > len(spaced):
            return self.unsupported(node, sids, "concatenates attention internals")
        if all(a[1] != dim for a in spaced):  # along another dim (tokens, batch): the channels pass through
            layouts = {(self.find(a[0]), a[1], a[2]) for a in spaced}
            if len(layouts) == 1 and all(a is not None or self.same_param(t, spaced[0]) for t, a in zip(tensors, anns)):
                self.ann[node] = spaced[0]
                return
            return self.unsupported(node, sids, "concatenates channels laid out differently")
        parts, offset = [], 0
        for tensor, a in zip(tensors, anns):
            width = _val(tensor).shape[dim]
            if a is not None:
                sid, adim, inner = a
                if adim != dim or self.space(sid).size * inner != width:
                    return self.unsupported(node, sids, "concatenates channels laid out differently")
                parts.append((sid, offset, inner))
            offset += width
        composite = self.new_space("channel", out.shape[dim])
        self.spaces[composite].parts = parts
        self.ann[node] = (composite, dim, 1)

    def split(self, node):
        """split/chunk. Along the channels only ``chunk`` into equal pieces follows a shrink (the sizes of
        ``split`` are fixed in the model's code): the source becomes the pieces side by side, and unit u of
        every piece is one unit, so the pieces stay equal (as a GLU's ``a * gate`` needs anyway)."""
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        rank = _val(x).dim()
        along = _arg(node, 2, "dim", 0) % rank - rank
        widths = [v.shape[along] for v in node.meta["val"]]
        if along != dim:  # along tokens or batch: every piece keeps the channels
            self.pieces[node] = [(sid, dim, inner)] * len(widths)
            return
        root = self.space(sid)
        if _op_name(node.target) != "chunk" or len(set(widths)) != 1 or sum(widths) != root.size:
            return self.unsupported(
                node,
                [sid],
                "splits the channels at sizes fixed in the model's code (only chunk into equal pieces can shrink)",
            )
        if inner != 1 or root.parts is not None or root.units_per_group > 1:
            return self.unsupported(node, [sid], "splits channels that are concatenated, grouped or flattened")
        piece = self.new_space(root.kind, widths[0])
        root.parts = [(piece, index * widths[0], 1) for index in range(len(widths))]
        self.pieces[node] = [(piece, dim, 1)] * len(widths)

    def same_param(self, tensor, ann):
        """Whether ``tensor`` is a parameter (maybe expanded) whose channels can be sliced with ``ann``'s space."""
        while _op_name(getattr(tensor, "target", "")) in ("expand", "alias", "clone") and tensor not in self.params:
            tensor = tensor.args[0]
        if tensor not in self.params or ann[2] != 1:
            return False
        value = _val(tensor)
        sid, dim = ann[0], ann[1]
        if value.dim() < -dim or value.shape[dim] != self.space(sid).size:
            return False
        self.add_member(sid, self.params[tensor], value.dim() + dim, "member", self.params[tensor].rpartition(".")[0])
        return True

    def batch_norm(self, node):
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        shape = _val(x).shape
        size = self.space(sid).size
        if dim != 1 - len(shape) or shape[1] % (size * inner):
            return self.unsupported(node, [sid], "normalizes a dim other than the channel dim")
        for arg in node.args[1:5]:
            if isinstance(arg, torch.fx.Node) and arg in self.params:
                self.add_member(
                    sid,
                    self.params[arg],
                    0,
                    "member",
                    self.params[arg].rpartition(".")[0],
                    inner,
                    shape[1] // (size * inner),
                )
        self.ann[node] = (sid, dim, inner)

    def layer_norm(self, node, op):
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        shape = list(node.args[1])
        if dim >= -len(shape):
            for arg in node.args[2:4]:
                if isinstance(arg, torch.fx.Node) and arg in self.params:
                    pname = self.params[arg]
                    self.add_member(sid, pname, len(shape) + dim, "member", pname.rpartition(".")[0], inner)
            self.block(
                sid,
                f"normalized by {op} at node {node.name!r}{self._where(node)}: removing channels would change its mean and variance",
            )
        self.ann[node] = (sid, dim, inner)

    def group_norm(self, node):
        """GroupNorm: removing a whole norm group is exact, so the units become whole norm groups."""
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        space = self.space(sid)
        channels, num_groups = _val(x).shape[1], node.args[1]
        weight, bias = _arg(node, 2, "weight"), _arg(node, 3, "bias")
        per_group = channels // num_groups
        if dim != 1 - _val(x).dim() or space.parts is not None or channels != space.size * inner or per_group % inner:
            return self.unsupported(node, [sid], "normalizes groups that do not line up with whole channels")
        if weight not in self.params or bias not in self.params:
            return self.unsupported(
                node, [sid], "is a GroupNorm without affine parameters (its group count could not be updated)"
            )
        for arg in (weight, bias):
            self.add_member(sid, self.params[arg], 0, "member", self.params[arg].rpartition(".")[0], inner)
        space.units_per_group = math.lcm(space.units_per_group, per_group // inner)
        self.ann[node] = (sid, dim, inner)

    def reduction(self, node):
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        rank = len(_val(x).shape)
        dims = _arg(node, 1, "dim")
        keepdim = _arg(node, 2, "keepdim", False)
        if dims is None or dims == []:
            return self.unsupported(node, [sid], "reduces over the channel dim")
        dims = [d % rank for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
        pos = dim % rank
        if pos in dims:
            return self.unsupported(node, [sid], "reduces over the channel dim")
        new_pos = pos if keepdim else pos - sum(d < pos for d in dims)
        new_rank = rank if keepdim else rank - len(dims)
        self.ann[node] = (sid, new_pos - new_rank, inner)

    def reshape(self, node):
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        shape_in, shape_out = list(_val(x).shape), list(_val(node).shape)
        p = dim % len(shape_in)
        size = self.space(sid).size
        before = _prod(shape_in[:p])
        channel_block = shape_in[p]  # = outer * size * inner along this dim
        for q in range(len(shape_out)):
            if _prod(shape_out[:q]) == before and shape_out[q] % channel_block == 0:
                extra = shape_out[q] // channel_block
                if _prod(shape_in[p + 1 :]) == extra * _prod(shape_out[q + 1 :]) and shape_in[p] == size * inner:
                    self.ann[node] = (sid, q - len(shape_out), inner * extra)
                    return
        self.unsupported(node, [sid], "reshapes the channel dim")

    def permute(self, node, op):
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        rank = len(_val(x).shape)
        pos = dim % rank
        if op == "transpose":
            a, b = node.args[1] % rank, node.args[2] % rank
            new = b if pos == a else a if pos == b else pos
        else:
            new = [d % rank for d in node.args[1]].index(pos)
        self.ann[node] = (sid, new - rank, inner)

    def index_like(self, node, op):
        """expand/slice/select away from the channel dim keep the channels."""
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        shape_in, shape_out = _val(x).shape, _val(node).shape
        rank = len(shape_in)
        if op == "expand":
            ok = shape_out[dim] == shape_in[dim]
            new = dim
        else:
            along = _arg(node, 1, "dim", 0) % rank
            ok = along != dim % rank
            new = dim + (op == "select" and along > dim % rank)
        if not ok:
            return self.unsupported(node, [sid], f"applies {op} to the channel dim")
        self.ann[node] = (sid, new, inner)

    # ---- groups ----------------------------------------------------------------------------------
    def distribute(self, composite):
        """Move a concatenation's members, consumers and reasons to its parts, at their offsets."""
        members, consumers, reasons = composite.members, composite.consumers, composite.reasons
        composite.members, composite.consumers, composite.reasons = [], [], []
        for part, offset, inner in composite.parts:
            for m in members:
                if m.outer != 1:
                    self.block(part, f"{m.param} reads concatenated channels more than once")
                self.add_member(
                    part, m.param, m.dim, m.role, m.module, m.block * inner, m.outer, m.offset + offset * m.block
                )
            for c in consumers:
                point = ConsumerPoint(c.module, c.param, c.dim, c.block * inner, c.outer, c.offset + offset * c.block)
                self.space(part).consumers.append(point)
            for reason in reasons:
                self.block(part, reason)

    def finish(self):
        """Hand the members of concatenated tensors to their parts, then make GroupNorm groups the units."""
        composites = sorted((s for s in self.spaces if self.spaces[s].parts is not None), reverse=True)
        for _ in range(len(composites) + 1):  # a part may itself be (merged into) a concatenation
            pending = [
                s for s in composites if self.spaces[s].members or self.spaces[s].consumers or self.spaces[s].reasons
            ]
            for sid in pending:
                self.distribute(self.spaces[sid])
        roots = sorted({self.find(s) for s in self.spaces} - set(composites))
        if any(self.spaces[s].members or self.spaces[s].consumers for s in composites):  # concatenations in a cycle
            for sid in roots:
                self.block(sid, "concatenations feed each other in a cycle")
        for sid in roots:
            space, k = self.spaces[sid], self.spaces[sid].units_per_group
            if k == 1:
                continue
            if space.size % k:
                self.block(sid, f"GroupNorm groups of {k} channels do not divide {space.size} channels")
                continue
            space.size //= k
            for m in space.members:
                m.block *= k
            for c in space.consumers:
                c.block *= k
        return roots


def export_model(model: nn.Module, example_inputs):
    """``torch.export.export`` with a ValueError naming the model when it cannot be traced."""
    try:
        return torch.export.export(model, as_inputs(example_inputs))
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"cannot trace {type(model).__name__} with torch.export (needed to find coupled channels): {first}"
        ) from error


def _check_members(group: DependencyGroup, state: dict[str, torch.Tensor], claimed: dict) -> None:
    for m in group.members:
        tensor = state.get(m.param)
        if tensor is None or m.dim >= tensor.dim() or m.end(group.size) > tensor.shape[m.dim]:
            group.reasons.append(f"{m.param} does not split into {group.size} units along dim {m.dim}")
            continue
        seen = claimed.setdefault((m.param, m.dim), torch.full((tensor.shape[m.dim],), -1))
        index = m.indices(torch.arange(group.size), group.size)
        others = seen[index][(seen[index] >= 0) & (seen[index] != group.id)]
        if len(others):
            group.reasons.append(f"{m.param} dim {m.dim} is shared with group {int(others[0])}")
        seen[index] = group.id


def trace_groups(model: nn.Module, example_inputs) -> DependencyGraph:
    """The coupled channel groups of ``model`` (masks, if any, are ignored), traced on ``example_inputs``."""
    if is_masked(model):
        model = copy.deepcopy(model)
        undo(model)
    start = time.perf_counter()
    ep = export_model(model, example_inputs)
    traced = time.perf_counter()
    tracer = _Tracer(model)
    tracer.run(ep)
    roots = tracer.finish()
    state = dict(model.state_dict(keep_vars=True))
    groups, claimed = [], {}
    for index, root in enumerate(roots):
        space = tracer.spaces[root]
        group = DependencyGroup(
            index, space.kind, space.size, space.members, space.consumers, list(space.reasons), space.attention
        )
        if not group.producers and group.kind == "channel":
            group.reasons.append("no producing layer")
        groups.append(group)
    for group in groups:
        _check_members(group, state, claimed)
    shapes = {name: tuple(t.shape) for name, t in state.items()}
    return DependencyGraph(groups, traced - start, time.perf_counter() - traced, tracer.messages, shapes)
