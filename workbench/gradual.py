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
from .masks import dense_parameter, get_masks
from .patterns import build_targets
from .pruner import Pruner
from .reports import PruneResult
from .schedules import Schedule


class GradualPruner:
    """Prune ``model`` along ``schedule`` while it trains; call ``step()`` after each ``optimizer.step()``.

    Args:
        model: the model being trained (masked in place at pruning steps).
        schedule: a ``Schedule`` from ``wb.schedule`` (its steps count ``step()`` calls from 0).
        criterion, pattern, scope, data, exclude, criterion_options: as ``wb.Pruner``; a criterion with
            an ``update`` (``snip_momentum``, ``movement``) scores from what it gathered during training.
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
        **options,
    ):
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must come from wb.schedule(...), got {type(schedule).__name__}")
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

    def step(self) -> PruneResult | None:
        """Record this training step's scores; at a pruning step, mask to the schedule's sparsity."""
        step = self.step_count
        if self.criterion.update is not None:
            self._accumulate()
        self.step_count += 1
        if not self.schedule.is_pruning_step(step):
            return None
        target = self.schedule(step)
        pruner = Pruner(
            self.model,
            compose=True,
            scores=self.scores if self.criterion.update is not None else None,
            **self.settings,
        )
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
