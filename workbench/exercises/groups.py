"""Exercises of notebook 05: cut neurons out of an MLP's matrices by hand, count a dependency group.

Example:
    >>> def cut_neurons(weights, biases, keep):
    ...     weights, biases = list(weights), list(biases)
    ...     for i, kept in enumerate(keep):
    ...         weights[i], biases[i] = weights[i][kept], biases[i][kept]
    ...         weights[i + 1] = weights[i + 1][:, kept]
    ...     return weights, biases
    >>> check("cut_neurons", cut_neurons).passed
    True
"""

from __future__ import annotations

import functools
import itertools

import torch
from torch import nn

from ..structure import shrink_masked
from .checker import Wrong, as_number, call, check, exercise

__all__ = ["check", "reference_cut"]


def _mlp(weights: list[torch.Tensor], biases: list[torch.Tensor]) -> nn.Sequential:
    layers = []
    for weight, bias in zip(weights, biases):
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def reference_cut(weights, biases, keep) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``wb``'s shrinking of an MLP whose hidden units outside ``keep`` are masked whole (row, bias, next column)."""
    model = _mlp(weights, biases)
    masks = {}
    for i, kept in enumerate(keep):
        rows = torch.zeros(weights[i].shape[0], dtype=torch.bool)
        rows[kept] = True
        masks[f"{2 * i}.weight"] = rows[:, None].expand(weights[i].shape).clone()
        masks[f"{2 * i}.bias"] = rows.clone()
        masks[f"{2 * i + 2}.weight"] = rows[None, :].expand(weights[i + 1].shape).clone()
    small, _ = shrink_masked(model, masks, example_inputs=torch.zeros(2, weights[0].shape[1]))
    linears = [m for m in small if isinstance(m, nn.Linear)]
    return [m.weight.detach() for m in linears], [m.bias.detach() for m in linears]


@functools.cache
def _cut_reference(index: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The reference of case ``index``; shrinking traces the model, so each is computed once, when first needed."""
    return reference_cut(*_cut_cases()[index][1:])


@functools.cache
def _cut_cases() -> tuple:
    """(case, weights, biases, keep) of every case."""
    return tuple(_cut_case_inputs())


def _cut_case_inputs():
    from ..viz.shrinking import TOY_W1, TOY_W2

    generator = torch.Generator().manual_seed(5)
    toy_w = [torch.as_tensor(TOY_W1, dtype=torch.float32), torch.as_tensor(TOY_W2, dtype=torch.float32)]
    yield (
        "case 1 (notebook 05's toy, hidden neuron 1 removed)",
        toy_w,
        [torch.zeros(3), torch.zeros(2)],
        [torch.tensor([0, 2])],
    )
    sizes = (64, 30, 20, 10)
    weights = [torch.randn(o, i, generator=generator) for i, o in itertools.pairwise(sizes)]
    biases = [torch.randn(o, generator=generator) for o in sizes[1:]]
    halves = [torch.randperm(n, generator=generator)[: n // 2].sort().values for n in sizes[1:3]]
    yield "case 2 (a 64→30→20→10 MLP, half of each hidden layer removed)", weights, biases, halves
    yield (
        "case 3 (the same MLP, one neuron left in each hidden layer)",
        weights,
        biases,
        [torch.tensor([7]), torch.tensor([0])],
    )
    yield "case 4 (the same MLP, nothing removed)", weights, biases, [torch.arange(30), torch.arange(20)]


@exercise(
    "cut_neurons",
    hints=(
        "a removed neuron of layer i is a row of weights[i], an entry of biases[i] and a column of weights[i + 1]",
        "weights[i][kept] keeps rows, weights[i + 1][:, kept] keeps columns; the last layer keeps its rows "
        "(its outputs)",
    ),
)
def _check_cut(attempt) -> str:
    cases = _cut_cases()
    for index, (case, weights, biases, keep) in enumerate(cases):
        given = [k.clone() for k in keep]
        result = call(attempt, [w.clone() for w in weights], [b.clone() for b in biases], given, case=case)
        ref_w, ref_b = _cut_reference(index)
        if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(r, (list, tuple)) for r in result)):
            raise Wrong(f"in {case} your function should return (weights, biases), two lists")
        got_w, got_b = (list(r) for r in result)
        if len(got_w) != len(ref_w) or len(got_b) != len(ref_b):
            raise Wrong(f"in {case} you returned {len(got_w)} weights and {len(got_b)} biases for {len(ref_w)} layers")
        for i, (got, ref) in enumerate(zip(got_w + got_b, ref_w + ref_b)):
            kind, layer = ("weight", i) if i < len(ref_w) else ("bias", i - len(ref_w))
            if not isinstance(got, torch.Tensor):
                raise Wrong(f"in {case} {kind} {layer} is a {type(got).__name__}, not a tensor")
            if got.shape != ref.shape:
                shape = "×".join(map(str, got.shape))
                raise Wrong(
                    f"in {case} {kind} {layer} is {shape}: does it lose the rows of its own removed neurons and the "
                    "columns of the previous layer's?"
                )
            if not torch.allclose(got, ref):
                raise Wrong(f"in {case} {kind} {layer} has the right shape but not the right numbers (order kept?)")
    return f"your cut matches wb's shrinking on all {len(cases)} cases: same matrices, same function"


@exercise(
    "toy_params_lost",
    hints=("a removed hidden neuron takes its row of W1, its bias entry and its column of W2 with it",),
)
def _check_toy(attempt) -> str:
    from ..viz.shrinking import TOY_W1, TOY_W2

    answer = as_number(attempt, "my_toy_answer")
    weights = [torch.as_tensor(TOY_W1, dtype=torch.float32), torch.as_tensor(TOY_W2, dtype=torch.float32)]
    biases = [torch.zeros(3), torch.zeros(2)]
    small_w, small_b = reference_cut(weights, biases, [torch.tensor([0, 2])])
    lost = sum(t.numel() for t in weights + biases) - sum(t.numel() for t in small_w + small_b)
    if answer != lost:
        raise Wrong(f"not {answer:g}: count the row of W1, its bias and the column of W2")
    return "the toy loses its neuron's row, bias entry and column"


@exercise(
    "residual_channel",
    hints=(
        "one channel lives in a filter of each producer, γ and β of each BatchNorm after them, and an input channel "
        "of each consumer (a 3×3 kernel for each of the consumer's filters)",
    ),
)
def _check_residual(attempt) -> str:
    from ..structure.group_prune import GroupPruner
    from ..zoo import pretrained

    answer = as_number(attempt, "my_residual_answer")
    masks = GroupPruner(pretrained("cnn"), "l1", pattern="filter").masks_for({0: torch.tensor([0])})
    lost = sum(int((~mask).sum()) for mask in masks.values())
    if answer != lost:
        raise Wrong(
            f"not {answer:g}: count every parameter tensor of the group figure (running statistics are buffers)"
        )
    return "that is one channel of the residual stream, in all six parameter tensors it lives in"
