"""SCOP: the criterion is side-effect free and deterministic, prunes exactly, shrinks to a model computing what the
masked one does, and ranks units nothing reads below the units the network needs; the factor figure marks the pruned."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_refused, assert_same_state, state_copy
from matplotlib.figure import Figure

import workbench as wb
from workbench.criteria import CRITERIA
from workbench.criteria.scop import scop_factors
from workbench.viz.scop import plot_scop_factors

QUICK = {"steps": 10}
CNN_LAYERS = ["stem.0", "block1.conv1", "block1.conv2", "down.0", "block2.conv1", "block2.conv2"]


def test_scop_is_registered_as_a_data_driven_unit_criterion():
    criterion = CRITERIA["scop"]
    assert criterion.needs_data and criterion.scores == "units"
    assert criterion.options == ("steps", "lr", "batch_size", "seed", "knockoffs")


def test_scop_leaves_the_model_as_it_found_it(shipped, digits):
    model = shipped("cnn").train()
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    before = state_copy(model)
    inputs = digits.test.tensors[0][:50]
    with torch.no_grad():
        outputs = model.eval()(inputs)
    model.train()
    scop_factors(model, [*CNN_LAYERS, "fc"], digits, **QUICK)
    assert_same_state(state_copy(model), before)
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    assert torch.equal(model.fc.weight.grad, torch.ones_like(model.fc.weight)) and model.stem[0].weight.grad is None
    with torch.no_grad():
        assert torch.equal(model.eval()(inputs), outputs)


def test_a_failed_scop_call_leaves_the_model_untouched(shipped, digits):
    model = shipped("cnn").train()
    before = state_copy(model)
    two_channel = (torch.randn(300, 2, 8, 8), torch.zeros(300, dtype=torch.long))  # the stem takes one channel
    with pytest.raises(RuntimeError):
        scop_factors(model, CNN_LAYERS, two_channel, **QUICK)
    assert_same_state(state_copy(model), before)
    assert all(m.training for m in model.modules()) and all(not m._forward_hooks for m in model.modules())


def test_scop_is_deterministic_for_a_seed(shipped, digits):
    model = shipped("cnn")
    first = scop_factors(model, ["block1.conv1"], digits, seed=3, **QUICK)["block1.conv1"][0]
    again = scop_factors(model, ["block1.conv1"], digits, seed=3, **QUICK)["block1.conv1"][0]
    other = scop_factors(model, ["block1.conv1"], digits, seed=4, **QUICK)["block1.conv1"][0]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_scores_are_one_plus_real_minus_knockoff_factor_in_zero_two(shipped, digits):
    model = shipped("cnn")
    names = [f"{layer}.weight" for layer in CNN_LAYERS]
    scores = CRITERIA["scop"].score(model, names, digits, **QUICK)
    factors = scop_factors(model, CNN_LAYERS, digits, **QUICK)
    for layer, name in zip(CNN_LAYERS, names):
        real, knockoff = factors[layer]
        assert torch.equal(real + knockoff, torch.ones_like(real))
        assert bool(((real >= 0) & (real <= 1)).all())
        expected = (1 + real - knockoff).view(-1, 1, 1, 1).expand_as(model.get_parameter(name))
        assert torch.equal(scores[name], expected)


def test_a_unit_nothing_reads_scores_below_the_units_the_network_needs_most(shipped, digits):
    """Units whose outputs the next layer ignores (zeroed columns) get no gradient: their factors stay at ½,
    below the units whose ablation hurts the loss most."""
    model = shipped("mlp").eval()
    dead = [3, 17, 41]
    with torch.no_grad():
        model.fc2.weight[:, dead] = 0
    real, _ = scop_factors(model, ["fc1"], digits, steps=30)["fc1"]
    assert torch.equal(real[dead], torch.full((3,), 0.5))
    inputs, labels = digits.train.tensors[0][:500], digits.train.tensors[1][:500]
    with torch.no_grad():
        hidden = torch.relu(model.fc1(inputs.flatten(1)))
        loss = torch.nn.functional.cross_entropy(model.fc3(torch.relu(model.fc2(hidden))), labels)
        damage = torch.zeros(len(real))
        for unit in range(len(real)):
            ablated = hidden.clone()
            ablated[:, unit] = 0
            logits = model.fc3(torch.relu(model.fc2(ablated)))
            damage[unit] = torch.nn.functional.cross_entropy(logits, labels) - loss
    needed = damage.argsort(descending=True)[:10]
    assert bool((real[needed] > 0.5).all()), (real[needed], damage[needed])


def test_prune_with_scop_removes_exactly_the_filters_asked_for(shipped, digits):
    model = shipped("cnn")
    result = wb.prune(
        model, 0.5, "scop", "filter", data=digits, exclude=["fc"], criterion_options={"steps": 10, "seed": 1}
    )
    for layer in CNN_LAYERS:
        weight = model.get_submodule(layer).weight
        removed = int((~result.masks[f"{layer}.weight"].flatten(1).any(1)).sum())
        assert removed == weight.shape[0] // 2, layer


def test_shrink_with_scop_computes_what_the_masked_model_does(shipped, digits):
    options = {"steps": 10, "seed": 2}
    small = wb.shrink(
        shipped("cnn"), sparsity=0.5, pattern="filter", criterion="scop", data=digits, criterion_options=options
    )
    masked = shipped("cnn")
    wb.prune(masked, 0.5, "scop", "filter", data=digits, coupled=True, criterion_options=options)
    inputs = digits.test.tensors[0][:100]
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(inputs), masked.eval()(inputs), rtol=1e-4, atol=1e-5)
    assert small.block2.conv1.out_channels == 32


@pytest.mark.parametrize(
    "options, message",
    [
        ({"steps": 0}, "scop option steps must be an integer >= 1, got 0"),
        ({"lr": -1.0}, "scop option lr must be a number > 0, got -1.0"),
        ({"batch_size": 2.5}, "scop option batch_size must be an integer >= 1, got 2.5"),
        ({"knockoffs": "sdp"}, "scop option knockoffs must be one of maxent, equicorrelated, got 'sdp'"),
        ({"max_samples": 64}, "takes no option 'max_samples'; its options are: steps, lr, batch_size, seed, knockoffs"),
    ],
)
def test_bad_scop_options_are_refused_in_one_line(shipped, digits, options, message):
    def call(model):
        wb.prune(model, 0.5, "scop", "filter", data=digits, criterion_options=options)

    assert_refused(shipped("cnn"), call, message)


def test_scop_refuses_too_few_samples_for_knockoffs(shipped, digits):
    few = (digits.train.tensors[0][:100], digits.train.tensors[1][:100])
    with pytest.raises(ValueError, match="needs at least 2 × features = 128 samples"):
        scop_factors(shipped("cnn"), ["fc"], few)


# ---- the figure ----


def test_the_factor_figure_marks_the_pruned_filters(shipped, digits):
    model = shipped("cnn")
    factors = scop_factors(model, CNN_LAYERS, digits, **QUICK)  # the layers the pruner scores, trained together
    result = wb.prune(model, 0.25, "scop", "filter", data=digits, exclude=["fc"], criterion_options=QUICK)
    fig = plot_scop_factors({layer: factors[layer] for layer in ("block1.conv1", "block2.conv1")}, result.masks)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_title() == "block1.conv1: 8 of 32 filters pruned"
    crosses = [line for line in fig.axes[1].get_lines() if line.get_label() == "pruned"]
    assert len(crosses[0].get_xdata()) == 16
    real_bars, knockoff_bars = fig.axes[1].containers
    heights = [bar.get_height() for bar in real_bars]
    assert heights == sorted(heights)  # sorted by real − knockoff, so the pruned ones come first
    assert all(abs(r.get_height() + k.get_height() - 1) < 1e-6 for r, k in zip(real_bars, knockoff_bars))
    assert [bar.get_alpha() for bar in real_bars[:16]] == [0.3] * 16 and real_bars[16].get_alpha() == 1.0
