"""Trace a model and find its coupled channel groups (the units a structured shrink removes together).

A *channel space* is born at the output of a Linear/Conv layer (its rows/filters are the
*producers*), flows unchanged through elementwise ops (ReLU, GELU, BatchNorm, dropout, …), is merged
with another space by a residual ``add``, and ends at the inputs of Linear/Conv layers (the weight
columns / input channels are the *consumers*). Attention modules (``num_heads``, ``head_dim``, q/k/v/out
Linear children) form one *head* group each: rows of q/k/v in blocks of ``head_dim``, columns of out.

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

import time
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from ..patterns import attention_modules

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)

ELEMENTWISE = {
    "relu", "relu_", "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardtanh", "hardtanh_",
    "leaky_relu", "leaky_relu_", "elu", "elu_", "dropout", "dropout_", "clone", "contiguous", "alias", "detach",
    "hardswish", "hardswish_", "hardsigmoid", "relu6", "mish", "softplus", "abs", "neg", "exp", "log", "sqrt",
    "_to_copy", "to", "feature_dropout", "alpha_dropout",
}
BINARY = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"}
POOLS = {"avg_pool1d", "avg_pool2d", "max_pool1d", "max_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
         "adaptive_max_pool2d", "max_pool2d_with_indices", "_adaptive_avg_pool2d"}
REDUCTIONS = {"mean", "sum", "amax", "amin"}
RESHAPES = {"view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze"}


@dataclass
class Member:
    """One parameter slice of a group: unit ``u`` owns ``indices(u)`` along ``dim`` of ``param``.

    Along ``dim`` the index of (outer o, unit u, inner r) is ``(o * size + u) * block + r``.
    """

    param: str  # state_dict name, e.g. "fc1.weight"
    dim: int
    role: str  # "producer" (its zeros make a unit dead), "consumer" (reads the units), "member" (sliced along)
    module: str  # owning module name
    block: int = 1
    outer: int = 1

    def indices(self, units: torch.Tensor, size: int) -> torch.Tensor:
        units = torch.as_tensor(units, dtype=torch.long).view(1, -1, 1)
        outer = torch.arange(self.outer).view(-1, 1, 1)
        inner = torch.arange(self.block).view(1, 1, -1)
        return ((outer * size + units) * self.block + inner).flatten()


@dataclass
class ConsumerPoint:
    """Where a group's units are read: the input of ``module`` (a Linear/Conv), units along ``dim``."""

    module: str
    param: str  # the consumer weight
    dim: int  # negative dim of the module input holding the units
    block: int
    outer: int


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
            lines.append(f"  {m.role:<8} {m.param}[dim {m.dim}{extra}]")
        return "\n".join(lines)


@dataclass
class DependencyGraph:
    groups: list[DependencyGroup]
    trace_seconds: float
    group_seconds: float
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(g) for g in self.groups)


class _Space:
    def __init__(self, sid, kind, size, attention=None):
        self.id, self.kind, self.size, self.attention = sid, kind, size, attention
        self.members: list[Member] = []
        self.consumers: list[ConsumerPoint] = []
        self.reasons: list[str] = []


def _op_name(target) -> str:
    name = getattr(target, "__name__", str(target))  # "linear.default"
    return name.split(".")[0]


def _val(node):
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return value if isinstance(value, torch.Tensor) else None


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


class _Tracer:
    def __init__(self, model: nn.Module):
        self.model = model
        self.modules = dict(model.named_modules())
        self.attentions = attention_modules(model)
        self.spaces: dict[int, _Space] = {}
        self.parent: dict[int, int] = {}
        self.ann: dict[torch.fx.Node, tuple[int, int, int]] = {}  # node → (space, negative dim, inner)
        self.params: dict[torch.fx.Node, str] = {}
        self.head_spaces: dict[str, int] = {}
        self.messages: list[str] = []
        self.producer_modules: set[str] = set()

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
        self.parent[b] = a
        sa.members += sb.members
        sa.consumers += sb.consumers
        sa.reasons += sb.reasons
        return a

    def block(self, sid, reason):
        space = self.space(sid)
        if reason not in space.reasons:
            space.reasons.append(reason)

    def unsupported(self, node, sids, why="is not supported by structured shrinking"):
        message = f"node {node.name!r} ({node.target}{self._where(node)}) {why}; the channels it touches are left unpruned"
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

    def add_member(self, sid, param, dim, role, module, block=1, outer=1):
        space = self.space(sid)
        member = Member(param, dim, role, module, block, outer)
        if member not in space.members:
            space.members.append(member)

    # ---- ops -------------------------------------------------------------------------------------
    def run(self, ep):
        sig = ep.graph_signature
        names = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
        weight_uses: dict[str, int] = {}
        for node in ep.graph.nodes:
            if node.op == "call_function" and _op_name(node.target) in ("linear", "conv1d", "conv2d"):
                w = node.args[1]
                if w in () or not isinstance(w, torch.fx.Node):
                    continue
                pname = names.get(w.name)
                if pname:
                    weight_uses[pname] = weight_uses.get(pname, 0) + 1
        self.weight_uses = weight_uses
        for node in ep.graph.nodes:
            if node.op == "placeholder":
                if node.name in names:
                    self.params[node] = names[node.name]
            elif node.op == "call_function":
                self.call(node)
            elif node.op == "output":
                for arg in torch.fx.node.map_arg(node.args, lambda n: n) and self._flat(node.args):
                    if arg in self.ann:
                        self.block(self.ann[arg][0], "reaches the model output")

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
        inputs = self._flat((node.args, node.kwargs))
        spaced = [n for n in inputs if n in self.ann]
        out = _val(node)
        if op in ("linear", "conv1d", "conv2d"):
            return self.layer(node, op)
        attention = self.inside_attention(node)
        if attention is not None and op != "sym_size":
            head = self.head_spaces.get(attention)
            others = [n for n in spaced if head is None or self.find(self.ann[n][0]) != self.find(head)]
            if others:
                self.unsupported(node, [self.ann[n][0] for n in others], f"mixes the channels of its input inside attention module {attention!r}")
            if head is not None and any(self.find(self.ann[n][0]) == self.find(head) for n in spaced) and out is not None:
                self.ann[node] = (head, -1, 1)  # trust num_heads/head_dim: the head layout is restored before `out`
            return
        if not spaced:
            return
        if out is None and op not in ("getitem", "_native_batch_norm_legit_no_training", "native_batch_norm",
                                      "_native_batch_norm_legit", "max_pool2d_with_indices"):
            return  # shape queries and the like produce no tensor
        x = node.args[0] if node.args else None
        if op == "getitem":
            if node.args[1] == 0 and x in self.ann:
                self.ann[node] = self.ann[x]
            elif x in self.ann:
                self.unsupported(node, [self.ann[x][0]])
            return
        if op in ELEMENTWISE and x in self.ann and len(spaced) == 1:
            self.ann[node] = self.ann[x]
            return
        if op in BINARY:
            return self.binary(node, spaced)
        if op in ("batch_norm", "_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit",
                  "instance_norm") and x in self.ann and len(spaced) == 1:
            sid, dim, inner = self.ann[x]
            rank = len(_val(x).shape)
            if dim != 1 - rank or inner != 1:
                return self.unsupported(node, [sid], "normalizes a dim other than the channel dim")
            if op == "instance_norm":
                return self.unsupported(node, [sid])
            for arg in node.args[1:5]:
                if isinstance(arg, torch.fx.Node) and arg in self.params:
                    self.add_member(sid, self.params[arg], 0, "member", self.params[arg].rpartition(".")[0])
            self.ann[node] = (sid, dim, inner)
            return
        if op in ("layer_norm", "group_norm", "rms_norm") and x in self.ann and len(spaced) == 1:
            sid, dim, inner = self.ann[x]
            if op == "group_norm":
                return self.unsupported(node, [sid])
            shape = list(node.args[1])
            if dim >= -len(shape):
                for arg in node.args[2:4]:
                    if isinstance(arg, torch.fx.Node) and arg in self.params:
                        pname = self.params[arg]
                        self.add_member(sid, pname, len(shape) + dim, "member", pname.rpartition(".")[0], inner)
                self.block(sid, f"normalized by {op} at node {node.name!r}{self._where(node)}: removing channels would change its mean and variance")
            self.ann[node] = (sid, dim, inner)
            return
        if op in POOLS and x in self.ann and len(spaced) == 1:
            sid, dim, inner = self.ann[x]
            rank = len(_val(x).shape)
            if dim != 1 - rank and not (rank == 3 and dim == -3) or inner != 1:
                return self.unsupported(node, [sid], "pools over the channel dim")
            self.ann[node] = (sid, dim - rank + len(out.shape) if out is not None else dim, 1) if out is not None else (sid, dim, 1)
            return
        if op in REDUCTIONS and x in self.ann and len(spaced) == 1:
            return self.reduction(node)
        if op in RESHAPES and x in self.ann and len(spaced) == 1:
            return self.reshape(node)
        if op in ("transpose", "permute") and x in self.ann and len(spaced) == 1:
            return self.permute(node, op)
        self.unsupported(node, [self.ann[n][0] for n in spaced])

    def inside_attention(self, node):
        for path in reversed(self.stack_modules(node)):
            if path in self.attentions:
                return path
        return None

    def layer(self, node, op):
        x, w = node.args[0], node.args[1]
        b = node.args[2] if len(node.args) > 2 else node.kwargs.get("bias")
        wname = self.params.get(w) if isinstance(w, torch.fx.Node) else None
        in_space = self.ann.get(x)
        out = _val(node)
        module_name = wname.rpartition(".")[0] if wname else None
        module = self.modules.get(module_name)
        if wname is None or not isinstance(module, LAYERS) or self.weight_uses.get(wname, 0) != 1:
            why = "uses a weight that is not a Linear/Conv module parameter" if wname is None or not isinstance(module, LAYERS) \
                else f"calls module {module_name!r} more than once"
            self.unsupported(node, [in_space[0]] if in_space else [], why)
            return
        if op.startswith("conv") and module.groups != 1:
            self.unsupported(node, [in_space[0]] if in_space else [], f"is a grouped/depthwise conv (groups={module.groups})")
            return
        bname = self.params.get(b) if isinstance(b, torch.fx.Node) else None
        parent, _, leaf = module_name.rpartition(".")
        attention = parent if parent in self.attentions and leaf in ("q", "k", "v", "out") else None
        in_rank = len(_val(x).shape)
        feature_dim = -1 if op == "linear" else 1 - in_rank  # channels: dim 1
        # inputs
        if in_space is not None:
            sid, dim, inner = in_space
            head = self.head_spaces.get(attention) if attention else None
            if leaf == "out" and attention and head is not None and self.find(sid) == self.find(head):
                block = self.attentions[attention].head_dim
                self.add_member(sid, wname, 1, "consumer", module_name, block)
                self.space(sid).consumers.append(ConsumerPoint(module_name, wname, -1, block, 1))
            elif dim != feature_dim:
                self.unsupported(node, [sid], f"applies {module_name!r} over a dim that is not the channel dim")
            else:
                size = self.space(sid).size
                features = module.weight.shape[1]
                if features % (size * inner):
                    self.unsupported(node, [sid], f"reads {features} features that do not split into {size} channels")
                else:
                    outer = features // (size * inner)
                    self.add_member(sid, wname, 1, "consumer", module_name, inner, outer)
                    self.space(sid).consumers.append(ConsumerPoint(module_name, wname, dim, inner, outer))
        # output
        if attention and leaf in ("q", "k", "v"):
            attn = self.attentions[attention]
            if attention not in self.head_spaces:
                self.head_spaces[attention] = self.new_space("head", attn.num_heads, attention)
            sid = self.head_spaces[attention]
            role = "producer" if leaf == "v" else "member"
            self.add_member(sid, wname, 0, role, module_name, attn.head_dim)
            if bname:
                self.add_member(sid, bname, 0, "member", module_name, attn.head_dim)
            self.ann[node] = (sid, -1, 1)
            return
        sid = self.new_space("channel", module.weight.shape[0])
        self.add_member(sid, wname, 0, "producer", module_name)
        if bname:
            self.add_member(sid, bname, 0, "member", module_name)
        self.ann[node] = (sid, -1 if op == "linear" else 1 - len(out.shape), 1)

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
            else:
                return self.unsupported(node, [sid], f"combines the channels with tensor {arg.name!r} that cannot be sliced")
        self.ann[node] = (sid, dim, inner)

    def reduction(self, node):
        x = node.args[0]
        sid, dim, inner = self.ann[x]
        rank = len(_val(x).shape)
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keepdim = (node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False))
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
                if _prod(shape_in[p + 1:]) == extra * _prod(shape_out[q + 1:]) and shape_in[p] % (size * inner) == 0 \
                        and shape_in[p] // (size * inner) == 1:
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


def as_inputs(example_inputs) -> tuple:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def export_model(model: nn.Module, example_inputs):
    """``torch.export.export`` with a ValueError naming the model when it cannot be traced."""
    try:
        return torch.export.export(model, as_inputs(example_inputs))
    except Exception as error:  # noqa: BLE001 - any tracing failure is reported the same way
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot trace {type(model).__name__} with torch.export (needed to find coupled channels): {first}") from error


def trace_groups(model: nn.Module, example_inputs) -> DependencyGraph:
    """The coupled channel groups of a plain (unmasked) model, traced on ``example_inputs``."""
    start = time.perf_counter()
    ep = export_model(model, example_inputs)
    traced = time.perf_counter()
    tracer = _Tracer(model)
    tracer.run(ep)
    roots = sorted({tracer.find(sid) for sid in tracer.spaces})
    groups = []
    for index, root in enumerate(roots):
        space = tracer.spaces[root]
        group = DependencyGroup(index, space.kind, space.size, space.members, space.consumers, list(space.reasons), space.attention)
        state = dict(model.state_dict(keep_vars=True))
        for m in group.members:
            tensor = state.get(m.param)
            if tensor is None or tensor.shape[m.dim] != m.outer * group.size * m.block:
                group.reasons.append(f"{m.param} does not split into {group.size} units along dim {m.dim}")
        if not group.producers and group.kind == "channel":
            group.reasons.append("no producing layer")
        groups.append(group)
    return DependencyGraph(groups, traced - start, time.perf_counter() - traced, tracer.messages)
