"""Trace a model and find its coupled channel groups (the units a structured shrink removes together).

A *channel space* is born at the output of a Linear/Conv layer (its rows/filters are the *producers*) or of
an embedding lookup (its columns), flows unchanged through elementwise ops (ReLU, GELU, BatchNorm, dropout,
…) and depthwise convs, is merged with another space by a residual ``add``, is placed next to other spaces
by ``torch.cat`` (its members then carry an index ``offset``), is cut into equal pieces by ``chunk`` (unit u
of every piece is one unit, as a GLU's value and gate need), and ends at the inputs of Linear/Conv layers
(the weight columns / input channels are the *consumers*). GroupNorm makes whole norm groups the units.
Attention modules (see ``workbench.patterns.attention_layout``: separate or fused q/k/v Linear layers) form
one *head* group each: q/k/v rows in blocks of ``head_dim``, out columns.

Every op we cannot map makes the spaces it touches unprunable, with a ``warnings.warn`` naming the
node, so a shrink never produces a silently wrong model. Channels a LayerNorm (or another reduction over
them) reads are mapped, but removing them changes the function: they stay whole unless ``exact=False``,
and their group lists why in ``changes``. An RMSNorm's channels stay exact (a shrink rescales the norm).

The walk over the exported graph is in ``tracer``, what each op does in the op table of ``ops``
(with ``layers`` and ``norms``), the groups it yields in ``groups``.

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
import time
from contextlib import contextmanager

import torch
from torch import nn

from ..inputs import as_inputs
from ..masks import is_masked, undo
from .groups import ConsumerPoint, DependencyGraph, DependencyGroup, Member
from .ops import handle
from .tracer import Tracer

__all__ = ["ConsumerPoint", "DependencyGraph", "DependencyGroup", "Member", "export_model", "trace_groups"]


@contextmanager
def _without_cache(model: nn.Module):
    """A generative model's key/value cache off while exporting (its cache object is no tensor output)."""
    config = getattr(model, "config", None)
    if getattr(config, "use_cache", None) is not True:
        yield
        return
    config.use_cache = False
    try:
        yield
    finally:
        config.use_cache = True


def export_model(model: nn.Module, example_inputs):
    """``torch.export.export`` with a ValueError naming the model when it cannot be traced."""
    try:
        with _without_cache(model):
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


def trace_groups(model: nn.Module, example_inputs, exact: bool = True) -> DependencyGraph:
    """The coupled channel groups of ``model`` (masks, if any, are ignored), traced on ``example_inputs``.

    ``exact=False`` also makes prunable the groups whose removal changes the function (channels a
    LayerNorm normalizes, such as a transformer's hidden width); each lists why in ``changes``.
    """
    if is_masked(model):
        model = copy.deepcopy(model)
        undo(model)
    start = time.perf_counter()
    ep = export_model(model, example_inputs)
    traced = time.perf_counter()
    tracer = Tracer(model, exact)
    tracer.run(ep, handle)
    roots = tracer.finish()
    state = dict(model.state_dict(keep_vars=True))
    groups, claimed = [], {}
    for index, root in enumerate(roots):
        space = tracer.spaces[root]
        group = DependencyGroup(
            index,
            space.kind,
            space.size,
            space.members,
            space.consumers,
            list(space.reasons),
            space.attention,
            list(space.changes),
            list(dict.fromkeys(space.rms_norms)),
        )
        if not group.producers and group.kind == "channel":
            group.reasons.append("no producing layer")
        groups.append(group)
    for group in groups:
        _check_members(group, state, claimed)
    shapes = {name: tuple(t.shape) for name, t in state.items()}
    return DependencyGraph(groups, traced - start, time.perf_counter() - traced, tracer.messages, shapes)
