"""Workbench masks equal torch.nn.utils.prune's on the shipped models (where both define the same thing)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

import workbench as wb

AMOUNTS = [0.1, 0.3, 0.5, 0.77, 0.9, 0.95]
MLP_LAYERS = ("fc1", "fc2", "fc3")


def torch_masks(model: nn.Module, layers, prune_one) -> dict[str, torch.Tensor]:
    """Masks torch's pruning puts on a copy of ``model`` (``prune_one(module)`` for each layer)."""
    twin = copy.deepcopy(model)
    for name in layers:
        prune_one(twin.get_submodule(name))
    return {f"{name}.weight": twin.get_submodule(name).weight_mask.bool() for name in layers}


def assert_same_masks(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    assert set(ours) == set(theirs)
    for name in ours:
        assert ours[name].dtype == torch.bool
        differ = int((ours[name] != theirs[name]).sum())
        assert differ == 0, f"{name}: {differ} entries differ from torch.nn.utils.prune"


def assert_tie_free_cut(values: torch.Tensor, amount: float) -> None:
    """The k = round(amount·n) smallest values are one well-defined set: no tie across the cut."""
    ordered = values.flatten().sort().values
    k = round(amount * len(ordered))
    if 0 < k < len(ordered):
        assert ordered[k - 1] < ordered[k], f"tie at the cut (k={k}): the reference comparison would be ambiguous"


def test_shipped_weights_are_tie_free_at_every_cut(shipped):
    """A float32 layer of 30 000 weights has a few equal |w| pairs; none of them sits at a tested cut."""
    mlp = shipped("mlp")
    magnitudes = {n: mlp.get_parameter(f"{n}.weight").detach().abs() for n in MLP_LAYERS}
    for amount in AMOUNTS:
        for name in MLP_LAYERS:
            assert_tie_free_cut(magnitudes[name], amount)
            assert_tie_free_cut(magnitudes[name].norm(dim=1), amount)
            assert_tie_free_cut(magnitudes[name].norm(dim=0), amount)
        assert_tie_free_cut(torch.cat([m.flatten() for m in magnitudes.values()]), amount)
    cnn = shipped("cnn")
    for name, module in cnn.named_modules():
        if isinstance(module, nn.Conv2d):
            norms = module.weight.detach().flatten(1).norm(dim=1)
            assert len(norms.unique()) == len(norms), name


@pytest.mark.parametrize("amount", AMOUNTS)
def test_local_unstructured_magnitude_equals_l1_unstructured(shipped, amount):
    model = shipped("mlp")
    ours = wb.Pruner(model, "magnitude", "unstructured", "local").masks(amount)
    theirs = torch_masks(model, MLP_LAYERS, lambda m: torch_prune.l1_unstructured(m, "weight", amount=amount))
    assert_same_masks(ours, theirs)


@pytest.mark.parametrize("amount", AMOUNTS)
def test_global_unstructured_magnitude_equals_global_unstructured(shipped, amount):
    model = shipped("mlp")
    ours = wb.Pruner(model, "magnitude", "unstructured", "global").masks(amount)
    twin = copy.deepcopy(model)
    torch_prune.global_unstructured(
        [(twin.get_submodule(n), "weight") for n in MLP_LAYERS],
        pruning_method=torch_prune.L1Unstructured,
        amount=amount,
    )
    theirs = {f"{n}.weight": twin.get_submodule(n).weight_mask.bool() for n in MLP_LAYERS}
    assert_same_masks(ours, theirs)


def test_applied_unstructured_weights_equal_torch_pruned_weights(shipped):
    model = shipped("mlp")
    twin = copy.deepcopy(model)
    wb.prune(model, sparsity=0.6, scope="global")
    torch_prune.global_unstructured(
        [(twin.get_submodule(n), "weight") for n in MLP_LAYERS], pruning_method=torch_prune.L1Unstructured, amount=0.6
    )
    for name in MLP_LAYERS:
        assert torch.equal(model.get_submodule(name).weight, twin.get_submodule(name).weight)


@pytest.mark.parametrize("amount", AMOUNTS)
def test_neuron_l2_local_equals_ln_structured_rows(shipped, amount):
    model = shipped("mlp")
    ours = wb.Pruner(model, "magnitude", "neuron", "local", reduce="l2").masks(amount)
    theirs = torch_masks(
        model, ("fc1", "fc2"), lambda m: torch_prune.ln_structured(m, "weight", amount=amount, n=2, dim=0)
    )
    assert_same_masks(ours, theirs)


@pytest.mark.parametrize("amount", [0.1, 0.25, 0.5, 0.75])
def test_filter_l2_local_on_cnn_equals_ln_structured(shipped, amount):
    model = shipped("cnn")
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    ours = wb.Pruner(model, "magnitude", "filter", "local", reduce="l2").masks(amount)
    theirs = torch_masks(model, convs, lambda m: torch_prune.ln_structured(m, "weight", amount=amount, n=2, dim=0))
    assert_same_masks(ours, theirs)


@pytest.mark.parametrize("amount", [0.25, 0.5])
def test_channel_l2_local_equals_ln_structured_columns(shipped, amount):
    model = shipped("mlp")
    ours = wb.Pruner(model, "magnitude", "channel", "local", reduce="l2").masks(amount)
    theirs = torch_masks(model, MLP_LAYERS, lambda m: torch_prune.ln_structured(m, "weight", amount=amount, n=2, dim=1))
    assert_same_masks(ours, theirs)


def test_random_unstructured_prunes_like_random_unstructured_counts(shipped):
    model = shipped("mlp")
    ours = wb.Pruner(model, "random", "unstructured", "local").masks(0.42)
    theirs = torch_masks(model, MLP_LAYERS, lambda m: torch_prune.random_unstructured(m, "weight", amount=0.42))
    for name in ours:  # random sets differ; the counts torch computes agree
        assert int((~ours[name]).sum()) == int((~theirs[name]).sum())
