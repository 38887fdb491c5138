"""Exercises of notebooks 06–08: the cubic schedule, a training loop that steps a GradualPruner, group lasso.

Example:
    >>> def my_cubic(t, s_i, s_f, t0, n, dt):
    ...     return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3
    >>> check("cubic_schedule", my_cubic).passed
    True
"""

from __future__ import annotations

import torch
from torch import nn

from ..regularizers import group_lasso, l1
from ..schedules import schedule
from .basics import holder
from .checker import NotImplementedYet, Wrong, as_number, call, check, exercise

__all__ = ["check"]

CUBIC_CASES = (  # initial, final, start, end, every
    (0.0, 0.9, 0, 1000, 100),
    (0.2, 0.95, 200, 600, 50),
    (0.0, 0.98, 0, 4, 1),
    (0.5, 0.5, 10, 40, 10),
    (0.1, 0.8, 7, 17, 10),
)


@exercise(
    "cubic_schedule",
    hints=(
        "the progress p = (t − t0) / (n·Δt) runs from 0 at the first pruning step to 1 at the last; the formula is "
        "s_f + (s_i − s_f)·(1 − p)³",
        "at p = 0 the schedule is s_i, at p = 1 it is s_f; in between, the cube makes it rise fast first",
    ),
)
def _check_cubic(attempt) -> str:
    for number, (initial, final, start, end, every) in enumerate(CUBIC_CASES, 1):
        reference = schedule("cubic", initial=initial, final=final, start=start, end=end, every=every)
        n = (end - start) // every
        case = f"case {number} (s_i = {initial}, s_f = {final}, t0 = {start}, n = {n}, Δt = {every})"
        for t in reference.pruning_steps():
            value = as_number(call(attempt, t, initial, final, start, n, every, case=case), f"in {case} your value")
            if abs(value - reference(t)) > 1e-9:
                where = "first" if t == start else "last" if t == end else "an intermediate"
                between = "right at both ends but not in between: check the progress p = (t − t0)/(n·Δt) and the power"
                raise Wrong(
                    f"in {case} your value at step {t} ({where} pruning step) is {value:.4f}, and "
                    "wb.schedule('cubic', ...) differs there",
                    hint=between if where == "an intermediate" else None,
                )
    return f"your schedule matches wb.schedule('cubic', ...) at every pruning step of {len(CUBIC_CASES)} schedules"


@exercise(
    "gradual_loop",
    hints=(
        "a GradualPruner's schedule counts its step() calls: at 'step 30' the model should have taken 30 optimizer "
        "steps",
        "train-time criteria (snip_momentum) read each weight's gradient in step(): after loss.backward() and "
        "optimizer.step(), before the next zero_grad()",
    ),
)
def _check_loop(attempt) -> str:
    from ..data import load_dataset
    from ..gradual import GradualPruner
    from ..models import build_model
    from ..reports import sparsity_report
    from ..train import evaluate

    data = load_dataset("digits")
    steps = 2 * -(-len(data.train) // 64)
    plan = schedule("cubic", initial=0.0, final=0.8, start=0, end=30, every=5)
    accuracy = {}
    for criterion in ("magnitude", "snip_momentum"):
        torch.manual_seed(0)
        model = build_model("mlp")
        pruner = GradualPruner(model, plan, criterion=criterion)
        case = f"the run with criterion={criterion!r}"
        call(attempt, model, pruner, data, epochs=2, batch_size=64, case=case)
        if pruner.step_count == 0:
            raise NotImplementedYet("the pruner never heard of a training step: add your line to train_by_hand")
        if pruner.step_count != steps:
            raise Wrong(f"in {case} the pruner heard of {pruner.step_count} steps; the optimizer took {steps}")
        if sparsity_report(model).sparsity != plan.final:
            raise Wrong(
                f"in {case} the model ends at sparsity {sparsity_report(model).sparsity:.2%}, not the final one"
            )
        accuracy[criterion] = evaluate(model, data.test)
        if accuracy[criterion] < 0.5:
            raise Wrong(f"in {case} the model reached only {accuracy[criterion]:.1%}: does your loop still train it?")
    return "both runs end exactly at the schedule's 80 %, trained while pruning: " + ", ".join(
        f"{c} {a:.1%}" for c, a in accuracy.items()
    )


def _penalty_cases():
    generator = torch.Generator().manual_seed(6)
    with_zero_row = torch.randn(6, 5, generator=generator)
    with_zero_row[2] = 0
    yield "case 1 (notebook 01's 3×2 matrix)", torch.tensor([[0.90, -0.10], [0.30, -0.25], [-0.05, 0.70]])
    yield "case 2 (a 4×5 matrix)", torch.randn(4, 5, generator=generator)
    yield "case 3 (a 6×5 matrix whose row 2 is zero)", with_zero_row
    yield "case 4 (a 100×300 matrix)", torch.randn(100, 300, generator=generator)
    yield "case 5 (an 8×4×3×3 convolution: one group per filter)", torch.randn(8, 4, 3, 3, generator=generator)


def _reference_penalty(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """wb.regularizers.group_lasso(pattern="neuron") of a layer holding ``weight``, and its gradient."""
    model = nn.Sequential(holder(weight), nn.Flatten(), nn.LazyLinear(1))  # the last layer keeps its outputs
    penalty = group_lasso(model, pattern="neuron", exclude=["2"]).penalty(model)
    (gradient,) = torch.autograd.grad(penalty, model[0].weight)
    return penalty.detach(), gradient


def _diagnose(value: float, weight: torch.Tensor) -> str | None:
    rows = weight.flatten(1)
    for wrong, why in (
        (rows.square().sum(), "you summed squared norms: that is the L2 penalty, which makes no row exactly zero"),
        (rows.norm(dim=0).sum(), "you summed the norms of columns (inputs); a neuron's weights are a row"),
        (rows.norm(), "you took one norm of the whole matrix; group lasso adds one norm per row"),
        (rows.abs().sum(), "you summed |w|: that is the L1 penalty, which zeroes single weights"),
    ):
        if abs(value - float(wrong)) < 1e-4 * max(1.0, abs(float(wrong))):
            return why
    return None


@exercise(
    "group_lasso_penalty",
    hints=(
        "one group per output neuron: the Euclidean norm of each row (each filter of a convolution: "
        "weight.flatten(1)), then the sum over the rows",
        "keep it a tensor computed from the weight (no .item(), no detach), so that loss.backward() reaches the weight",
    ),
)
def _check_group_lasso(attempt) -> str:
    cases = list(_penalty_cases())
    for case, weight in cases:
        given = weight.clone().requires_grad_(True)
        value = call(attempt, given, case=case)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            what = (
                f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
            )
            raise Wrong(f"in {case} your penalty is {what}; it should be one number, a 0-d tensor")
        reference, gradient = _reference_penalty(weight)
        if abs(value.item() - reference.item()) > 1e-4 * max(1.0, reference.item()):
            raise Wrong(
                f"in {case} your penalty is {value.item():.4f}: {_diagnose(value.item(), weight) or 'not Σ‖row‖₂'}"
            )
        if not value.requires_grad:
            raise Wrong(f"in {case} your penalty does not depend on the weight through autograd")
        (got,) = torch.autograd.grad(value.sum(), given)
        live = weight.flatten(1).norm(dim=1) > 0  # a zero row's gradient is a matter of convention
        if not torch.allclose(got.flatten(1)[live], gradient.flatten(1)[live], atol=1e-5):
            raise Wrong(f"in {case} your penalty's gradient differs from group lasso's (w_g / ‖w_g‖ for each row)")
    return f"your penalty equals wb.regularizers.group_lasso(pattern='neuron')'s on all {len(cases)} cases"


SOFT_THRESHOLD_WEIGHTS = [0.5, -0.03, 0.01, -0.2, 0.0]


@exercise(
    "soft_threshold",
    hints=("each weight moves ηλ = 0.05 towards zero, and stops at zero: sign(w)·max(|w| − 0.05, 0)",),
)
def _check_soft_threshold(attempt) -> str:
    if not isinstance(attempt, (list, tuple)) or len(attempt) != 5:
        raise Wrong("my_soft_threshold should be a list of five numbers, one per weight")
    values = [as_number(v, "each entry") for v in attempt]
    layer = holder(torch.tensor([SOFT_THRESHOLD_WEIGHTS]))
    l1(layer, strength=0.05).proximal(1.0)(layer, 0)  # one proximal step, as wb.train takes it
    stepped = layer.weight.detach().flatten().tolist()
    wrong = [str(i) for i, (got, ref) in enumerate(zip(values, stepped)) if abs(got - ref) > 1e-6]
    if wrong:
        raise Wrong(f"entries {', '.join(wrong)} (counting from 0) are not what one proximal step gives")
    return "one proximal L1 step: small weights land exactly on zero, the others move 0.05 towards it"


@exercise(
    "cut_threshold",
    hints=(
        "sort the 300 norms; rows at or under the threshold are removed, so any threshold from the 200th smallest "
        "norm up to (not including) the 201st removes exactly 200",
    ),
)
def _check_cut_threshold(attempt, norms) -> str:
    threshold = as_number(attempt, "my_threshold")
    removed = int((norms <= threshold).sum())
    if removed != 200:
        raise Wrong(f"a threshold of {threshold:g} removes {removed} of fc1's neurons, not 200")
    return "exactly 200 of fc1's 300 rows are at or under your threshold"
