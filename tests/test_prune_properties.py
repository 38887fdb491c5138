"""Property tests: random small Linear / Conv2d stacks, random sparsities, patterns and scopes."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import assert_same_state, state_copy
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import workbench as wb
from workbench.masks import get_masks, is_masked, undo

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def small_models(draw):
    """(model, a batch of inputs): a ReLU stack of 1–4 Linear layers (widths 1–12) or of 1–3 Conv2d layers."""
    seed = draw(st.integers(0, 2**16))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if draw(st.booleans()):
        widths = draw(st.lists(st.integers(1, 12), min_size=2, max_size=5))
        layers = []
        for fan_in, fan_out in itertools.pairwise(widths):
            layers += [nn.Linear(fan_in, fan_out, bias=draw(st.booleans())), nn.ReLU()]
        inputs = torch.randn(5, widths[0], generator=generator)
    else:
        channels = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
        layers = []
        for c_in, c_out in itertools.pairwise(channels):
            k = draw(st.sampled_from([1, 3]))
            layers += [nn.Conv2d(c_in, c_out, k, padding="same"), nn.ReLU()]
        inputs = torch.randn(2, channels[0], 5, 5, generator=generator)
    return nn.Sequential(*layers[:-1]).eval(), inputs


def layers_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def expected_groups(model: nn.Module, pattern: str) -> dict[str, tuple[int, int]]:
    """weight name → (number of groups, elements per group) of the layers ``pattern`` prunes."""
    layers = layers_of(model)
    if pattern == "neuron":
        layers = layers[:-1]  # the output layer stays dense
    result = {}
    for name, module in layers:
        w = module.weight
        groups = {"unstructured": w.numel(), "neuron": w.shape[0], "channel": w.shape[1]}[pattern]
        result[f"{name}.weight"] = (groups, w.numel() // groups)
    return result


patterns = st.sampled_from(["unstructured", "neuron", "channel"])
scopes = st.sampled_from(["local", "global"])
criteria = st.sampled_from(["magnitude", "random"])
sparsities = st.floats(0.0, 0.95)


@given(model_inputs=small_models(), pattern=patterns, scope=scopes, criterion=criteria, sparsity=sparsities)
@SETTINGS
def test_masks_are_exact_well_shaped_and_leave_model_alone(model_inputs, pattern, scope, criterion, sparsity):
    model, _ = model_inputs
    before = state_copy(model)
    groups = expected_groups(model, pattern)
    if not groups:  # neuron on a single layer: only the output layer, which stays dense
        with pytest.raises(ValueError, match="nothing to prune"):
            wb.Pruner(model, criterion, pattern, scope)
        assert_same_state(state_copy(model), before)
        return
    pruner = wb.Pruner(model, criterion, pattern, scope)
    total = sum(g * size for g, size in groups.values())
    wanted = round(sparsity * total)
    reachable = total - sum(size for _, size in groups.values())  # global keeps one group per layer
    if scope == "global" and wanted > reachable:
        with pytest.raises(ValueError, match="empty a layer"):
            pruner.masks(sparsity)
        with pytest.raises(ValueError):
            pruner.apply(sparsity)
        assert_same_state(state_copy(model), before)
        assert not is_masked(model)
        return
    masks = pruner.masks(sparsity)
    assert_same_state(state_copy(model), before)
    assert set(masks) == set(groups)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert mask.shape == params[name].shape and mask.dtype == torch.bool
        unit = (
            mask.flatten(1)
            if pattern == "neuron"
            else mask.transpose(0, 1).flatten(1)
            if pattern == "channel"
            else None
        )
        if unit is not None:
            assert bool((unit.all(1) | ~unit.any(1)).all())  # whole rows / whole input columns
    counts = {name: int((~mask).sum()) for name, mask in masks.items()}
    if scope == "local":
        for name, (g, size) in groups.items():
            assert counts[name] == min(round(sparsity * g), g - 1) * size, name
    else:
        got = sum(counts.values())
        biggest = max(size for _, size in groups.values())
        assert got == wanted if pattern == "unstructured" else 0 <= wanted - got < biggest
        assert all(bool(mask.any()) for mask in masks.values())  # no layer emptied


@given(model_inputs=small_models(), pattern=patterns, scope=scopes, sparsity=sparsities)
@SETTINGS
def test_apply_at_zero_keeps_outputs_and_undo_is_exact(model_inputs, pattern, scope, sparsity):
    model, inputs = model_inputs
    if not expected_groups(model, pattern):
        return
    before = state_copy(model)
    with torch.no_grad():
        reference = model(inputs)
    pruner = wb.Pruner(model, "magnitude", pattern, scope)
    result = pruner.apply(0.0)
    assert result.pruned == 0 and all(bool(m.all()) for m in get_masks(model).values())
    with torch.no_grad():
        assert torch.equal(model(inputs), reference)
    try:
        result = pruner.apply(sparsity)
    except ValueError:
        assert scope == "global"  # too high for this model; the zero masks are still in place
        assert all(bool(m.all()) for m in get_masks(model).values())
    else:
        for name, mask in result.masks.items():
            layer = model.get_submodule(name.rpartition(".")[0])
            assert torch.equal(layer.weight, before[name] * mask)
    undo(model)
    assert not is_masked(model)
    assert_same_state(state_copy(model), before)
    with torch.no_grad():
        assert torch.equal(model(inputs), reference)


@given(model_inputs=small_models(), scope=scopes, a=sparsities, b=sparsities)
@SETTINGS
def test_unstructured_masks_are_nested_in_sparsity(model_inputs, scope, a, b):
    model, _ = model_inputs
    low, high = sorted((a, b))
    pruner = wb.Pruner(model, "magnitude", "unstructured", scope)
    try:
        high_masks = pruner.masks(high)
    except ValueError:
        assert scope == "global"
        return
    low_masks = pruner.masks(low)
    for name in low_masks:
        assert bool((high_masks[name] <= low_masks[name]).all())


@given(model_inputs=small_models(), sparsity=sparsities)
@SETTINGS
def test_local_unstructured_prunes_the_smallest_weights(model_inputs, sparsity):
    model, _ = model_inputs
    masks = wb.Pruner(model, "magnitude", "unstructured", "local").masks(sparsity)
    for name, mask in masks.items():
        magnitude = model.get_parameter(name).detach().abs()
        if bool((~mask).any()) and bool(mask.any()):
            assert magnitude[~mask].max() <= magnitude[mask].min()
