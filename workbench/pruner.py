"""Score once, select fast: the ``Pruner`` behind ``wb.prune``, sliders, and sensitivity scans.

A ``Pruner`` scores the weights once (criterion), reduces scores to groups (pattern) and ranks the
groups once (scope). Asking for masks at any sparsity is then a comparison of cached ranks with a
threshold: no re-scoring, no sorting.

Exactness: with ``scope="local"`` every target prunes ``round(s × groups)`` groups (elements for
unstructured); with ``scope="global"`` the lowest-ranked groups are pruned until ``round(s × total)``
elements are reached (exact for unstructured, up to one group's size otherwise). Ties are broken by
lower position (layer order, then flat index) first, as a stable sort does.

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> pruner = Pruner(model, "magnitude", "unstructured", "global")
    >>> masks = pruner.masks(0.5)
    >>> round(1 - sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values()), 4)
    0.5
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.func import functional_call

from .criteria import get_criterion
from .criteria.registry import REDUCTIONS
from .masks import apply_masks, dense_parameter, functional_weights, get_masks, unmasked
from .patterns import Target, build_targets, parse_pattern
from .reports import SCOPES, PruneResult, check_choice, check_sparsity, report_from_masks

NORMALIZATIONS = ("auto", None, "lamp")


def _lamp(scores: torch.Tensor) -> torch.Tensor:
    """LAMP: s_u² / Σ_{v ranked at or above u} s_v², comparable across layers (Lee et al. 2021)."""
    order = scores.argsort(stable=True)
    squared = scores[order] ** 2
    suffix = squared.flip(0).cumsum(0).flip(0)
    normalized = torch.empty_like(scores)
    normalized[order] = squared / suffix.clamp_min(torch.finfo(scores.dtype).tiny)
    return normalized


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """Position of each entry in a stable ascending sort (0 = pruned first)."""
    ranks = torch.empty_like(scores, dtype=torch.long)
    ranks[scores.argsort(stable=True)] = torch.arange(len(scores))
    return ranks


class Pruner:
    """Cached scores and ranks of one (model, criterion, pattern, scope); masks at any sparsity, fast.

    Args:
        model: any ``nn.Module``; it is not modified until ``apply``.
        criterion: a name from ``workbench.criteria.CRITERIA``.
        pattern: "unstructured", "N:M", "blockRxC", "kernel", "neuron"/"filter", "channel", "head".
        scope: "local" (each layer its own ranking) or "global" (one ranking; never empties a layer).
        data: what data-driven criteria score on (a DatasetSplits uses its .train).
        exclude: module names or globs left dense.
        reduce: how element scores become group scores: "l2", "sum" or "mean" (default: the criterion's own,
            e.g. "sum" for ``l1``, else "l2").
        normalize: "auto" (default: LAMP for structured patterns under global scope, so that no layer is cut
            down to a single unit while others stay whole; raw scores otherwise), None (raw scores) or "lamp".
        compose: score the masked model as it is, and AND new masks with the current ones.
        criterion_options: extra keyword arguments of the criterion (e.g. seed, max_batches).
        scores: element scores by weight name, computed elsewhere (a train-time criterion's running scores);
            the criterion then only names them (its reduction still applies).
    """

    def __init__(
        self,
        model,
        criterion="magnitude",
        pattern="unstructured",
        scope="local",
        data=None,
        exclude=(),
        reduce=None,
        normalize="auto",
        compose=False,
        criterion_options=None,
        scores=None,
    ):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        check_choice("scope", scope, SCOPES)
        self.criterion = get_criterion(criterion)
        reduce = self.criterion.reduce or "l2" if reduce is None else reduce
        check_choice("reduce", reduce, REDUCTIONS)
        check_choice("normalize", normalize, NORMALIZATIONS)
        if not isinstance(compose, bool):
            raise ValueError(f"compose must be True or False, got {compose!r}")
        options = dict(criterion_options or {})
        self.criterion.check_options(options)
        self.model, self.scope, self.compose = model, scope, compose
        self.pattern = parse_pattern(pattern)
        if normalize == "auto":
            normalize = "lamp" if scope == "global" and self.pattern.structured else None
        self.normalize = normalize
        self.targets: list[Target] = build_targets(model, self.pattern, exclude)
        self.names = [name for target in self.targets for name in target.group_ids]
        self.weights = {name: dense_parameter(model, name).detach() for name in self.names}
        current = get_masks(model)
        self.current_masks = {name: current[name].clone() for name in self.names if name in current}
        if scores is None:
            with contextlib.nullcontext() if compose else unmasked(model):  # score the dense model unless composing
                scores = self.criterion.score(model, self.names, data, **options)
        elif missing := [name for name in self.names if name not in scores]:
            raise ValueError(f"scores lack {missing}; give a score tensor for every pruned weight")
        self.scores = {name: scores[name].detach() for name in self.names}
        keep = self.pattern.spec.keep
        if keep is not None:  # fixed-sparsity patterns (N:M) choose inside each group
            self.fixed_masks = {
                name: keep(self.scores[name].cpu(), ids, t.num_groups, self.pattern).to(self.weights[name].device)
                for t in self.targets
                for name, ids in t.group_ids.items()
            }
            return
        group_scores = []
        for target in self.targets:
            scores, dead = self._group_scores(target, reduce)
            if normalize == "lamp":  # over the live groups only; pruned ones then rank first
                scores = _lamp(scores.masked_fill(dead, 0.0))
            group_scores.append(scores.masked_fill(dead, float("-inf")))
        self.local_ranks = [_ranks(s) for s in group_scores]
        self._rank_globally(group_scores)

    @property
    def name(self) -> str:
        """The pattern as written: "2:4", "block4x4", "neuron"…"""
        p = self.pattern
        return {"nm": f"{p.n}:{p.m}", "block": f"block{p.block[0]}x{p.block[1]}" if p.block else ""}.get(
            p.kind, (p.spec.names or (p.kind,))[0]
        )

    def _group_scores(self, target: Target, reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Group scores, and which groups are pruned already (all False unless composing)."""
        scores = target.group_scores({n: self.scores[n].cpu() for n in target.group_ids}, reduce)
        dead = torch.zeros(target.num_groups, dtype=torch.bool)
        if self.compose and self.current_masks:
            alive = torch.zeros(target.num_groups, dtype=torch.long)
            for name, ids in target.group_ids.items():
                if name in self.current_masks:
                    inside = ids >= 0
                    alive.scatter_add_(0, ids[inside], self.current_masks[name].cpu()[inside].long())
                else:
                    alive += target.group_sizes
            dead = alive == 0
        return scores, dead

    def _rank_globally(self, group_scores: list[torch.Tensor]) -> None:
        """One stable ranking of all groups; each target's best group is held back (no layer is emptied)."""
        reserved = [int(s.argsort(stable=True)[-1]) for s in group_scores]
        all_scores = torch.cat(group_scores)
        offsets = torch.tensor([0] + [t.num_groups for t in self.targets]).cumsum(0)
        held = offsets[:-1] + torch.tensor(reserved)
        candidates = torch.ones(len(all_scores), dtype=torch.bool)
        candidates[held] = False
        order = torch.nonzero(candidates).squeeze(1)[all_scores[candidates].argsort(stable=True)]
        ranks = torch.full((len(all_scores),), len(all_scores), dtype=torch.long)  # held back: never reached
        ranks[order] = torch.arange(len(order))
        sizes = torch.cat([t.group_sizes for t in self.targets])
        self.global_ranks = [ranks[offsets[i] : offsets[i + 1]] for i in range(len(self.targets))]
        self.global_cumulative = sizes[order].cumsum(0)
        self.total = int(sizes.sum())

    def _target_sparsities(self, sparsity, layer_sparsity) -> list[float]:
        names = {t.name for t in self.targets}
        layer_sparsity = dict(layer_sparsity or {})
        unknown = set(layer_sparsity) - names
        if unknown:
            raise ValueError(
                f"layer_sparsity names {sorted(unknown)} are not pruned by this pattern; choose from {sorted(names)}"
            )
        base = 0.0 if sparsity is None else check_sparsity(sparsity)
        return [check_sparsity(layer_sparsity.get(t.name, base), f"sparsity of {t.name!r}") for t in self.targets]

    def masks(
        self, sparsity: float | None = None, layer_sparsity: dict[str, float] | None = None
    ) -> dict[str, torch.Tensor]:
        """Bool masks (True = kept) by state_dict name; the model is not touched."""
        masks, _ = self._select(sparsity, layer_sparsity)
        return masks

    def _select(self, sparsity, layer_sparsity) -> tuple[dict[str, torch.Tensor], list[str]]:
        notes = []
        fixed = self.pattern.fixed_sparsity
        if fixed is not None:
            if layer_sparsity or (sparsity is not None and abs(check_sparsity(sparsity) - fixed) > 1e-9):
                raise ValueError(f"{self.name} fixes the sparsity at {fixed:g}; pass sparsity=None or {fixed:g}")
            return self._composed(dict(self.fixed_masks)), notes
        if self.scope == "global":
            if layer_sparsity:
                raise ValueError("layer_sparsity sets each layer's own sparsity: use it with scope='local'")
            wanted = round(check_sparsity(0.0 if sparsity is None else sparsity) * self.total)
            reachable = int(self.global_cumulative[-1]) if len(self.global_cumulative) else 0
            if wanted > reachable:
                raise ValueError(
                    f"global sparsity {sparsity} would empty a layer: with one group kept per layer at most "
                    f"{reachable / self.total:.4f} is possible; lower the sparsity or exclude small layers"
                )
            threshold = int(torch.searchsorted(self.global_cumulative, wanted, right=True))
            keeps = [ranks >= threshold for ranks in self.global_ranks]
        else:
            keeps = []
            for target, ranks, s in zip(
                self.targets, self.local_ranks, self._target_sparsities(sparsity, layer_sparsity)
            ):
                count = round(s * target.num_groups)
                if count >= target.num_groups:
                    count = target.num_groups - 1
                    notes.append(f"{target.name}: sparsity {s} would remove all {target.num_groups} groups; kept one")
                keeps.append(ranks >= count)
        masks = {}
        for target, keep in zip(self.targets, keeps):
            for name, mask in target.element_masks(keep).items():
                masks[name] = mask.to(self.weights[name].device)
        return self._composed(masks), notes

    def _composed(self, masks):
        if self.compose:
            return {
                name: mask & self.current_masks[name] if name in self.current_masks else mask
                for name, mask in masks.items()
            }
        return masks

    def apply(self, sparsity: float | None = None, layer_sparsity: dict[str, float] | None = None) -> PruneResult:
        """Mask the model at ``sparsity`` (replacing its masks, or AND-ing them when composing)."""
        masks, notes = self._select(sparsity, layer_sparsity)
        final = {name: mask.clone() for name, mask in apply_masks(self.model, masks, compose=self.compose).items()}
        report = report_from_masks(final, notes)
        return PruneResult(report.layers, report.notes, masks=final)

    @torch.no_grad()
    def logits(self, masks: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """Outputs of the model with ``masks`` applied to its dense weights (the model is not changed)."""
        was_training = self.model.training
        self.model.eval()
        try:
            return functional_call(self.model, functional_weights(self.model, self.weights, masks), (inputs,))
        finally:
            self.model.train(was_training)

    def accuracy(self, masks: dict[str, torch.Tensor], split) -> float:
        """Top-1 accuracy with ``masks`` on a split (a TensorDataset or an (inputs, labels) tuple)."""
        inputs, labels = split.tensors if hasattr(split, "tensors") else split
        device = next(iter(self.weights.values())).device
        with torch.inference_mode():  # no autograd bookkeeping: about 15 % of a slider move's CNN evaluation
            predictions = self.logits(masks, inputs.to(device)).argmax(1).cpu()
        return (predictions == labels).float().mean().item()
