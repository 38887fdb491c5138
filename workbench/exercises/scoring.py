"""Exercises of notebook 02: register a criterion of your own (|w| × input norm), read the agreement table.

Example:
    >>> check("input_norm_criterion", "no_such_criterion").message
    "no criterion named 'no_such_criterion' is registered: run the cell with @register(...) first"
"""

from __future__ import annotations

import torch
from torch import nn

from ..criteria import CRITERIA
from ..data import batches
from ..masks import dense_parameter
from ..pruner import Pruner
from .checker import Wrong, call, check, exercise

__all__ = ["check", "input_norm_scores"]


def input_norm_scores(model: nn.Module, names: list[str], data, max_batches: int | None = None) -> dict:
    """|w_ij| · ‖x_j‖₂, with x_j input j of the weight's layer over every sample of ``data`` (Wanda's score)."""
    squares, handles = {}, []
    for name in names:

        def record(_module, inputs, name=name):
            flat = inputs[0].detach().reshape(-1, inputs[0].shape[-1])
            squares[name] = squares.get(name, 0) + flat.square().sum(0)

        handles.append(model.get_submodule(name.rpartition(".")[0]).register_forward_pre_hook(record))
    try:
        with torch.no_grad():
            for inputs, _ in batches(data, max_batches=max_batches):
                model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {name: dense_parameter(model, name).detach().abs() * squares[name].sqrt() for name in names}


def _small_mlp_case():
    generator = torch.Generator().manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
    inputs = torch.randn(40, 6, generator=generator)
    inputs[:, 2] = 0  # an input that is always 0: its weights score 0
    return model, ["0.weight", "2.weight"], (inputs, torch.zeros(40, dtype=torch.long))


@exercise(
    "input_norm_criterion",
    hints=(
        "a criterion returns {name: scores shaped like the weight}; here |w| times, for each column j, the L2 norm "
        "of input j over all samples: register_forward_pre_hook on each layer sees its inputs",
        "add up the squares of the inputs over every batch of batches(data, max_batches=max_batches), then take "
        "the square root once at the end (a norm over all samples, not a sum of per-batch norms)",
        "the name in the module path of 'fc2.weight' is name.rpartition('.')[0]; model.get_submodule gives the layer",
    ),
)
def _check_input_norm(attempt) -> str:
    from ..data import load_dataset
    from ..zoo import pretrained

    if callable(attempt):  # the decorated function itself: find the name it was registered under
        attempt = next((name for name, c in CRITERIA.items() if c.fn is attempt), attempt)
    if not isinstance(attempt, str):
        raise Wrong(
            "this function is not registered: decorate it with @register(name, needs_data=..., description=...)"
        )
    if attempt not in CRITERIA:
        raise Wrong(f"no criterion named {attempt!r} is registered: run the cell with @register(...) first")
    criterion = CRITERIA[attempt]
    if not criterion.needs_data:
        raise Wrong("your criterion is registered with needs_data=False, but it scores with data: say needs_data=True")
    if "max_batches" not in criterion.options:
        raise Wrong("your criterion takes no max_batches option: add the keyword parameter max_batches=None")
    data = load_dataset("digits")
    mlp = pretrained("mlp")
    small, small_names, small_data = _small_mlp_case()
    cases = [
        (
            "case 1 (the MLP's three layers, every training digit)",
            mlp,
            ["fc1.weight", "fc2.weight", "fc3.weight"],
            data,
            {},
        ),
        ("case 2 (the MLP's fc2 alone, max_batches=2)", mlp, ["fc2.weight"], data, {"max_batches": 2}),
        ("case 3 (a small MLP on 40 random inputs, one of them always 0)", small, small_names, small_data, {}),
    ]
    for case, model, names, split, options in cases:
        scores = call(criterion.fn, model, names, split, case=case, **options)
        if not isinstance(scores, dict) or set(scores) != set(names):
            keys = sorted(scores) if isinstance(scores, dict) else type(scores).__name__
            raise Wrong(f"in {case} your criterion returned {keys}; it should return one entry per name in {names}")
        reference = input_norm_scores(model, names, split, **options)
        for name in names:
            got = scores[name]
            if not isinstance(got, torch.Tensor) or got.shape != reference[name].shape:
                what = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                raise Wrong(f"in {case} the scores of {name} are {what}; scores have the weight's shape")
            if not torch.allclose(got.detach().float(), reference[name], rtol=1e-4, atol=1e-5):
                raise Wrong(f"in {case} the scores of {name} are not |w| × the L2 norm of each input over the data")
    Pruner(mlp, attempt, data=data).masks(0.5)  # it plugs into the pruner like any criterion
    return f"{attempt!r} scores like Wanda on all {len(cases)} cases and plugs into wb.Pruner"


@exercise(
    "closest_criterion",
    hints=("the second column of the agreement table is the kept overlap at 70 %: which row has the largest?",),
)
def _check_closest(attempt, agreement) -> str:
    if not isinstance(attempt, str) or attempt not in agreement:
        raise Wrong(f"{attempt!r} is not one of the table's criteria: {', '.join(sorted(agreement))}")
    if agreement[attempt][1] < max(overlap for _, overlap in agreement.values()):
        raise Wrong(f"{attempt} keeps {agreement[attempt][1]:.0%} in common with magnitude; another does better")
    return f"{attempt} shares the most kept weights with magnitude ({agreement[attempt][1]:.0%})"
