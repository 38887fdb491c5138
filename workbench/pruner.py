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
    >>> result = wb.prune(model, sparsity=0.5, criterion="magnitude", pattern="unstructured", scope="global")
    >>> round(result.sparsity, 4)
    0.5
    >>> wb.masks.undo(model)
"""

from __future__ import annotations

import contextlib
import copy
import re
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

from .criteria import get_criterion
from .masks import apply_masks, dense_parameter, functional_weights, get_masks, qualified, unmasked
from .patterns import Target, build_targets, nm_keep, parse_pattern, prunable_layers

SCOPES = ("local", "global")
REDUCTIONS = ("l2", "sum", "mean")
NORMALIZATIONS = (None, "lamp")


def check_sparsity(sparsity, what: str = "sparsity") -> float:
    """Return ``sparsity`` as a float, or raise ValueError unless 0 <= sparsity < 1."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1) (the fraction of weights to prune), got {sparsity!r}")
    return value


@dataclass
class LayerSparsity:
    name: str  # state_dict name of the parameter
    shape: tuple[int, ...]
    total: int
    pruned: int

    @property
    def sparsity(self) -> float:
        return self.pruned / self.total if self.total else 0.0

    @property
    def kept(self) -> int:
        return self.total - self.pruned


@dataclass
class SparsityReport:
    """Per-parameter and overall sparsity; ``str()`` is a table."""

    layers: list[LayerSparsity]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(layer.total for layer in self.layers)

    @property
    def pruned(self) -> int:
        return sum(layer.pruned for layer in self.layers)

    @property
    def sparsity(self) -> float:
        return self.pruned / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        rows = [
            {
                "name": l.name,
                "shape": list(l.shape),
                "total": l.total,
                "pruned": l.pruned,
                "kept": l.kept,
                "sparsity": l.sparsity,
            }
            for l in self.layers
        ]
        return {
            "layers": rows,
            "total": self.total,
            "pruned": self.pruned,
            "sparsity": self.sparsity,
            "notes": self.notes,
        }

    def __str__(self) -> str:
        width = max([len(l.name) for l in self.layers] + [5])
        lines = [f"{'layer':<{width}}  {'shape':<16} {'kept':>9} {'total':>9} {'sparsity':>9}"]
        for l in self.layers:
            shape = "×".join(map(str, l.shape))
            lines.append(f"{l.name:<{width}}  {shape:<16} {l.kept:>9,} {l.total:>9,} {l.sparsity:>9.2%}")
        lines.append(
            f"{'all':<{width}}  {'':<16} {self.total - self.pruned:>9,} {self.total:>9,} {self.sparsity:>9.2%}"
        )
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


@dataclass
class PruneResult(SparsityReport):
    """What ``wb.prune`` did: the masks by state_dict name, and the sparsity table."""

    masks: dict[str, torch.Tensor] = field(default_factory=dict)


def report_from_masks(masks: dict[str, torch.Tensor], notes=()) -> SparsityReport:
    layers = [LayerSparsity(name, tuple(m.shape), m.numel(), int(m.numel() - m.sum())) for name, m in masks.items()]
    return SparsityReport(layers, list(notes))


def sparsity_report(model: nn.Module) -> SparsityReport:
    """Zeros in every Linear/Conv weight and every masked parameter of any model (masked or not).

    Example:
        >>> import workbench as wb
        >>> wb.sparsity_report(wb.build_model("mlp")).sparsity
        0.0
    """
    names = {qualified(name, "weight") for name in prunable_layers(model)} | set(get_masks(model))
    layers = []
    for name, _ in model.named_parameters():  # keeps module order; masked weights appear as .original
        plain = re.sub(r"(^|\.)parametrizations\.", r"\1", name).removesuffix(".original")
        if plain in names:
            module_name, _, leaf = plain.rpartition(".")
            value = getattr(model.get_submodule(module_name), leaf)
            layers.append(LayerSparsity(plain, tuple(value.shape), value.numel(), int((value == 0).sum())))
    return SparsityReport(layers)


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
        reduce: how element scores become group scores: "l2", "sum" or "mean".
        normalize: None or "lamp" (layer-adaptive scores, for global scope).
        compose: score the masked model as it is, and AND new masks with the current ones.
        criterion_options: extra keyword arguments of the criterion (e.g. seed, max_batches).
    """

    def __init__(
        self,
        model,
        criterion="magnitude",
        pattern="unstructured",
        scope="local",
        data=None,
        exclude=(),
        reduce="l2",
        normalize=None,
        compose=False,
        criterion_options=None,
    ):
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
        if reduce not in REDUCTIONS:
            raise ValueError(f"unknown reduce {reduce!r}; choose one of {', '.join(REDUCTIONS)}")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"unknown normalize {normalize!r}; choose None or 'lamp'")
        if isinstance(exclude, str):
            exclude = (exclude,)
        self.model, self.scope, self.compose = model, scope, compose
        self.criterion = get_criterion(criterion)
        if self.criterion.needs_data and data is None:
            raise ValueError(
                f"criterion {criterion!r} scores with data: pass data=<DatasetSplits, Dataset, DataLoader or (inputs, labels)>"
            )
        self.pattern = parse_pattern(pattern)
        self.targets: list[Target] = build_targets(model, self.pattern, exclude)
        self.names = [name for target in self.targets for name in target.group_ids]
        self.weights = {name: dense_parameter(model, name).detach() for name in self.names}
        current = get_masks(model)
        self.current_masks = {name: current[name].clone() for name in self.names if name in current}
        with contextlib.nullcontext() if compose else unmasked(model):  # score the dense model unless composing
            scores = self.criterion.fn(model, self.names, data, **(criterion_options or {}))
        self.scores = {name: scores[name].detach() for name in self.names}
        if self.pattern.kind == "nm":
            self.nm_masks = {
                name: nm_keep(self.scores[name].cpu(), ids, t.num_groups, self.pattern.n, self.pattern.m).to(
                    self.weights[name].device
                )
                for t in self.targets
                for name, ids in t.group_ids.items()
            }
            return
        group_scores = [self._group_scores(t, reduce) for t in self.targets]
        if normalize == "lamp":
            group_scores = [_lamp(s) for s in group_scores]
        self.local_ranks = [_ranks(s) for s in group_scores]
        self._rank_globally(group_scores)

    def _group_scores(self, target: Target, reduce: str) -> torch.Tensor:
        scores = target.group_scores({n: self.scores[n].cpu() for n in target.group_ids}, reduce)
        if self.compose and self.current_masks:
            alive = torch.zeros(target.num_groups, dtype=torch.long)
            for name, ids in target.group_ids.items():
                if name in self.current_masks:
                    inside = ids >= 0
                    alive.scatter_add_(0, ids[inside], self.current_masks[name].cpu()[inside].long())
                else:
                    alive += target.group_sizes
            scores = torch.where(alive == 0, torch.tensor(float("-inf"), dtype=scores.dtype), scores)
        return scores

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
        if self.pattern.kind == "nm":
            fixed = self.pattern.fixed_sparsity
            if layer_sparsity or (sparsity is not None and abs(check_sparsity(sparsity) - fixed) > 1e-9):
                raise ValueError(
                    f"{self.pattern.n}:{self.pattern.m} fixes the sparsity at {fixed:g}; pass sparsity=None or {fixed:g}"
                )
            return self._composed(dict(self.nm_masks)), notes
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
        predictions = self.logits(masks, inputs.to(device)).argmax(1).cpu()
        return (predictions == labels).float().mean().item()


def prune(
    model: nn.Module,
    sparsity: float | None = 0.5,
    criterion: str = "magnitude",
    pattern: str = "unstructured",
    scope: str = "local",
    data=None,
    exclude=(),
    layer_sparsity: dict[str, float] | None = None,
    compose: bool = False,
    iterations: int = 1,
    coupled: bool = False,
    example_inputs=None,
    **options,
) -> PruneResult:
    """Mask ``model`` in place and report what was pruned; a failed call leaves the model untouched.

    Args:
        sparsity: fraction of the pruned layers' weights to remove, in [0, 1) (None with N:M patterns).
        criterion, pattern, scope, data, exclude: see ``Pruner``.
        layer_sparsity: per-target sparsities by module name (local scope); others use ``sparsity``.
        compose: keep the current masks and prune further, instead of replacing them.
        iterations: > 1 prunes in that many rounds on an exponential schedule, re-scoring the
            masked model each round (iterative SynFlow and friends).
        coupled: with a neuron/filter/channel/head pattern, prune whole dependency groups
            (``structure.GroupPruner``): every slice of a removed unit is masked (rows, biases,
            BatchNorm, the next layers' columns, layers tied by residual adds), so ``wb.shrink``
            removes them all. ``sparsity`` is then the fraction of each group's units.
        example_inputs: a batch to trace a user's model with when ``coupled`` (ours make their own).
        **options: ``reduce``, ``normalize`` and ``criterion_options`` of ``Pruner``
            (``criterion_options`` and ``keep_multiple`` of ``GroupPruner`` when ``coupled``).

    Example:
        >>> import workbench as wb
        >>> model = wb.pretrained("cnn")
        >>> result = wb.prune(model, sparsity=0.5, criterion="magnitude", pattern="filter", scope="global")
        >>> 0.45 < result.sparsity < 0.55
        True
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if coupled:
        from .structure.group_prune import GroupPruner  # structure builds on this module

        if iterations != 1 or layer_sparsity or set(options) - {"criterion_options", "keep_multiple"}:
            raise ValueError(
                "coupled=True prunes one sparsity over whole groups: iterations, layer_sparsity, reduce and normalize do not apply"
            )
        pruner = GroupPruner(
            model,
            criterion,
            example_inputs,
            pattern=pattern,
            scope=scope,
            data=data,
            exclude=exclude,
            compose=compose,
            **options,
        )
        return pruner.apply(check_sparsity(0.0 if sparsity is None else sparsity))
    if example_inputs is not None:
        raise ValueError("example_inputs traces the model for coupled=True; per-layer patterns do not need it")
    if iterations == 1:
        return Pruner(model, criterion, pattern, scope, data, exclude, compose=compose, **options).apply(
            sparsity, layer_sparsity
        )
    if sparsity is None or layer_sparsity:
        raise ValueError("iterations > 1 needs one overall sparsity (no layer_sparsity, no N:M)")
    density = 1 - check_sparsity(sparsity)
    work = copy.deepcopy(model)  # rounds run on a copy so a failure leaves the model untouched
    if not compose:
        for mask in get_masks(work).values():
            mask.fill_(True)
    for round_index in range(1, iterations + 1):
        step = sparsity if round_index == iterations else 1 - density ** (round_index / iterations)
        result = Pruner(work, criterion, pattern, scope, data, exclude, compose=True, **options).apply(step)
    apply_masks(model, result.masks)
    return result
