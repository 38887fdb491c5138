"""Shrink a structurally pruned model into a smaller plain PyTorch model with the same outputs.

A unit (neuron, filter, head) is removed when its producing layers' weights are all zero under the
masks (or every consumer ignores it, or an explicit ``keep`` leaves it out). A removed unit that still
emits a constant (its bias, BatchNorm's shift, GELU(bias), …) is folded into the consumers' biases,
measured numerically on the example inputs, so the shrunk model computes what the masked one did.

Example:
    >>> import torch, workbench as wb
    >>> from workbench.models import build_model
    >>> model = build_model("mlp").eval()
    >>> _ = wb.prune(model, sparsity=0.5, pattern="neuron")
    >>> small, report = shrink_masked(model, example_inputs=torch.randn(4, 64))
    >>> tuple(small.fc1.weight.shape)
    (150, 64)
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..attention import attention_layouts
from ..inputs import as_inputs
from ..masks import get_masks, undo
from ..models import input_shape
from .configs import update_config
from .graph import DependencyGraph, DependencyGroup, trace_groups
from .groups import group_label
from .rebuild import apply_slices, describe, describe_heads, rescale_rms_norms, retie, set_head_count, tied_parameters
from .removal import bias_deltas, candidates, check_constant, parameter

CHECK = 1e-4  # relative error above which the shrunk model is rejected (its outputs must equal the masked model's)


@dataclass
class ShrinkReport:
    """What ``shrink`` did: layer shapes before → after, parameter counts, notes, timings."""

    layers: list[tuple[str, str, str]] = field(default_factory=list)  # (name, before, after)
    notes: list[str] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0
    removed: dict[int, list[int]] = field(default_factory=dict)  # group id → removed units
    changed: dict[int, list[str]] = field(default_factory=dict)  # group id → why its removal changed the function
    graph: DependencyGraph | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [f"{name}: {before} → {after}" for name, before, after in self.layers]

    def __str__(self) -> str:
        ratio = self.params_after / self.params_before if self.params_before else 1.0
        out = [*self.lines(), f"parameters: {self.params_before:,} → {self.params_after:,} ({ratio:.1%})"]
        if self.changed:
            out.append(f"NOT exact: groups {sorted(self.changed)} changed the function; fine-tune to recover")
        return "\n".join(out + [f"note: {n}" for n in self.notes])


def default_inputs(model: nn.Module, batch: int = 4) -> tuple:
    """Random example inputs for a workbench model (from its config); other models need example_inputs."""
    shape = input_shape(model)
    if shape is None:
        raise ValueError(f"shrink needs example_inputs to trace {type(model).__name__} (e.g. one batch of inputs)")
    return (torch.randn(batch, *shape),)


def _round_keep(removed: torch.Tensor, keep_multiple: int, group, notes) -> torch.Tensor:
    kept = int((~removed).sum())
    target = max(1, math.ceil(kept / keep_multiple) * keep_multiple) if kept else max(1, keep_multiple)
    target = min(target, group.size)
    if kept == 0:
        notes.append(
            f"group {group.id} ({group_label(group)}): every unit was prunable; kept {target} so the model still "
            "computes"
        )
    removed = removed.clone()
    for unit in removed.nonzero().flatten().tolist():
        if int((~removed).sum()) >= target:
            break
        removed[unit] = False
    return removed


def shrink_masked(
    model: nn.Module,
    masks=None,
    example_inputs=None,
    *,
    keep=None,
    keep_multiple: int = 1,
    graph: DependencyGraph | None = None,
    exact: bool = True,
):
    """A smaller plain copy of ``model`` without the units its structured masks removed, and a report.

    Args:
        model: a model, masked (e.g. after ``wb.prune(model, pattern="neuron"|"filter"|"head")``) or not.
        masks: bool masks by parameter name to use instead of the model's own (``PruneResult.masks``);
            or a ``{group id: kept unit indices}`` dict (same as ``keep``).
        example_inputs: a batch of inputs (tensor or tuple) to trace with; workbench models make their own.
        keep: ``{group id: LongTensor of kept units}`` for groups of ``trace_groups``; other groups follow the masks.
        keep_multiple: round each group's kept units up to a multiple of this (hardware-friendly widths).
        graph: the ``trace_groups`` result of a model with this architecture, to skip tracing again.
        exact: False also shrinks groups whose removal changes the function (a LayerNorm'd hidden width);
            ``report.changed`` names them. Ignored when ``graph`` is given (traced exact or not).

    The original model is never modified. Outputs of the shrunk model equal the masked model's (eval mode)
    unless ``report.changed`` names groups; a shrunk model that would not compute them is never returned.
    """
    if keep_multiple < 1:
        raise ValueError(f"keep_multiple must be >= 1, got {keep_multiple}")
    if graph is not None and not isinstance(graph, DependencyGraph):
        raise ValueError(f"graph must be a DependencyGraph from trace_groups, got {type(graph).__name__}")
    if isinstance(masks, dict) and masks and all(isinstance(k, int) for k in masks):
        keep, masks = masks, None
    start = time.perf_counter()
    inputs = as_inputs(example_inputs) if example_inputs is not None else default_inputs(model)
    mask_dict = dict(get_masks(model)) if masks is None else dict(masks)
    base = copy.deepcopy(model)
    undo(base)  # plain dense copy (masks.undo gives the copy's modules their own classes first)
    if graph is not None and (why := graph.mismatch(base)):
        raise ValueError(
            f"graph was traced on another architecture than {type(model).__name__} ({why}); "
            "trace this model with trace_groups(model, example_inputs) or pass graph=None"
        )
    with torch.no_grad():
        for name, mask in mask_dict.items():
            try:
                param = parameter(base, name)
            except AttributeError:
                raise ValueError(f"mask for {name!r} names no parameter of the model") from None
            if tuple(mask.shape) != tuple(param.shape):
                raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, the parameter {tuple(param.shape)}")
            param.mul_(mask.to(param.device))
    training = model.training
    base.eval()
    report = ShrinkReport()
    report.params_before = sum(p.numel() for p in base.parameters())
    if graph is None:
        graph = trace_groups(base, inputs, exact)
        report.seconds["trace"] = graph.trace_seconds
        report.seconds["group"] = graph.group_seconds
    report.graph = graph
    report.notes += graph.warnings
    keep = {int(k): torch.as_tensor(v, dtype=torch.long) for k, v in (keep or {}).items()}
    for gid, kept_units in keep.items():
        if not 0 <= gid < len(graph.groups):
            raise ValueError(f"keep names group {gid}, but the model has groups 0..{len(graph.groups) - 1}")
        group = graph.groups[gid]
        if not group.prunable:
            hint = "; pass exact=False to remove its units anyway" if _only_changes(group) else ""
            raise ValueError(f"group {gid} ({group_label(group)}) cannot be shrunk: {'; '.join(group.reasons)}{hint}")
        if kept_units.numel() and (kept_units.min() < 0 or kept_units.max() >= group.size):
            raise ValueError(f"keep[{gid}] has unit indices outside 0..{group.size - 1}")
    t0 = time.perf_counter()
    captured, reference = _capture(base, graph, inputs)
    plan = _plan(base, graph, keep, keep_multiple, captured, set(mask_dict), report.notes)
    small = _build(base, graph, plan, report)
    why = _differs(small, inputs, reference, values=not plan["changes_outputs"])
    heads = [gid for gid in plan["removed"] if graph.groups[gid].attention]
    if why and heads:  # a forward that hard-codes its head count: keep the heads, shrink the rest
        names = ", ".join(graph.groups[gid].attention for gid in heads)
        report.notes.append(f"heads of {names} kept: with fewer heads the model's forward {why}")
        plan = _plan(base, graph, keep, keep_multiple, captured, set(mask_dict), [], skip=set(heads))
        report.layers = []
        small = _build(base, graph, plan, report)
        why = _differs(small, inputs, reference, values=not plan["changes_outputs"])
    if why:
        raise ValueError(
            f"shrinking {type(model).__name__} would change its outputs (the shrunk model {why}); "
            "please report this model, the masked model is unchanged"
        )
    report.notes += update_config(small, base)
    report.removed = {gid: units.nonzero().flatten().tolist() for gid, units in plan["removed"].items()}
    report.changed = {gid: graph.groups[gid].changes for gid in report.removed if graph.groups[gid].changes}
    report.params_after = sum(p.numel() for p in small.parameters())
    small.train(training)
    report.seconds["shrink"] = time.perf_counter() - t0
    report.seconds["total"] = time.perf_counter() - start
    return small, report


def _capture(base: nn.Module, graph: DependencyGraph, inputs):
    """Every consumer's inputs on the example batch, and the model's outputs."""
    captured: dict[str, list[torch.Tensor]] = {}
    wanted = {p.module for g in graph.groups if g.prunable for p in g.consumers}
    hooks = [
        base.get_submodule(name).register_forward_pre_hook(
            lambda mod, args, name=name: captured.setdefault(name, []).append(args[0].detach())
        )
        for name in wanted
    ]
    try:
        with torch.no_grad():
            reference = base(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return captured, reference


def _plan(base, graph, keep, keep_multiple, captured, masked_params, notes, skip=()):
    """Removed units per group, bias corrections and head counts."""
    plan = {"removed": {}, "deltas": {}, "heads": {}, "changes_outputs": False}
    for group in graph.groups:
        if not group.prunable:
            touched = masked_params & {m.param for m in group.producers}
            if touched and candidates(base, group).any():
                hint = " (exact=False removes them anyway, changing the function)" if _only_changes(group) else ""
                notes.append(
                    f"group {group.id} ({group_label(group)}) has masked units but cannot shrink: "
                    f"{'; '.join(group.reasons)}{hint}"
                )
            continue
        if group.id in skip:
            continue
        explicit = group.id in keep
        if explicit:
            removed = torch.ones(group.size, dtype=torch.bool)
            removed[keep[group.id]] = False
        else:
            removed = candidates(base, group)
        if not removed.any():
            continue
        if group.changes:  # not exact by choice: the removed units go whatever they carried
            notes.append(
                f"group {group.id} ({group_label(group)}): removing units changes the function "
                f"({group.changes[0]}); fine-tune to recover"
            )
            plan["changes_outputs"] = True
        else:
            removed, changes_outputs = check_constant(base, group, removed, captured, notes, explicit)
            plan["changes_outputs"] |= changes_outputs
        removed = _round_keep(removed, keep_multiple, group, notes) if not explicit or not (~removed).any() else removed
        if not removed.any():
            continue
        deltas = {} if group.changes else bias_deltas(base, group, removed, captured)  # not exact: sliced only
        plan["removed"][group.id] = removed
        for name, delta in deltas.items():
            plan["deltas"][name] = plan["deltas"].get(name, 0) + delta
        if group.attention:
            plan["heads"][group.attention] = int((~removed).sum())
    return plan


def _only_changes(group: DependencyGroup) -> bool:
    """Whether a group is kept whole only because removing units would change the function."""
    return bool(group.changes) and set(group.reasons) <= set(group.changes)


def _build(base, graph, plan, report) -> nn.Module:
    """A copy of ``base`` with the planned units removed; fills ``report.layers``."""
    small = copy.deepcopy(base)
    removed_at: dict[str, dict[int, list[torch.Tensor]]] = {}
    for gid, removed in plan["removed"].items():
        group = graph.groups[gid]
        units = removed.nonzero().flatten()
        for m in group.members:
            removed_at.setdefault(m.param, {}).setdefault(m.dim, []).append(m.indices(units, group.size))
    slices = {}
    for name, dims in removed_at.items():
        shape = parameter(small, name).shape
        slices[name] = {}
        for dim, parts in dims.items():
            kept = torch.ones(shape[dim], dtype=torch.bool)
            kept[torch.cat(parts)] = False
            slices[name][dim] = kept.nonzero().flatten()
    layouts = attention_layouts(small)
    before = {name: describe(mod) for name, mod in small.named_modules() if describe(mod)}
    old_shapes = {name: tuple(parameter(small, name).shape) for name in slices}
    tied = tied_parameters(small)
    rms_norms = {name for gid in plan["removed"] for name in graph.groups[gid].rms_norms}
    widths = {name: small.get_submodule(name).weight.numel() for name in rms_norms}
    apply_slices(small, slices, plan["deltas"])
    retie(small, tied, slices)
    rescale_rms_norms(small, widths)
    for name, units in plan["heads"].items():
        set_head_count(small.get_submodule(name), layouts[name], units * layouts[name].group_size)
    for name, mod in small.named_modules():
        if name in before and describe(mod) != before[name]:
            report.layers.append((name, before[name], describe(mod)))
    for name, units in plan["heads"].items():
        report.layers.append(
            (name, describe_heads(layouts[name], layouts[name].units), describe_heads(layouts[name], units))
        )
    for name in sorted(n for n in slices if n.rpartition(".")[0] not in before):  # e.g. pos_embed
        report.layers.append(
            (name, "×".join(map(str, old_shapes[name])), "×".join(map(str, parameter(small, name).shape)))
        )
    return small


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _differs(small: nn.Module, inputs, reference, values: bool = True) -> str | None:
    """Why ``small`` does not compute ``reference`` on ``inputs`` (None when it does); with ``values=False``
    only whether it runs and returns outputs of the same shapes."""
    try:
        with torch.no_grad():
            got = small(*inputs)
    except Exception as error:
        return f"fails: {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    expected, got = _tensors(reference), _tensors(got)
    if len(expected) != len(got) or any(a.shape != b.shape for a, b in zip(expected, got)):
        return "returns outputs of other shapes"
    for a, b in zip(expected, got) if values else []:
        scale = a.abs().max().clamp_min(1e-12) if a.numel() else 1
        if a.is_floating_point() and a.numel() and ((a - b).abs().max() / scale) > CHECK:
            return f"computes other outputs (relative error {((a - b).abs().max() / scale).item():.1e})"
    return None
