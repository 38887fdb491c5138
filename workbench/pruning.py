"""``wb.prune``: mask a model in place, per layer (``Pruner``) or over whole dependency groups (``GroupPruner``).

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> result = wb.prune(model, sparsity=0.5, criterion="magnitude", pattern="unstructured", scope="global")
    >>> round(result.sparsity, 4)
    0.5
    >>> wb.masks.undo(model)
"""

from __future__ import annotations

import copy

from torch import nn

from .masks import apply_masks, get_masks
from .pruner import Pruner
from .reports import PruneResult, check_sparsity
from .structure.group_prune import GroupPruner

PRUNER_OPTIONS = ("reduce", "normalize", "criterion_options")
COUPLED_OPTIONS = ("criterion_options", "keep_multiple", "exact")


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
        coupled: with a neuron/filter or head pattern, prune whole dependency groups
            (``structure.GroupPruner``): every slice of a removed unit is masked (rows, biases,
            BatchNorm, the next layers' columns, layers tied by residual adds), so ``wb.shrink``
            removes them all. ``sparsity`` is then the fraction of each group's units.
        example_inputs: a batch to trace a user's model with when ``coupled`` (ours make their own).
        **options: ``reduce``, ``normalize`` and ``criterion_options`` of ``Pruner``
            (``criterion_options``, ``keep_multiple`` and ``exact`` of ``GroupPruner`` when ``coupled``:
            ``exact=False`` also masks a LayerNorm'd hidden width, which ``wb.shrink(model, exact=False)``
            then removes).

    Example:
        >>> import workbench as wb
        >>> model = wb.pretrained("cnn")
        >>> result = wb.prune(model, sparsity=0.5, criterion="magnitude", pattern="filter", scope="global")
        >>> 0.45 < result.sparsity < 0.55
        True
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    allowed = COUPLED_OPTIONS if coupled else PRUNER_OPTIONS
    if unknown := sorted(set(options) - set(allowed)):
        raise ValueError(
            f"prune(coupled={coupled}) takes no option {unknown[0]!r}; its options are: {', '.join(allowed)}"
        )
    if coupled:
        if iterations != 1 or layer_sparsity:
            raise ValueError(
                "coupled=True prunes one sparsity over whole groups: iterations and layer_sparsity do not apply"
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
