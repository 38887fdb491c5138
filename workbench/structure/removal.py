"""Which units a structured mask removes, and what the next layers' biases must absorb for them.

A unit is a candidate when its producers are all zero (or every consumer ignores it); it can go without
changing the outputs when what it still feeds its consumers is a constant, which their biases then add.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from workbench.structure.graph import trace_groups
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> with torch.no_grad():
    ...     model[0].weight[1] = 0
    >>> candidates(model, trace_groups(model, torch.randn(2, 4)).groups[0]).tolist()
    [False, True, False]
"""

from __future__ import annotations

import torch
from torch import nn

from .graph import DependencyGroup
from .groups import group_label

TOLERANCE = 1e-6  # relative spread under which a removed unit's input counts as constant


def parameter(model: nn.Module, name: str) -> torch.Tensor:
    module_name, _, leaf = name.rpartition(".")
    return getattr(model.get_submodule(module_name), leaf)


def _zero_units(model, group: DependencyGroup, members) -> torch.Tensor:
    dead = torch.ones(group.size, dtype=torch.bool)
    for m in members:
        dead &= m.unit_slices(parameter(model, m.param), group.size).eq(0).all(dim=1).cpu()
    return dead


def _depthwise(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.groups > 1


def candidates(model, group: DependencyGroup) -> torch.Tensor:
    """Units the masks made removable: dead producers (all rows zero), zero depthwise filters, or unread units.

    Behind an RMSNorm only dead units count: a live unit would change its mean of squares."""
    producers = [m for m in group.producers if m.param.endswith("weight")]
    consumers = [m for m in group.members if m.role == "consumer"]
    dead = _zero_units(model, group, producers) if producers else torch.zeros(group.size, dtype=torch.bool)
    for m in group.members:
        if m.role == "member" and m.param.endswith("weight") and _depthwise(model.get_submodule(m.module)):
            dead |= _zero_units(model, group, [m])
    if group.rms_norms or not consumers:
        return dead
    return dead | _zero_units(model, group, consumers)


def _inputs_by_column(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x.detach().movedim(dim, -1).reshape(-1, x.shape[dim])


def check_constant(model, group, removed, captured, notes, explicit):
    """Keep the removed units whose input to some consumer is not a constant a bias can replace.

    Returns (removed, changes_outputs): the second is True when an explicit ``keep`` removed units whose
    input varies, so the shrunk model computes something else (as asked).
    """
    removed = removed.clone()
    changes_outputs = False
    padded_kept: dict[str, list[int]] = {}
    for point in group.consumers:
        module = model.get_submodule(point.module)
        member = point.member(group)
        inputs = captured.get(point.module)
        if not inputs:
            notes.append(f"{point.module} was never called on the example inputs; group {group.id} left whole")
            return torch.zeros_like(removed), False
        columns = torch.cat([_inputs_by_column(x, point.dim) for x in inputs])
        weight = module.weight.detach()
        padded = isinstance(module, (nn.Conv1d, nn.Conv2d)) and any(p != 0 for p in _padding(module))
        for unit in removed.nonzero().flatten().tolist():
            cols = member.indices(torch.tensor([unit]), group.size)
            if weight.index_select(member.dim, cols).eq(0).all():
                continue  # the consumer ignores this unit
            values = columns[:, cols].double()
            spread = (values.max(0).values - values.min(0).values).abs().max()
            scale = values.abs().max().clamp_min(1.0)
            if spread > TOLERANCE * scale:
                if explicit:
                    notes.append(
                        f"group {group.id} unit {unit}: input of {point.module} is not constant; removed as asked "
                        "(outputs change)"
                    )
                    changes_outputs = True
                    continue
                notes.append(
                    f"group {group.id} unit {unit}: input of {point.module} varies although its producers are zero; "
                    "kept"
                )
                removed[unit] = False
            elif padded and values[0].abs().max() > 0:
                padded_kept.setdefault(point.module, []).append(unit)
                removed[unit] = False
    for module_name, units in padded_kept.items():
        notes.append(
            f"group {group.id} ({group_label(group)}): kept {len(units)} pruned unit(s) {units} whose nonzero "
            "constant output "
            f"feeds zero-padded {module_name} (the border makes it position-dependent, no bias can replace it)"
        )
    return removed, changes_outputs


def bias_deltas(model, group, removed, captured) -> dict[str, torch.Tensor]:
    """What each consumer's bias must add to stand in for the (constant) inputs of the removed units."""
    deltas = {}
    units = removed.nonzero().flatten()
    for point in group.consumers:
        module = model.get_submodule(point.module)
        member = point.member(group)
        cols = member.indices(units, group.size)
        columns = torch.cat([_inputs_by_column(x, point.dim) for x in captured[point.module]])
        const = columns[:, cols].double().mean(0)
        w = module.weight.detach().double().index_select(member.dim, cols).movedim(member.dim, 1)  # (out, in, …)
        delta = (w.flatten(2).sum(2) if w.dim() > 2 else w) @ const
        if delta.any():  # no bias is added where the removed units contribute nothing
            deltas[point.module] = deltas.get(point.module, 0) + delta
    return deltas


def _padding(module):
    p = module.padding
    if isinstance(p, str):
        return (1,) if p == "same" else (0,)
    return tuple(p)
