"""Sweep over a local magnitude Pruner (the tour's logic): exact per-layer counts, agreement with
torch.nn.utils.prune, nestedness, no side effects; the reachable curve the explorer draws."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import assert_same_state, retry_load, state_copy
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

import workbench as wb
from workbench.pruner import Pruner
from workbench.reports import check_sparsity
from workbench.sweep import Sweep

sparsities = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)


def MagnitudeSweep(model: nn.Module, split, exclude=()) -> Sweep:
    """The tour's sweep: local unstructured magnitude pruning of every Linear/Conv weight."""
    return Sweep(Pruner(model, "magnitude", "unstructured", "local", exclude=exclude), split)


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    return retry_load(lambda: wb.pretrained("mlp"))


@pytest.fixture(scope="module")
def sweep(mlp, digits) -> Sweep:
    return MagnitudeSweep(mlp, digits.test)


def masked_copy(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` with its weights multiplied by ``masks``: the reference for accuracy()."""
    clone = copy.deepcopy(model)
    parameters = dict(clone.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            parameters[name].mul_(mask)
    return clone


def test_weight_names(sweep, mlp):
    assert sweep.pruner.names == ["fc1.weight", "fc2.weight", "fc3.weight"]
    cnn = MagnitudeSweep(wb.build_model("cnn"), (torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long)))
    assert cnn.pruner.names == [
        "stem.0.weight",
        "block1.conv1.weight",
        "block1.conv2.weight",
        "down.0.weight",
        "block2.conv1.weight",
        "block2.conv2.weight",
        "fc.weight",
    ]
    vit = Pruner(wb.build_model("transformer", depth=1)).names
    assert vit == [
        "patch_embed.weight",
        "blocks.0.attn.q.weight",
        "blocks.0.attn.k.weight",
        "blocks.0.attn.v.weight",
        "blocks.0.attn.out.weight",
        "blocks.0.mlp.fc1.weight",
        "blocks.0.mlp.fc2.weight",
        "head.weight",
    ]


@given(s=sparsities)
def test_exact_pruned_count_and_smallest_magnitudes_go(sweep, mlp, s):
    masks = sweep.masks(s)
    parameters = dict(mlp.named_parameters())
    assert list(masks) == sweep.pruner.names
    for name, mask in masks.items():
        weight = parameters[name].detach()
        n = weight.numel()
        assert mask.dtype == torch.bool and mask.shape == weight.shape
        assert int((~mask).sum()) == min(round(s * n), n - 1)  # a layer is never emptied: one weight stays
        if 0 < round(s * n) < n:
            assert weight[~mask].abs().max() <= weight[mask].abs().min(), (
                f"{name}: a kept weight is smaller than a pruned one"
            )


@pytest.mark.parametrize("amount", [0.05, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99])
def test_masks_equal_torch_prune_l1_unstructured(sweep, mlp, amount):
    masks = sweep.masks(amount)
    for name in sweep.pruner.names:
        layer = copy.deepcopy(mlp.get_submodule(name.removesuffix(".weight")))
        prune.l1_unstructured(layer, "weight", amount=amount)
        reference = layer.weight_mask.bool()
        magnitudes = layer.weight_orig.detach().abs().flatten().sort().values
        k = round(amount * magnitudes.numel())
        if 0 < k < magnitudes.numel() and magnitudes[k - 1] == magnitudes[k]:
            # A tie straddles the threshold: either choice is correct; everything else must agree.
            tied = layer.weight_orig.detach().abs() == magnitudes[k]
            assert torch.equal(masks[name][~tied], reference[~tied]), name
            assert int((~masks[name]).sum()) == int((~reference).sum()), name
        else:
            assert torch.equal(masks[name], reference), f"{name} at {amount}"


@given(a=sparsities, b=sparsities)
def test_nested(sweep, a, b):
    low, high = sorted((a, b))
    for name, (mask_low, mask_high) in zip(
        sweep.pruner.names, zip(sweep.masks(low).values(), sweep.masks(high).values())
    ):
        pruned_low, pruned_high = ~mask_low, ~mask_high
        assert not (pruned_low & ~pruned_high).any(), f"{name}: pruned at {low} but kept at {high}"


def test_sparsity_zero_is_the_model(sweep, mlp, digits):
    assert all(mask.all() for mask in sweep.masks(0.0).values())
    assert sweep.accuracy(0.0) == wb.evaluate(mlp, digits.test)


@given(s=st.sampled_from([0.1, 0.35, 0.5, 0.8, 0.9, 0.97, 0.99]) | sparsities)
def test_accuracy_equals_evaluating_a_masked_copy(sweep, mlp, digits, s):
    masks = sweep.masks(s)
    expected = wb.evaluate(masked_copy(mlp, masks), digits.test)
    assert sweep.accuracy(s) == pytest.approx(expected, abs=1e-7)
    assert sweep.accuracy(s, masks) == sweep.accuracy(s)


def test_accuracy_uses_given_masks(sweep, mlp, digits):
    masks = sweep.masks(0.0)
    masks["fc3.weight"] = torch.zeros_like(masks["fc3.weight"])  # output = bias only: one class for all
    expected = wb.evaluate(masked_copy(mlp, masks), digits.test)
    assert sweep.accuracy(0.0, masks) == expected
    assert expected < 0.2


def test_curve(sweep):
    grid = [0.0, 0.5, 0.9, 0.99]
    curve = sweep.curve(grid)
    assert isinstance(curve, np.ndarray) and curve.shape == (4,)
    assert curve.tolist() == [sweep.accuracy(s) for s in grid]
    assert curve[0] >= 0.97 and curve[-1] < curve[0]


def test_reachable_curve(sweep, mlp, digits):
    grid = [0.0, 0.5, 0.99]
    x, y = sweep.reachable_curve(grid)
    assert x.tolist() == grid and y.tolist() == sweep.curve(grid).tolist()
    nm = Sweep(Pruner(mlp, pattern="2:4"), digits.test)
    x, y = nm.reachable_curve(grid)
    assert x.tolist() == [0.5] and y.tolist() == [nm.accuracy(0.5)], "2:4 fixes the sparsity: one point"
    heads = Sweep(Pruner(wb.pretrained("transformer"), pattern="head", scope="global"), digits.test)
    x, _ = heads.reachable_curve([0.0, 0.5, 0.9, 0.95])
    assert x.tolist() == [0.0, 0.5], "one head kept per block: global scope cannot reach 90 %"
    with pytest.raises(ValueError, match="sparsity"):
        sweep.reachable_curve([0.2, float("nan")])


@pytest.mark.parametrize("training", [True, False])
def test_model_untouched(mlp, digits, training):
    model = copy.deepcopy(mlp).train(training)
    before = state_copy(model)
    sweep = MagnitudeSweep(model, digits.test)
    reference = MagnitudeSweep(copy.deepcopy(mlp).eval(), digits.test)
    for s in (0.0, 0.3, 0.9):
        sweep.masks(s)
        assert sweep.accuracy(s) == reference.accuracy(s)  # evaluated in eval mode either way
    sweep.curve([0.1, 0.6])
    assert_same_state(before, state_copy(model))
    assert model.training is training
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    "bad", [-0.1, 1.0, 1.5, "abc", None, float("nan"), float("inf"), -float("inf"), [0.5], object()]
)
def test_check_sparsity_rejects(bad, sweep):
    with pytest.raises(ValueError, match="sparsity"):
        check_sparsity(bad)
    for call in (lambda: sweep.masks(bad), lambda: sweep.accuracy(bad)):
        with pytest.raises(ValueError, match="sparsity"):
            call()


@pytest.mark.parametrize("good", [0, 0.0, 0.5, 0.999999, np.float32(0.25), torch.tensor(0.75)])
def test_check_sparsity_accepts(good):
    value = check_sparsity(good)
    assert isinstance(value, float) and value == float(good)


def test_nothing_left_to_prune(mlp, digits):
    with pytest.raises(ValueError, match="nothing to prune"):
        MagnitudeSweep(mlp, digits.test, exclude=("fc*",))
    with pytest.raises(ValueError, match="nothing to prune"):
        MagnitudeSweep(nn.Sequential(nn.ReLU(), nn.Flatten()), digits.test)


def test_subset_of_weights_and_tuple_split(mlp, digits):
    sweep = MagnitudeSweep(mlp, digits.test.tensors, exclude=("fc1", "fc3"))
    masks = sweep.masks(0.6)
    assert list(masks) == ["fc2.weight"]
    assert sweep.accuracy(0.6) == pytest.approx(wb.evaluate(masked_copy(mlp, masks), digits.test), abs=1e-7)


@given(rows=st.integers(1, 6), cols=st.integers(1, 6), s=sparsities, seed=st.integers(0, 1000))
def test_ties_prune_lower_flat_index_first(rows, cols, s, seed):
    layer = nn.Linear(cols, rows)
    signs = torch.randint(0, 2, (rows, cols), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.no_grad():
        layer.weight.copy_(0.5 * signs)  # all magnitudes equal
    split = (torch.zeros(3, cols), torch.zeros(3, dtype=torch.long))
    mask = MagnitudeSweep(nn.Sequential(layer), split).masks(s)["0.weight"]
    k = min(round(s * rows * cols), rows * cols - 1)
    expected = torch.ones(rows * cols, dtype=torch.bool)
    expected[:k] = False
    assert torch.equal(mask.flatten(), expected)


def test_model_that_is_a_single_linear_layer():
    layer = nn.Linear(4, 3)
    sweep = MagnitudeSweep(layer, (torch.randn(5, 4), torch.zeros(5, dtype=torch.long)))
    assert sweep.pruner.names == ["weight"]
    assert int((~sweep.masks(0.5)["weight"]).sum()) == 6
