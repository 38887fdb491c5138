"""Train-time pruning: ``GradualPruner.step()`` after every optimizer step follows a sparsity schedule.

At each pruning step of the schedule the criterion scores the current weights (or, for a criterion
that builds its scores while the weights train, such as SNIP-momentum and movement, the scores
accumulated since the start) and the model is masked to exactly the scheduled sparsity, composing with
the masks it has: a pruned weight never comes back, and since masks are parametrizations, pruned
weights stay zero through any optimizer's steps, whatever its state holds for them.

Example:
    >>> import torch, workbench as wb
    >>> from torch.nn import functional as F
    >>> model, data = wb.pretrained("mlp"), wb.load_dataset("digits")
    >>> s = wb.schedule("cubic", initial=0.0, final=0.8, start=0, end=20, every=5)
    >>> gp = wb.GradualPruner(model, schedule=s, criterion="magnitude", scope="global")
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    >>> x, y = data.train.tensors
    >>> for _ in range(25):
    ...     optimizer.zero_grad()
    ...     F.cross_entropy(model(x[:64]), y[:64]).backward()
    ...     optimizer.step()
    ...     _ = gp.step()
    >>> round(gp.sparsity(), 4)
    0.8
"""

from __future__ import annotations

import torch
from torch import nn

from .criteria import get_criterion
from .masks import apply_masks, dense_parameter, get_masks
from .patterns import build_targets
from .pruner import Pruner
from .reports import PruneResult, report_from_masks
from .schedules import Schedule


class GradualPruner:
    """Prune ``model`` along ``schedule`` while it trains; call ``step()`` after each ``optimizer.step()``.

    Args:
        model: the model being trained (masked in place at pruning steps).
        schedule: a ``Schedule`` from ``wb.schedule`` (its steps count ``step()`` calls from 0).
        criterion, pattern, scope, data, exclude, criterion_options: as ``wb.Pruner``; a criterion with
            an ``update`` (``snip_momentum``, ``movement``) scores from what it gathered during training.
        progressive: 0 removes what a pruning step chooses at once; k > 0 removes it over the next k steps
            through interpolated masks (the weakest weights of the chosen groups first), so a filter or
            head fades out instead of vanishing (progressive pruning, as Neural Compressor describes it).
        **options: ``reduce`` or ``normalize`` of ``Pruner``.

    Attributes:
        events: one ``(step, target sparsity, PruneResult)`` per pruning step taken.
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: Schedule,
        criterion: str = "magnitude",
        pattern: str = "unstructured",
        scope: str = "global",
        data=None,
        exclude=(),
        criterion_options=None,
        progressive: int = 0,
        **options,
    ):
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must come from wb.schedule(...), got {type(schedule).__name__}")
        if isinstance(progressive, bool) or not isinstance(progressive, int) or progressive < 0:
            raise ValueError(f"progressive must be a whole number of steps >= 0, got {progressive!r}")
        if progressive >= schedule.every and schedule.end > schedule.start:
            raise ValueError(
                f"progressive ({progressive}) must be shorter than the schedule's every ({schedule.every}): "
                "one fade ends before the next pruning step"
            )
        if unknown := sorted(set(options) - {"reduce", "normalize"}):
            raise ValueError(f"GradualPruner takes no option {unknown[0]!r}; its options are: reduce, normalize")
        self.criterion = get_criterion(criterion)
        if self.criterion.needs_data and self.criterion.update is None and data is None:
            raise ValueError(f"criterion {criterion!r} scores with data: pass data=...")
        self.targets = build_targets(model, pattern, exclude)  # ValueError when nothing can be pruned
        self.model, self.schedule = model, schedule
        self.settings = {
            "criterion": criterion,
            "pattern": pattern,
            "scope": scope,
            "data": data,
            "exclude": exclude,
            "criterion_options": criterion_options,
            **options,
        }
        self.names = [name for target in self.targets for name in target.group_ids]
        self.scores: dict[str, torch.Tensor] = {}
        self.step_count = 0  # step() calls so far; the next call is step number ``step_count``
        self.events: list[tuple[int, float, PruneResult]] = []
        self.progressive = progressive
        self._fading: list[dict[str, torch.Tensor]] = []  # masks still to apply, one per coming step

    def step(self) -> PruneResult | None:
        """Record this training step's scores; at a pruning step, mask to the schedule's sparsity."""
        step = self.step_count
        if self.criterion.update is not None:
            self._accumulate()
        self.step_count += 1
        if self._fading:
            apply_masks(self.model, self._fading.pop(0))
        if not self.schedule.is_pruning_step(step):
            return None
        target = self.schedule(step)
        pruner = Pruner(
            self.model,
            compose=True,
            scores=self.scores if self.criterion.update is not None else None,
            **self.settings,
        )
        if self.progressive:
            final = pruner.masks(target)
            report = report_from_masks(final, [f"reached over the next {self.progressive} steps"])
            result = PruneResult(report.layers, report.notes, masks=final)
            self._fading = interpolated_masks(self.model, get_masks(self.model), final, self.progressive + 1)
            apply_masks(self.model, self._fading.pop(0))
        else:
            result = pruner.apply(target)  # exact: composes with the current masks, replaced in one assignment
        self.events.append((step, target, result))
        return result

    @torch.no_grad()
    def _accumulate(self) -> None:
        for name in self.names:
            weight = dense_parameter(self.model, name)
            gradient = weight.grad
            if gradient is None:
                raise ValueError(
                    f"{name} has no gradient: call GradualPruner.step() after loss.backward() and optimizer.step(), "
                    "before the next zero_grad()"
                )
            self.scores[name] = self.criterion.update(self.scores.get(name), weight.detach(), gradient)

    def sparsity(self) -> float:
        """The fraction of the pruned layers' weights that are masked now."""
        masks = get_masks(self.model)
        chosen = [masks[name] for name in self.names if name in masks]
        total = sum(dense_parameter(self.model, name).numel() for name in self.names)
        return (sum(int((~m).sum()) for m in chosen) / total) if total else 0.0


def interpolated_masks(model: nn.Module, start: dict, end: dict, count: int) -> list[dict[str, torch.Tensor]]:
    """``count`` masks moving from ``start`` to ``end`` (kept sets shrinking), the last one equal to ``end``.

    The weights that ``end`` removes go in ``count`` near-equal portions, smallest magnitude first, so a
    structured group fades out weight by weight. ``start`` defaults to all-True for weights it lacks.
    """
    frames = [{} for _ in range(count)]
    for name, final in end.items():
        first = start.get(name, torch.ones_like(final))
        leaving = (first & ~final).flatten()
        order = dense_parameter(model, name).detach().abs().flatten()[leaving].argsort(stable=True)
        positions = leaving.nonzero().squeeze(1)[order]
        for index in range(count):
            removed = round(len(positions) * (index + 1) / count)
            mask = first.clone().flatten()
            mask[positions[:removed]] = False
            frames[index][name] = mask.view_as(final)
    return frames
