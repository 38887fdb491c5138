"""Walk an exported graph, following channel spaces from node to node, merging them and closing them into groups.

A ``Tracer`` knows no op: ``run`` hands every call node to a ``handle(tracer, node)`` (see ``ops.handle``)
that annotates the node's output with a space and adds the members it finds. Spaces are kept in a
union-find; ``finish`` returns the root spaces, ready to become groups.

Example:
    >>> from torch import nn
    >>> tracer = Tracer(nn.Linear(2, 2))
    >>> a, b = tracer.new_space("channel", 4), tracer.new_space("channel", 4)
    >>> tracer.merge(a, b, node=None) == tracer.find(b)
    True
    >>> tracer.finish()
    [0]
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from ..attention import attention_layouts
from .groups import ConsumerPoint, Member


def op_name(target) -> str:
    """The aten op of a call target: ``aten.linear.default`` → ``"linear"``."""
    name = getattr(target, "__name__", str(target))  # "linear.default"
    return name.split(".")[0]


def tensor_value(node):
    """The example tensor a node computed during export, or None (not a node, or not one tensor)."""
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return value if isinstance(value, torch.Tensor) else None


def holds_tensors(node) -> bool:
    """Whether a node computed several tensors (a list or tuple holding at least one)."""
    value = node.meta.get("val")
    return isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value)


def argument(node, index, name, default=None):
    """A call argument given by position or by keyword."""
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def flat_nodes(args) -> list[torch.fx.Node]:
    """Every node inside nested lists, tuples and dicts of call arguments, in order."""
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


class Space:
    """A set of units flowing through the graph, with the parameter slices and consumers found so far."""

    def __init__(self, sid, kind, size, attention=None):
        self.id, self.kind, self.size, self.attention = sid, kind, size, attention
        self.members: list[Member] = []
        self.consumers: list[ConsumerPoint] = []
        self.reasons: list[str] = []
        self.changes: list[str] = []  # why removing units changes the function (allowed when not exact)
        self.rms_norms: list[str] = []  # RMSNorm modules over these channels: rescaled to stay exact
        self.parts: list[tuple[int, int, int]] | None = None  # concatenation: (space, channel offset, inner)
        self.units_per_group = 1  # GroupNorm: units that must go together


def _canonical_names(model: nn.Module) -> dict[str, str]:
    """Every name of a tensor → its first name (a tied ``lm_head.weight`` → ``transformer.wte.weight``)."""
    first: dict[int, str] = {}
    out = {}
    tensors = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    for name, tensor in tensors:
        out[name] = first.setdefault(id(tensor), name)
    return out


def _holds_anything(space: Space) -> bool:
    return bool(space.members or space.consumers or space.reasons or space.changes or space.rms_norms)


class Tracer:
    """The channel spaces of one model's exported graph; the state every op handler reads and updates."""

    def __init__(self, model: nn.Module, exact: bool = True):
        self.model, self.exact = model, exact
        self.modules = dict(model.named_modules())
        self.attentions = attention_layouts(model)
        self.projections = {  # q/k/v Linear module name → (attention module name, "q"|"k"|"v"|"qkv")
            (f"{name}.{child}" if name else child): (name, "qkv" if layout.qkv[0][0] == layout.qkv[1][0] else "qkv"[i])
            for name, layout in self.attentions.items()
            for i, (child, _) in enumerate(layout.qkv)
        }
        self.spaces: dict[int, Space] = {}
        self.parent: dict[int, int] = {}
        self.ann: dict[torch.fx.Node, tuple[int, int, int]] = {}  # node → (space, negative dim, inner)
        self.internal: dict[torch.fx.Node, int] = {}  # node inside attention → head space (layout not tracked)
        self.pieces: dict[torch.fx.Node, list[tuple[int, int, int]]] = {}  # split/chunk node → each piece's annotation
        self.attention_rank: dict[str, int] = {}
        self.params: dict[torch.fx.Node, str] = {}
        self.head_spaces: dict[str, int] = {}
        self.embeddings: dict[str, int] = {}  # embedding weight name → the space its columns produce
        self.messages: list[str] = []

    # ---- spaces (union-find) ---------------------------------------------------------------------
    def find(self, sid):
        while self.parent[sid] != sid:
            self.parent[sid] = self.parent[self.parent[sid]]
            sid = self.parent[sid]
        return sid

    def new_space(self, kind, size, attention=None):
        sid = len(self.spaces)
        self.spaces[sid] = Space(sid, kind, size, attention)
        self.parent[sid] = sid
        return sid

    def space(self, sid) -> Space:
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
        sa.changes += [c for c in sb.changes if c not in sa.changes]
        sa.rms_norms += [r for r in sb.rms_norms if r not in sa.rms_norms]
        sa.units_per_group = math.lcm(sa.units_per_group, sb.units_per_group)
        return a

    def block(self, sid, reason):
        space = self.space(sid)
        if reason not in space.reasons:
            space.reasons.append(reason)

    def changes_function(self, sid, reason):
        """Removing units of ``sid`` changes the function for ``reason``: noted, and unprunable when exact."""
        space = self.space(sid)
        if reason not in space.changes:
            space.changes.append(reason)
        if self.exact:
            self.block(sid, reason)

    def unsupported(self, node, sids, why="is not supported by structured shrinking"):
        message = (
            f"node {node.name!r} ({node.target}{self.where(node)}) {why}; the channels it touches are left unpruned"
        )
        if message not in self.messages:
            self.messages.append(message)
            warnings.warn(message, stacklevel=4)
        for sid in sids:
            self.block(sid, f"unsupported op at node {node.name!r} ({node.target}{self.where(node)})")

    @staticmethod
    def where(node):
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

    def add_consumer(self, sid, module_name, wname, dim, inner, outer, columns=1):
        """The input of ``module_name`` reads space ``sid`` along ``dim``: its weight's dim ``columns`` is sliced."""
        self.add_member(sid, wname, columns, "consumer", module_name, inner, outer)
        point = ConsumerPoint(module_name, wname, dim, inner, outer)
        if point not in self.space(sid).consumers:
            self.space(sid).consumers.append(point)

    def sids(self, nodes):
        return [self.ann[n][0] if n in self.ann else self.internal[n] for n in nodes]

    def spaced_inputs(self, node) -> list[torch.fx.Node]:
        """The inputs of ``node`` that carry a traced space (channels or attention internals)."""
        return [n for n in flat_nodes((node.args, node.kwargs)) if n in self.ann or n in self.internal]

    # ---- the walk --------------------------------------------------------------------------------
    def run(self, ep, handle):
        """Walk the exported program ``ep``, giving every call node to ``handle(self, node)``."""
        sig = ep.graph_signature
        names = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
        canonical = _canonical_names(self.model)
        for node in ep.graph.nodes:
            if node.op == "placeholder":
                if node.name in names:
                    self.params[node] = canonical.get(names[node.name], names[node.name])
            elif node.op == "call_function":
                handle(self, node)
            elif node.op == "output":
                for arg in flat_nodes(node.args):
                    if arg in self.ann or arg in self.internal:
                        self.block(self.sids([arg])[0], "reaches the model output")

    # ---- attention -------------------------------------------------------------------------------
    def inside_attention(self, node):
        for path in reversed(self.stack_modules(node)):
            if path in self.attentions:
                return path
        return None

    def on_heads(self, node, spaced) -> bool:
        """Ops inside an attention module on its head tensors: the head layout is trusted, not traced.

        Returns whether ``node`` was such an op (then it is annotated, or blocks what it mixes).
        """
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
        out = tensor_value(node)
        layout = self.attentions[attention]
        if out is not None and out.dim() == self.attention_rank[attention] and out.shape[-1] == layout.width:
            self.ann[node] = (head, -1, layout.width // layout.units)  # heads laid out again as (…, heads × head_dim)
        elif out is not None or holds_tensors(node):
            self.internal[node] = head
        return True

    # ---- groups ----------------------------------------------------------------------------------
    def distribute(self, composite):
        """Move a concatenation's members, consumers and reasons to its parts, at their offsets."""
        members, consumers, reasons = composite.members, composite.consumers, composite.reasons
        changes, rms_norms = composite.changes, composite.rms_norms
        composite.members, composite.consumers, composite.reasons = [], [], []
        composite.changes, composite.rms_norms = [], []
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
            for reason in changes:
                self.changes_function(part, reason)
            self.space(part).rms_norms += rms_norms

    def finish(self):
        """Hand the members of concatenated tensors to their parts, then make GroupNorm groups the units."""
        composites = sorted((s for s in self.spaces if self.spaces[s].parts is not None), reverse=True)
        for _ in range(len(composites) + 1):  # a part may itself be (merged into) a concatenation
            pending = [s for s in composites if _holds_anything(self.spaces[s])]
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
