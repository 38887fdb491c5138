"""Prune whole dependency groups: score each unit over every layer it spans, mask every slice it touches.

Classic structured masks (``wb.prune(pattern="filter")``) zero one layer's rows; the unit's bias,
BatchNorm shift and the next layer's columns stay, so a removed filter may still emit a constant and
a shrink has to keep it. A ``GroupPruner`` masks the whole group, as Torch-Pruning's DepGraph does:
producer rows, biases, BatchNorm γ/β, q/k/v head blocks and the consumers' input columns. The masked
model then equals the model without those units, and ``shrink_masked`` removes every one of them.

Unit scores: each producing weight's rows (for heads: the q/k/v blocks) are scored by the criterion
and averaged per unit, every producer's scores are divided by their mean (layers of different
scale count alike), and a unit's score is the mean over its producers.

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("cnn")
    >>> pruner = GroupPruner(model, "l1", pattern="filter")
    >>> masks = pruner.masks(0.5)
    >>> int((~masks["stem.1.bias"]).sum())  # the stem's BatchNorm loses the pruned residual channels too
    16
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..criteria import get_criterion
from ..inputs import as_inputs
from ..layer_kinds import weight_dims
from ..layers import check_exclude, is_excluded, is_prunable_layer
from ..masks import apply_masks, bake, undo
from ..patterns import PATTERN_SPECS, coupled_patterns, parse_pattern
from ..reports import SCOPES, PruneResult, check_choice, check_sparsity, report_from_masks
from .graph import DependencyGraph, DependencyGroup, Member, trace_groups
from .groups import group_label as _label
from .shrink import default_inputs

NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _group_kind(pattern) -> str | None:
    """The dependency-group kind a pattern prunes whole ("channel", "head"), None for all kinds."""
    if pattern is None:
        return None
    spec = PATTERN_SPECS[parse_pattern(pattern).kind]
    if spec.coupled is None:
        hint = (
            " ('channel' prunes one layer's input columns; the coupled group of a channel is its producer's "
            "output unit: use 'filter' or 'neuron')"
            if "channel" in spec.names
            else ""
        )
        raise ValueError(
            f"pattern {pattern!r} does not remove whole units (dependency groups); choose one of "
            f"{', '.join(coupled_patterns())} (or None for all){hint}"
        )
    return spec.coupled


def _output_dim(module: nn.Module) -> int | None:
    """The weight dim of a layer's outputs (None: not a Linear, Conv or transposed Linear)."""
    return weight_dims(module)[0] if is_prunable_layer(module) else None


def _normalized(scores: torch.Tensor) -> torch.Tensor:
    mean = scores.mean()
    return scores / mean if mean > 0 else scores


class GroupPruner:
    """Cached unit scores of every prunable dependency group; whole-group masks at any sparsity.

    Args:
        model: any ``nn.Module`` (not modified until ``apply``).
        criterion: a name from ``workbench.criteria.CRITERIA``: "l1", "l2" ("magnitude" is L2), "fpgm",
            "bn_scale" (the |γ| of the group's BatchNorms), "taylor", …
        example_inputs: a batch to trace with; workbench models make their own.
        pattern: "neuron" or "filter" (coupled channel groups), "head" (attention heads), None (all); any
            registered pattern with a ``coupled`` group kind.
        scope: "local" (every group loses the same fraction of its units) or "global" (one ranking of
            normalized unit scores; every group keeps at least ``keep_multiple`` units).
        data: what data-driven criteria score on.
        keep_multiple: kept units per group are rounded up to a multiple of this (e.g. 8 for hardware).
        exclude: module names or globs; groups produced by a matching module are left whole.
        compose: score the masked model as it is (default: its dense weights), and keep its masks.
        criterion_options: extra keyword arguments of the criterion.
        exact: False also prunes groups whose removal changes the function (a LayerNorm'd hidden width).
    """

    def __init__(
        self,
        model,
        criterion="l1",
        example_inputs=None,
        *,
        pattern=None,
        scope="local",
        data=None,
        keep_multiple=1,
        exclude=(),
        compose=False,
        criterion_options=None,
        exact=True,
    ):
        kind = _group_kind(pattern)
        check_choice("scope", scope, SCOPES)
        if isinstance(keep_multiple, bool) or not isinstance(keep_multiple, int) or keep_multiple < 1:
            raise ValueError(f"keep_multiple must be an integer >= 1, got {keep_multiple!r}")
        self.spec = get_criterion(criterion)
        options = dict(criterion_options or {})
        self.spec.check_options(options)
        if self.spec.needs_data and data is None:
            raise ValueError(
                f"criterion {criterion!r} scores with data: pass data=<DatasetSplits, Dataset, DataLoader "
                "or (inputs, labels)>"
            )
        exclude = check_exclude(model, exclude)
        self.model, self.criterion, self.scope, self.keep_multiple = model, criterion, scope, keep_multiple
        self.compose = compose
        self.plain = copy.deepcopy(model)
        (bake if compose else undo)(self.plain)
        self.plain.eval()
        self.inputs = as_inputs(example_inputs) if example_inputs is not None else default_inputs(model)
        self.graph: DependencyGraph = trace_groups(self.plain, self.inputs, exact)
        self.groups: list[DependencyGroup] = [
            g
            for g in self.graph.groups
            if g.prunable
            and (kind is None or g.kind == kind)
            and g.size > 1
            and not any(is_excluded(m.module, exclude) for m in g.producers)
        ]
        if not self.groups:
            what = f"{pattern} " if pattern else ""
            raise ValueError(
                f"{type(model).__name__} has no prunable {what}groups (see workbench.structure.trace_groups for why)"
            )
        self.parameters = dict(self.plain.named_parameters())
        self.scores = self._score(data, options)

    def _scored_members(self, group: DependencyGroup) -> list[Member]:
        if self.spec.needs_batchnorm:
            return [
                m
                for m in group.members
                if m.param.endswith(".weight") and isinstance(self.plain.get_submodule(m.module), NORM_LAYERS)
            ]
        return [
            m
            for m in group.members
            if m.param.endswith(".weight") and _output_dim(self.plain.get_submodule(m.module)) == m.dim
        ]

    def _score(self, data, options) -> list[torch.Tensor]:
        members = {g.id: self._scored_members(g) for g in self.groups}
        for group in self.groups:
            if not members[group.id]:
                raise ValueError(
                    f"criterion {self.criterion!r} cannot score group {group.id} ({group}); "
                    f"it has no {'BatchNorm' if self.spec.needs_batchnorm else 'producing layer'}"
                )
        names = sorted({m.param for ms in members.values() for m in ms})
        elements = self.spec.fn(self.plain, names, data, **options)
        root = self.spec.reduce == "l2"  # a root of mean squares; every other reduction averages the unit's scores
        scores = []
        for group in self.groups:
            per_member = []
            for m in members[group.id]:
                element = elements[m.param].detach()
                unit = m.unit_slices(element.square() if root else element, group.size).double().mean(1).cpu()
                per_member.append(_normalized(unit.sqrt() if root else unit))
            scores.append(torch.stack(per_member).mean(0))
        return scores

    def plan(self, sparsity: float) -> tuple[dict[int, torch.Tensor], list[str]]:
        """Removed units by group id at ``sparsity`` (fraction of units), and notes on rounding."""
        sparsity = check_sparsity(sparsity)
        notes = []
        minimum = [min(self.keep_multiple, g.size) for g in self.groups]
        if self.scope == "local":
            counts = []
            for group, low in zip(self.groups, minimum):
                count = round(sparsity * group.size)
                if count > group.size - low:
                    notes.append(
                        f"group {group.id} ({_label(group)}): sparsity {sparsity:g} would leave fewer than {low} "
                        f"of its {group.size} units; kept {low}"
                    )
                    count = group.size - low
                counts.append(count)
        else:
            counts = self._global_counts(sparsity, minimum)
        removed = {}
        for group, scores, count, low in zip(self.groups, self.scores, counts, minimum):
            kept = group.size - count
            rounded = min(group.size, max(low, math.ceil(kept / self.keep_multiple) * self.keep_multiple))
            if rounded != kept:
                notes.append(
                    f"group {group.id} ({_label(group)}): keeps {rounded} units instead of {kept} (a multiple of "
                    f"{self.keep_multiple})"
                )
            order = scores.argsort(stable=True)
            if group.size - rounded:
                removed[group.id] = order[: group.size - rounded].sort().values
        return removed, notes

    def _global_counts(self, sparsity: float, minimum: list[int]) -> list[int]:
        total = sum(g.size for g in self.groups)
        wanted = round(sparsity * total)
        reachable = total - sum(minimum)
        if wanted > reachable:
            raise ValueError(
                f"global sparsity {sparsity:g} would remove {wanted} of {total} units, but every group keeps at least "
                f"{self.keep_multiple}: at most {reachable / total:.4f} is possible; lower the sparsity"
            )
        candidates = []
        for index, (scores, low) in enumerate(zip(self.scores, minimum)):
            order = scores.argsort(stable=True)
            candidates += [(float(scores[u]), index, int(u)) for u in order[: len(scores) - low]]
        candidates.sort()
        counts = [0] * len(self.groups)
        for _, index, _ in candidates[:wanted]:
            counts[index] += 1
        return counts

    def masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        """Bool masks (True = kept) by parameter name: every slice of every removed unit is False."""
        removed, _ = self.plan(sparsity)
        return self.masks_for(removed)

    def apply(self, sparsity: float) -> PruneResult:
        """Mask the model's whole groups at ``sparsity`` (AND-ed with its masks when composing)."""
        removed, notes = self.plan(sparsity)
        applied = apply_masks(self.model, self.masks_for(removed), compose=self.compose)
        final = {name: mask.clone() for name, mask in applied.items()}
        report = report_from_masks(final, notes)
        return PruneResult(report.layers, report.notes, masks=final)

    def masks_for(self, removed: dict[int, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Whole-group masks that remove ``removed`` ({group id: unit indices})."""
        by_id = {g.id: g for g in self.groups}
        masks: dict[str, torch.Tensor] = {}
        for gid, units in removed.items():
            group = by_id[gid]
            for m in group.members:
                if m.param not in self.parameters:
                    continue  # buffers (running statistics) follow their layer when it shrinks
                mask = masks.setdefault(m.param, torch.ones_like(self.parameters[m.param], dtype=torch.bool))
                mask.index_fill_(m.dim, m.indices(units, group.size).to(mask.device), False)
        return masks
