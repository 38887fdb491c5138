"""Latency-aware allocation: how many units each dependency group loses, chosen from measured latency, not FLOPs.

Uniform allocation removes the same share of every group. But a unit costs very different time in different
places: a filter of the first convolution runs at full resolution, a neuron of the classifier once per image.
``latency_allocation`` grows the allocation step by step: each step times, side by side, the model with one more
share of each group removed, and keeps the step that saves the most measured time per parameter, until as many
parameters are gone as uniform allocation at ``sparsity`` removes. Which units of a group go is still the
criterion's choice.

Example:
    >>> import workbench as wb
    >>> plan = latency_allocation(wb.pretrained("mlp"), sparsity=0.5, pattern=None, steps=2, min_run_time=0.01)
    >>> plan.params <= plan.uniform_params, sorted(plan.fractions) == sorted(plan.uniform_fractions)
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .measure import compare_latency
from .reports import check_sparsity
from .structure.group_prune import GroupPruner
from .structure.shrink import default_inputs, shrink_masked


@dataclass
class LatencyPlan:
    """Per group (by id): the share of its units to remove, for the latency-aware and the uniform allocation."""

    fractions: dict[int, float]  # latency-aware
    uniform_fractions: dict[int, float]
    params: int  # parameters left after the latency-aware allocation
    uniform_params: int
    dense_params: int
    table: list[dict] = field(default_factory=list)  # per step and candidate group: ms and params saved, chosen
    pruner: GroupPruner | None = field(default=None, repr=False)

    def shrunk(self, uniform: bool = False) -> nn.Module:
        """The model shrunk with this allocation (or with the uniform one)."""
        return _shrunk(self.pruner, self.uniform_fractions if uniform else self.fractions)


def _removed(pruner: GroupPruner, fractions: dict[int, float]) -> dict[int, torch.Tensor]:
    """The criterion's lowest-scored ``round(fraction × size)`` units of each group (at least one kept)."""
    removed = {}
    for group, scores in zip(pruner.groups, pruner.scores):
        count = min(round(fractions.get(group.id, 0.0) * group.size), group.size - 1)
        if count:
            removed[group.id] = scores.argsort(stable=True)[:count].sort().values
    return removed


def _shrunk(pruner: GroupPruner, fractions: dict[int, float]) -> nn.Module:
    masks = pruner.masks_for(_removed(pruner, fractions))
    return shrink_masked(pruner.plain, masks, pruner.inputs, graph=pruner.graph)[0].eval()


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def latency_allocation(
    model: nn.Module,
    sparsity: float,
    *,
    criterion: str = "l1",
    pattern: str = "filter",
    batch: int = 64,
    steps: int = 8,
    threads: int | None = 1,
    min_run_time: float = 0.1,
    device: str | torch.device = "auto",
    data=None,
) -> LatencyPlan:
    """Per-group shares to remove so that at least as many parameters go as uniform ``sparsity`` removes, chosen
    greedily from measured latency.

    Each step tries raising every group's share by ``1 / steps`` (up to 0.9) on top of the allocation so far,
    times all the candidates interleaved (``compare_latency``), and keeps the one that saves the most milliseconds
    per parameter removed; the last step takes only as many of its units as needed to match the parameter count.
    """
    sparsity = check_sparsity(sparsity)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    pruner = GroupPruner(model, criterion, pattern=pattern, data=data)
    inputs = default_inputs(model, batch)
    dense_params = _count(pruner.plain)
    uniform = {group.id: sparsity for group in pruner.groups}
    uniform_params = _count(_shrunk(pruner, uniform))
    fractions = dict.fromkeys(uniform, 0.0)
    current, current_params, table, step = pruner.plain, dense_params, [], 0
    while current_params > uniform_params:
        candidates = {}
        for gid, share in fractions.items():
            if share + 1e-9 < 0.9:
                candidates[gid] = _shrunk(pruner, {**fractions, gid: min(0.9, share + 1 / steps)})
        if not candidates:
            break  # every group at 0.9: uniform sparsity above 0.9 cannot be matched
        timed = compare_latency(
            {"current": current, **candidates}, inputs, device=device, threads=threads, min_run_time=min_run_time
        )
        rates, rows = {}, []
        for gid, candidate in candidates.items():
            params_saved = current_params - _count(candidate)
            ms_saved = timed["current"].median_ms - timed[gid].median_ms
            rates[gid] = ms_saved / max(params_saved, 1)
            rows.append({"step": step, "group": gid, "ms_saved": ms_saved, "params_saved": params_saved})
        best = max(rates, key=rates.get)
        table += [{**row, "chosen": row["group"] == best} for row in rows]
        step += 1
        previous = fractions[best]
        fractions[best] = min(0.9, previous + 1 / steps)
        current = candidates[best]
        current_params = _count(current)
    if current_params < uniform_params:  # the last step overshot: take only the units equal parameters need
        size = next(g.size for g in pruner.groups if g.id == best)
        low, high = round(previous * size), round(fractions[best] * size)
        while low < high:
            middle = (low + high) // 2
            if _count(_shrunk(pruner, {**fractions, best: middle / size})) <= uniform_params:
                high = middle
            else:
                low = middle + 1
        fractions[best] = high / size
    return LatencyPlan(
        fractions, uniform, _count(_shrunk(pruner, fractions)), uniform_params, dense_params, table, pruner
    )
