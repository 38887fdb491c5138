"""Exercises of notebooks 03 and 04: an N:M mask by hand, one head's zeros, global magnitude, an allocation.

Example:
    >>> import torch
    >>> def nm_mask(weight, n, m):
    ...     groups = weight.abs().reshape(weight.shape[0], -1, m)
    ...     keep = torch.zeros_like(groups, dtype=torch.bool)
    ...     keep.scatter_(-1, groups.topk(n, dim=-1).indices, True)
    ...     return keep.reshape(weight.shape)
    >>> check("nm_mask", nm_mask).passed
    True
"""

from __future__ import annotations

import torch
from torch import nn

from ..pruner import Pruner
from .basics import holder, reference_mask
from .checker import Wrong, as_bool_mask, as_number, call, check, exercise

__all__ = ["check", "reference_global"]


def _nm_cases():
    generator = torch.Generator().manual_seed(3)
    yield "case 1 (2:4 on an 8×16 matrix)", torch.randn(8, 16, generator=generator), 2, 4
    yield "case 2 (1:4 on a 6×8 matrix)", torch.randn(6, 8, generator=generator), 1, 4
    yield "case 3 (4:8 on a 5×16 matrix)", torch.randn(5, 16, generator=generator), 4, 8
    yield "case 4 (2:4 on a 100×300 matrix)", torch.randn(100, 300, generator=generator), 2, 4


@exercise(
    "nm_mask",
    hints=(
        "view the weight as rows × (inputs / m) × m: each last-dimension slice is one group of m consecutive inputs",
        "topk(n, dim=-1) of |w| per group gives the indices to keep; scatter_ them into a False mask",
    ),
)
def _check_nm_mask(attempt) -> str:
    cases = list(_nm_cases())
    for case, weight, n, m in cases:
        mask = as_bool_mask(call(attempt, weight.clone(), n, m, case=case), weight.shape, case)
        per_group = mask.reshape(weight.shape[0], -1, m).sum(-1)
        if (per_group != n).any():
            row, group = (per_group != n).nonzero()[0].tolist()
            raise Wrong(
                f"in {case} the group of inputs {group * m}–{group * m + m - 1} of row {row} keeps "
                f"{int(per_group[row, group])} of them; {n}:{m} keeps exactly {n} of every {m} consecutive inputs"
            )
        groups, kept = weight.abs().reshape(weight.shape[0], -1, m), mask.reshape(weight.shape[0], -1, m)
        weakest_kept = groups.masked_fill(~kept, float("inf")).amin(-1)
        strongest_pruned = groups.masked_fill(kept, -1.0).amax(-1)
        if (strongest_pruned > weakest_kept).any():
            raise Wrong(f"in {case} a group prunes a weight with a larger |w| than one it keeps")
        if not torch.equal(mask, reference_mask(weight, None, f"{n}:{m}")):
            raise Wrong(f"in {case} your mask differs from wb.Pruner's {n}:{m} mask")
    return f"your masks match wb.Pruner's N:M masks on all {len(cases)} cases"


@exercise(
    "one_head_zeros",
    hints=("a head owns 16 rows of each of q, k and v (64 inputs each) and 16 columns of out (64 outputs)",),
)
def _check_one_head(attempt) -> str:
    from ..zoo import pretrained

    answer = as_number(attempt, "my_answer")
    masks = Pruner(pretrained("transformer"), "magnitude", "head").masks(0.25)
    zeros = sum(int((~m).sum()) for name, m in masks.items() if name.startswith("blocks.0."))
    if answer != zeros:
        raise Wrong(f"not {answer:g}: count the q, k and v rows and the out columns of one head")
    return "that is one head: its q, k, v rows and its columns of the output projection"


def reference_global(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Global magnitude masks of named weights: ``wb.Pruner(..., scope="global")`` on layers holding them."""
    model = nn.Module()
    for index, weight in enumerate(weights.values()):
        model.add_module(f"layer{index}", holder(weight))
    masks = Pruner(model, "magnitude", "unstructured", "global").masks(sparsity)
    return {name: masks[f"layer{index}.weight"] for index, name in enumerate(weights)}


def _global_cases():
    from ..zoo import pretrained

    mlp, cnn = pretrained("mlp"), pretrained("cnn")
    generator = torch.Generator().manual_seed(4)
    toy = {"big": 2 * torch.randn(2, 3, generator=generator), "small": 0.1 * torch.randn(3, 2, generator=generator)}
    yield "case 1 (a layer of large weights and one of small weights, 40 %)", toy, 0.4
    yield "case 2 (the MLP's weights, 70 %)", {n: p.detach() for n, p in mlp.named_parameters() if "weight" in n}, 0.7
    cnn_weights = {n: p.detach() for n, p in cnn.named_parameters() if n.endswith("weight") and p.dim() in (2, 4)}
    yield "case 3 (the CNN's conv and linear weights, 50 %)", cnn_weights, 0.5
    yield "case 4 (the MLP's weights, 0 %)", {n: p.detach() for n, p in mlp.named_parameters() if "weight" in n}, 0.0


@exercise(
    "global_masks",
    hints=(
        "concatenate |w| of every layer into one vector, find the round(s × N) smallest of all N together, and "
        "cut every layer at that one threshold",
        "torch.cat([w.abs().flatten() for w in weights.values()]).kthvalue(k).values is the k-th smallest |w| "
        "overall (for k ≥ 1)",
    ),
)
def _check_global(attempt) -> str:
    cases = list(_global_cases())
    for case, weights, sparsity in cases:
        masks = call(attempt, {n: w.clone() for n, w in weights.items()}, sparsity, case=case)
        if not isinstance(masks, dict) or list(masks) != list(weights):
            raise Wrong(f"in {case} your function should return one mask per layer, by the weights' names")
        for name, mask in masks.items():
            as_bool_mask(mask, weights[name].shape, f"{case}, layer {name}")
        total = sum(w.numel() for w in weights.values())
        pruned = sum(int((~m).sum()) for m in masks.values())
        if pruned != round(sparsity * total):
            raise Wrong(
                f"your masks prune {pruned} of the {total} weights in {case}: global pruning removes round(s·N) of "
                "all N weights together, however many that leaves in each layer"
            )
        magnitude = torch.cat([weights[n].abs().flatten() for n in masks])
        keep = torch.cat([m.flatten() for m in masks.values()])
        if 0 < pruned < total and magnitude[~keep].max() > magnitude[keep].min():
            raise Wrong(
                f"in {case} a weight you prune is larger than one you keep: global scope cuts every layer at one "
                "threshold",
                hint="a threshold per layer is local scope; rank the |w| of all layers together",
            )
        reference = reference_global(weights, sparsity)
        if any(not torch.equal(masks[n], reference[n]) for n in weights):
            raise Wrong(f"in {case} your masks differ from wb.Pruner's global magnitude masks")
    return f"your masks match wb.Pruner(..., scope='global') on all {len(cases)} cases"


@exercise(
    "cnn_allocation",
    hints=(
        "the sensitivity curves say which layers can lose much (block2's convolutions) and which cannot (stem.0, "
        "down.0, block1.conv1)",
        "global magnitude pruning at 60 % spreads the sparsity in a way that works: its per-layer sparsities make "
        "a layer_sparsity",
    ),
)
def _check_allocation(attempt) -> str:
    from ..data import load_dataset
    from ..pruning import prune
    from ..train import evaluate
    from ..zoo import pretrained

    if not isinstance(attempt, dict):
        raise Wrong(f"my_allocation should be a dict {{module name: sparsity}}, got {type(attempt).__name__}")
    model = pretrained("cnn")
    try:
        result = prune(model, sparsity=0.0, layer_sparsity=attempt)
    except ValueError as error:
        raise Wrong(f"wb.prune refuses this allocation: {error}") from None
    accuracy = evaluate(model, load_dataset("digits").test)
    if result.sparsity < 0.6:
        raise Wrong(f"only {result.sparsity:.1%} sparsity: prune more")
    if accuracy < 0.95:
        raise Wrong(f"test accuracy {accuracy:.1%} at {result.sparsity:.1%} sparsity: too much in sensitive layers")
    return f"{result.sparsity:.1%} sparsity at {accuracy:.1%} test accuracy"
