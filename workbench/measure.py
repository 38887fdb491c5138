"""Model size and cost: nonzero parameters, dense FLOPs, and the FLOPs an ideal sparse kernel would do.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Linear(4, 2, bias=False)
    >>> mask = torch.tensor([[True, False, False, False], [True, True, False, False]])
    >>> parameter_counts(model, {"weight": mask})
    (8, 3)
    >>> flops(model, torch.ones(1, 4)), effective_flops(model, torch.ones(1, 4), {"weight": mask})
    (16, 6.0)
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .masks import qualified
from .patterns import prunable_layers


def parameter_counts(model: nn.Module, masks: dict[str, torch.Tensor] | None = None) -> tuple[int, int]:
    """(total, nonzero) over every parameter of ``model`` (weights, biases, norms).

    A masked model counts its masked values; ``masks`` (bool, True = kept, by state_dict name such as
    "fc1.weight") zero further entries on top, so ``parameter_counts(model, pruner.masks(0.5))``
    sizes a choice without applying it.
    """
    masks = masks or {}
    total = nonzero = 0
    for name, _ in model.named_parameters():  # masked weights appear as <module>.parametrizations.<leaf>.original
        plain = re.sub(r"(^|\.)parametrizations\.", r"\1", name).removesuffix(".original")
        module_name, _, leaf = plain.rpartition(".")
        value = getattr(model.get_submodule(module_name), leaf).detach()
        if plain in masks:
            value = value * masks[plain].to(value.device)
        total += value.numel()
        nonzero += int(torch.count_nonzero(value))
    return total, nonzero


@torch.no_grad()
def layer_flops(model: nn.Module, inputs: torch.Tensor) -> tuple[int, dict[str, int]]:
    """Dense FLOPs of one forward pass on ``inputs``: the total, and each Linear/Conv layer's by module name.

    Counted by ``torch.utils.flop_counter.FlopCounterMode``: 2 FLOPs per multiply-add of matrix
    products and convolutions; elementwise ops, norms and softmax are not counted (nor, on the
    CPU, the products inside ``scaled_dot_product_attention``).
    """
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(inputs)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()  # keys: "Global", then "<model class>.<module name>"
    root = type(model).__name__
    per_layer = {name: sum(counts.get(f"{root}.{name}" if name else root, {}).values()) for name in prunable_layers(model)}
    return counter.get_total_flops(), per_layer


def flops(model: nn.Module, inputs: torch.Tensor) -> int:
    """Dense FLOPs of one forward pass on ``inputs`` (see ``layer_flops`` for what is counted)."""
    return layer_flops(model, inputs)[0]


def effective_flops(model: nn.Module, inputs: torch.Tensor, masks: dict[str, torch.Tensor]) -> float:
    """FLOPs an ideal sparse kernel would do: each Linear/Conv's dense FLOPs × its kept-weight fraction.

    This is a best case: it assumes every zero weight's multiply-add is skipped for free (real sparse
    kernels rarely get there below high sparsity), and it does not exploit the zeros a pruned
    neuron or filter propagates into the next layer's inputs. Uncounted or unmasked ops stay dense.
    """
    return sparse_flops(layer_flops(model, inputs), masks)


def sparse_flops(counted: tuple[int, dict[str, int]], masks: dict[str, torch.Tensor]) -> float:
    """``effective_flops`` from a ``layer_flops`` result, so a live view counts once and rescales per move."""
    total, per_layer = counted
    saved = 0.0
    for name, dense in per_layer.items():
        mask = masks.get(qualified(name, "weight"))
        if mask is not None:
            saved += dense * int((~mask).sum()) / mask.numel()
    return total - saved
