"""``wb.shrink``: a physically smaller plain model with the same outputs as the pruned one.

Two ways in:

* from the model's structured masks (after ``wb.prune(model, pattern="filter", ...)``): units whose
  rows are all zero go; a removed unit that still emits a constant is folded into the next biases
  or, where no bias can stand in for it (a zero-padded conv), kept and named in the report;
* from a sparsity (``wb.shrink(model, sparsity=0.5, pattern="filter", criterion="l1")``): whole
  dependency groups are scored and removed (``structure.GroupPruner``), so every chosen unit goes.

Either way the original model is left untouched and, in eval mode, the shrunk model computes what
the masked one does.

Example:
    >>> import torch, workbench as wb
    >>> model = wb.pretrained("cnn")
    >>> small = wb.shrink(model, sparsity=0.5, pattern="filter")
    >>> wb.count_parameters(small) < wb.count_parameters(model) // 3
    True
    >>> tuple(small.stem[0].weight.shape)
    (16, 1, 3, 3)
"""

from __future__ import annotations

from torch import nn

from .masks import get_masks
from .structure.group_prune import GroupPruner
from .structure.shrink import ShrinkReport, shrink_masked


def shrink_with_report(
    model: nn.Module,
    example_inputs=None,
    *,
    masks=None,
    sparsity=None,
    pattern=None,
    criterion="l1",
    scope="local",
    data=None,
    keep_multiple: int = 1,
    exclude=(),
    criterion_options=None,
    exact: bool = True,
) -> tuple[nn.Module, ShrinkReport]:
    """A smaller plain copy of ``model`` without its pruned units, and the ``ShrinkReport`` (shapes before → after,
    parameters, notes, timings); the original is not modified.

    Args:
        model: a masked model (structured masks from ``wb.prune``) or any model when ``sparsity`` is given.
        example_inputs: a batch (tensor or tuple) to trace the model with; workbench models make their own.
        masks: bool masks by parameter name to shrink instead of the model's own (``PruneResult.masks``).
        sparsity: fraction of each dependency group's units to remove now (None: shrink the masks).
        pattern: "neuron" or "filter" (coupled channel groups), "head" (attention heads), None (all groups).
        criterion: a name from ``workbench.criteria.CRITERIA`` (e.g. "l1", "l2", "fpgm", "bn_scale",
            "apoz", "taylor", "random").
        scope: "local" (every group the same fraction) or "global" (one ranking across groups).
        data: what data-driven criteria score on.
        keep_multiple: round the kept units of each group up to a multiple of this.
        exclude: module names or globs whose output groups stay whole.
        criterion_options: keyword options of the criterion (e.g. ``{"max_batches": 2}``).
        exact: True (default) shrinks only what keeps the masked model's outputs. False also shrinks the
            groups whose removal changes the function, such as a transformer's LayerNorm'd hidden width:
            ``report.changed`` names them, and the model needs fine-tuning. (An RMSNorm'd width stays
            exact either way: its weight is rescaled.)
    """
    if sparsity is None:
        if pattern is not None or exclude or criterion_options:
            raise ValueError(
                "pattern, exclude and criterion_options choose units to prune: pass them with sparsity=, "
                "or prune first and shrink the masks"
            )
        return shrink_masked(model, masks, example_inputs, keep_multiple=keep_multiple, exact=exact)
    if masks is not None:
        raise ValueError("pass either masks (shrink what they removed) or sparsity (choose units now), not both")
    pruner = GroupPruner(
        model,
        criterion,
        example_inputs,
        pattern=pattern,
        scope=scope,
        data=data,
        keep_multiple=keep_multiple,
        exclude=exclude,
        criterion_options=criterion_options,
        exact=exact,
    )
    removed, notes = pruner.plan(sparsity)
    chosen = pruner.masks_for(removed)
    current = get_masks(model)
    combined = {**current, **{name: mask & current[name] if name in current else mask for name, mask in chosen.items()}}
    small, report = shrink_masked(model, combined, pruner.inputs, keep_multiple=keep_multiple, graph=pruner.graph)
    report.notes[:0] = notes
    return small, report


def shrink(model: nn.Module, example_inputs=None, **options) -> nn.Module:
    """A smaller plain copy of ``model`` without its pruned units; the original is not modified.

    Takes the arguments of ``shrink_with_report`` and returns only the model.
    """
    return shrink_with_report(model, example_inputs, **options)[0]
