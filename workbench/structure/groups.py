"""The result of tracing: dependency groups of coupled units and the parameter slices each one spans.

Example:
    >>> member = Member("fc1.weight", dim=0, role="producer", module="fc1", block=2)
    >>> member.indices(torch.tensor([1]), size=3).tolist()  # unit 1 of 3 owns rows 2 and 3
    [2, 3]
    >>> member.end(size=3)
    6
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


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
    changes: list[str] = field(default_factory=list)  # why removing units changes the function (allowed if not exact)
    rms_norms: list[str] = field(default_factory=list)  # RMSNorm modules a shrink rescales to stay exact

    @property
    def prunable(self) -> bool:
        return not self.reasons

    @property
    def producers(self) -> list[Member]:
        return [m for m in self.members if m.role == "producer"]

    def __str__(self) -> str:
        what = f"{self.kind} group {self.id}: {self.size} units" + (f" ({self.attention})" if self.attention else "")
        lines = [what + ("" if self.prunable else f" — NOT prunable: {'; '.join(self.reasons)}")]
        if self.prunable and self.changes:
            lines[0] += f" — NOT exact: {'; '.join(self.changes)}"
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


def group_label(group: DependencyGroup) -> str:
    """What a group is, for messages: "heads of blocks.0.attn" or "outputs of fc1"."""
    if group.attention:
        return f"heads of {group.attention}"
    producers = sorted({m.module for m in group.producers})
    return "outputs of " + ", ".join(producers)
