"""Regularizers that drive weights or whole groups to zero: L1, L2, group lasso over any pattern, BN-L1.

Each is a loss hook for ``wb.train(..., loss_hook=hook)`` (``loss + strength · penalty``), can take a
proximal (soft-threshold) step after each optimizer step (``step_hook=hook.proximal(lr)``), reports its
group norms (for histograms) and cuts the groups whose norm fell under a threshold into masks, ready for
``wb.shrink``. Group lasso uses the groups of any registered pattern (rows, filters, input channels,
blocks, kernels, heads); ``bn_l1`` is network slimming's L1 on BatchNorm γ (Liu et al. 2017).

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("cnn")
    >>> hook = wb.regularizers.group_lasso(model, pattern="filter", strength=1e-3)
    >>> loss = hook(model, torch.tensor(0.0))
    >>> bool(loss > 0), sorted(hook.group_norms(model))[:2]
    (True, ['block1.conv1', 'block1.conv2'])
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
from torch import nn

from .criteria import following_batchnorm
from .masks import apply_masks, dense_parameter, get_masks, qualified
from .patterns import Target, build_targets
from .reports import PruneResult, check_sparsity, report_from_masks

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
EPSILON = 1e-12  # keeps the gradient of a group norm finite at zero


def _strength(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"strength must be a number >= 0, got {value!r}")
    return float(value)


class Regularizer:
    """A penalty over groups of parameters: ``hook(model, loss) -> loss + strength · Σ_groups penalty``.

    ``targets`` say which elements form each group (as patterns do); ``kind`` is "l1" (Σ|w| over
    elements), "l2" (Σw²) or "group" (Σ‖w_g‖₂ over groups, i.e. group lasso).
    """

    def __init__(self, name: str, kind: str, targets: list[Target], strength: float, cut_targets=None):
        self.name, self.kind, self.targets, self.strength = name, kind, targets, _strength(strength)
        self.cut_targets = cut_targets or targets  # what ``cut`` masks, group for group (BN-L1: the conv rows)

    def _values(self, model: nn.Module, target: Target):
        for param_name, ids in target.group_ids.items():
            inside = ids >= 0
            yield dense_parameter(model, param_name), ids, inside

    def penalty(self, model: nn.Module) -> torch.Tensor:
        total = 0.0
        for target in self.targets:
            if self.kind == "group":
                total = total + (self._squared_norms(model, target) + EPSILON).sqrt().sum()
                continue
            for weight, _, inside in self._values(model, target):
                chosen = weight[inside]
                total = total + (chosen.abs() if self.kind == "l1" else chosen.square()).sum()
        return torch.as_tensor(total)

    def _squared_norms(self, model: nn.Module, target: Target) -> torch.Tensor:
        squared = None
        for weight, ids, inside in self._values(model, target):
            part = torch.zeros(target.num_groups, dtype=weight.dtype, device=weight.device)
            part = part.scatter_add(0, ids[inside].to(weight.device), weight[inside].square())
            squared = part if squared is None else squared + part
        return squared

    def __call__(self, model: nn.Module, loss: torch.Tensor) -> torch.Tensor:
        return loss + self.strength * self.penalty(model)

    @torch.no_grad()
    def group_norms(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The L2 norm of every group by target name (for L1/L2, every element is its own group: |w|)."""
        if self.kind == "group":
            return {t.name: self._squared_norms(model, t).sqrt().cpu() for t in self.targets}
        return {
            t.name: torch.cat([w[i].abs().flatten() for w, _, i in self._values(model, t)]).cpu() for t in self.targets
        }

    def proximal(self, lr: float) -> Callable[[nn.Module, int], None]:
        """A ``step_hook`` taking the proximal step of the penalty after each optimizer step (soft threshold).

        L1: w ← sign(w)·max(|w| − lr·λ, 0); group lasso: w_g ← w_g·max(1 − lr·λ/‖w_g‖, 0); L2: w ← w/(1 + 2·lr·λ).
        """
        step = _strength(lr) * self.strength

        @torch.no_grad()
        def hook(model: nn.Module, _step: int) -> None:
            for target in self.targets:
                if self.kind == "group":
                    norms = self._squared_norms(model, target).sqrt()
                    scale = (1 - step / norms.clamp_min(EPSILON)).clamp_min(0)
                for weight, ids, inside in self._values(model, target):
                    if self.kind == "l1":
                        weight[inside] = weight[inside].sign() * (weight[inside].abs() - step).clamp_min(0)
                    elif self.kind == "l2":
                        weight[inside] = weight[inside] / (1 + 2 * step)
                    else:
                        weight[inside] = weight[inside] * scale[ids[inside].to(weight.device)]

        return hook

    def cut(self, model: nn.Module, threshold: float | None = None, *, sparsity: float | None = None) -> PruneResult:
        """Mask every group whose norm is at most ``threshold`` (one group per layer always stays); or, with
        ``sparsity``, the weakest groups until that fraction of the groups (over all layers) is masked."""
        norms = self.group_norms(model)
        if (threshold is None) == (sparsity is None):
            raise ValueError("cut takes a threshold or a sparsity (one of them)")
        if sparsity is not None:
            everything = torch.cat(list(norms.values())).double()
            count = round(check_sparsity(sparsity) * len(everything))
            threshold = float(everything.sort().values[count - 1]) if count else -1.0
        masks = {}
        for target, cut in zip(self.targets, self.cut_targets):
            keep = norms[target.name] > threshold
            if not keep.any():
                keep[norms[target.name].argmax()] = True
            for name, mask in cut.element_masks(keep).items():
                masks[name] = mask.to(dense_parameter(model, name).device)
        applied = apply_masks(model, masks, compose=bool(get_masks(model)))
        final = {name: mask.clone() for name, mask in applied.items()}
        report = report_from_masks(final)
        return PruneResult(report.layers, report.notes, masks=final)


def l1(model: nn.Module, strength: float = 1e-4, exclude=()) -> Regularizer:
    """Σ|w| over the Linear/Conv weights: pushes single weights to exactly zero (with the proximal step)."""
    return Regularizer("l1", "l1", build_targets(model, "unstructured", exclude), strength)


def l2(model: nn.Module, strength: float = 1e-4, exclude=()) -> Regularizer:
    """Σw² over the Linear/Conv weights: shrinks weights but makes no zeros (like weight decay)."""
    return Regularizer("l2", "l2", build_targets(model, "unstructured", exclude), strength)


def group_lasso(model: nn.Module, pattern: str = "filter", strength: float = 1e-3, exclude=()) -> Regularizer:
    """Σ_g ‖w_g‖₂ over the groups of ``pattern`` (rows, filters, channels, blocks, kernels, heads)."""
    return Regularizer(f"group_lasso[{pattern}]", "group", build_targets(model, pattern, exclude), strength)


def bn_l1(model: nn.Module, strength: float = 1e-4) -> Regularizer:
    """Σ|γ| over the BatchNorm layers that follow a Linear/Conv (network slimming); ``cut`` masks each channel
    whose γ fell under the threshold (its filter, γ and β), so ``wb.shrink`` removes it."""
    targets, cuts = [], []
    for layer_name, norm in following_batchnorm(model).items():
        norm_name = next(name for name, m in model.named_modules() if m is norm)
        if norm.affine:
            targets.append(
                Target(norm_name, {qualified(norm_name, "weight"): torch.arange(norm.num_features)}, norm.num_features)
            )
            weight = model.get_submodule(layer_name).weight
            rows = torch.arange(weight.shape[0]).view(-1, *[1] * (weight.dim() - 1)).expand(weight.shape).clone()
            channels = torch.arange(norm.num_features)  # the whole channel goes: filter, γ and β
            ids = {
                qualified(layer_name, "weight"): rows,
                **{qualified(norm_name, p): channels for p in ("weight", "bias")},
            }
            cuts.append(Target(layer_name, ids, weight.shape[0]))
    if not targets:
        raise ValueError(
            f"bn_l1 regularizes the scales of BatchNorm layers that follow a Linear/Conv; {type(model).__name__} "
            "has none"
        )
    return Regularizer("bn_l1", "l1", targets, strength, cut_targets=cuts)


REGULARIZERS = {"l1": l1, "l2": l2, "group_lasso": group_lasso, "bn_l1": bn_l1}
