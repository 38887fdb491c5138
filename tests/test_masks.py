"""Masks as parametrizations: apply, read, train through, undo, bake, save and copy masked models."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from helpers import assert_same_state, state_copy
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

import workbench as wb
from workbench.masks import WeightMask, apply_masks, bake, dense_parameter, get_masks, is_masked, plain_state_dict, undo


def random_masks(model: nn.Module, seed: int, density: float = 0.5, names=None) -> dict[str, torch.Tensor]:
    """Seeded random bool masks for every (or the named) weight with dim > 1."""
    generator = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    names = names or [n for n, p in params.items() if n.endswith("weight") and p.dim() > 1]
    return {n: torch.rand(params[n].shape, generator=generator) < density for n in names}


def tiny_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


@pytest.fixture(scope="module")
def batch(digits):
    x, y = digits.train.tensors
    return x[:64], y[:64]


# ---- apply_masks: effective weight = original * mask ----


@given(seed=st.integers(0, 2**31 - 1), density=st.floats(0.0, 1.0))
@settings(max_examples=25, deadline=None)
def test_apply_masks_weight_is_original_times_mask(seed, density):
    model = tiny_mlp(seed % 7)
    before = state_copy(model)
    masks = random_masks(model, seed, density)
    apply_masks(model, masks)
    for name, mask in masks.items():
        module_name, _, leaf = name.rpartition(".")
        effective = getattr(model.get_submodule(module_name), leaf)
        assert torch.equal(effective, before[name] * mask)
        assert torch.equal(dense_parameter(model, name), before[name])  # the original is kept
        assert bool((effective[~mask] == 0).all())
    got = get_masks(model)
    assert got.keys() == masks.keys()
    for name in masks:
        assert got[name].dtype == torch.bool and torch.equal(got[name], masks[name])


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_all_ones_mask_changes_no_output(shipped, digits, name):
    model = shipped(name)
    x = digits.test.tensors[0][:50]
    with torch.no_grad():
        reference = model(x)
    ones = {
        n: torch.ones_like(p, dtype=torch.bool)
        for n, p in model.named_parameters()
        if n.endswith("weight") and p.dim() > 1
    }
    apply_masks(model, ones)
    assert is_masked(model)
    with torch.no_grad():
        assert torch.equal(model(x), reference)


def test_mask_is_a_buffer_not_a_parameter():
    model = tiny_mlp()
    apply_masks(model, random_masks(model, 1))
    for name, p in model.named_parameters():
        assert p.dtype != torch.bool, name
        assert "mask" not in name
    assert all(b.dtype == torch.bool for n, b in model.named_buffers() if n.endswith(".mask"))
    assert any(n.endswith(".mask") for n in model.state_dict())


# ---- masks survive training ----


OPTIMIZERS = {
    "sgd_momentum": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
    "adam": lambda params: torch.optim.Adam(params, lr=1e-2),
    "adamw_decay": lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.5),
}


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_masks_stay_applied_through_optimizer_steps(shipped, digits, model_name, optimizer):
    model = shipped(model_name)
    masks = random_masks(model, 3, density=0.4)
    apply_masks(model, masks)
    before = {n: dense_parameter(model, n).detach().clone() for n in masks}
    opt = OPTIMIZERS[optimizer](model.parameters())
    model.train()
    loader = torch.utils.data.DataLoader(digits.train, batch_size=64)
    for step, (x, y) in enumerate(loader):
        if step == 4:
            break
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        for name, mask in masks.items():  # pruned originals get exactly zero gradient
            grad = dense_parameter(model, name).grad
            assert bool((grad[~mask] == 0).all()), name
        opt.step()
        for name, mask in masks.items():
            module_name, _, leaf = name.rpartition(".")
            effective = getattr(model.get_submodule(module_name), leaf)
            assert bool((effective[~mask] == 0).all()), f"{name}: pruned weight revived after step {step}"
            assert torch.equal(get_masks(model)[name], mask)
    for name, mask in masks.items():  # training did happen
        assert not torch.equal(dense_parameter(model, name)[mask], before[name][mask]), name


# ---- undo / bake / plain state dicts ----


def test_undo_restores_original_bit_for_bit(shipped):
    model = shipped("cnn")
    before = state_copy(model)
    apply_masks(model, random_masks(model, 5))
    apply_masks(model, random_masks(model, 6), compose=True)
    undo(model)
    assert not is_masked(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert_same_state(state_copy(model), before)
    assert type(model.stem[0]) is nn.Conv2d


@pytest.mark.parametrize("model_name", ["mlp", "cnn", "transformer"])
def test_bake_leaves_plain_parameters_with_zeros(shipped, digits, model_name):
    model = shipped(model_name)
    dense = state_copy(model)
    masks = random_masks(model, 7)
    apply_masks(model, masks)
    x = digits.test.tensors[0][:20]
    with torch.no_grad():
        masked_out = model(x)
    bake(model)
    assert not is_masked(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    state = model.state_dict()
    assert state.keys() == dense.keys()  # plain names, no mask buffers
    for name, mask in masks.items():
        param = model.get_parameter(name)
        assert type(param) is nn.Parameter and param.requires_grad
        assert torch.equal(param.detach(), dense[name] * mask)
        assert bool((param[~mask] == 0).all())
    for name in dense:
        if name not in masks:
            assert torch.equal(state[name], dense[name]), name
    with torch.no_grad():
        assert torch.equal(model(x), masked_out)


@pytest.mark.parametrize("model_name", ["mlp", "cnn", "transformer"])
def test_plain_state_dict_loads_into_fresh_unmasked_model(shipped, digits, model_name):
    model = shipped(model_name)
    masks = random_masks(model, 8)
    apply_masks(model, masks)
    masked_state = state_copy(model)
    plain = plain_state_dict(model)
    assert_same_state(state_copy(model), masked_state)  # reading it changes nothing
    assert is_masked(model)
    fresh = wb.build_model(model_name, model.config)
    fresh.load_state_dict(plain, strict=True)
    for name, mask in masks.items():
        assert bool((fresh.get_parameter(name)[~mask] == 0).all())
    fresh.eval()
    x = digits.test.tensors[0][:30]
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_plain_state_dict_of_masked_root_module():
    layer = nn.Linear(4, 3)
    mask = torch.tensor([[True, False, True, False]] * 3)
    apply_masks(layer, {"weight": mask})
    assert get_masks(layer).keys() == {"weight"}
    fresh = nn.Linear(4, 3)
    fresh.load_state_dict(plain_state_dict(layer), strict=True)
    assert torch.equal(fresh.weight, layer.weight)
    assert bool((fresh.weight[~mask] == 0).all())


def test_state_dict_round_trips_through_torch_save_into_masked_model(shipped, digits):
    model = shipped("cnn")
    masks = random_masks(model, 9)
    apply_masks(model, masks)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    other = wb.build_model("cnn", model.config)
    apply_masks(other, {n: torch.ones_like(m) for n, m in masks.items()})  # same structure, different masks
    other.load_state_dict(loaded, strict=True)
    other.eval()
    got = get_masks(other)
    assert got.keys() == masks.keys()
    for name, mask in masks.items():
        assert torch.equal(got[name], mask)
        assert torch.equal(dense_parameter(other, name), dense_parameter(model, name))
    x = digits.test.tensors[0][:30]
    with torch.no_grad():
        assert torch.equal(other(x), model(x))


# ---- re-applying ----


def test_reapplying_replaces_and_compose_ands():
    model = tiny_mlp()
    dense = state_copy(model)
    first, second = random_masks(model, 10), random_masks(model, 11)
    apply_masks(model, first)
    apply_masks(model, second)
    for name in first:
        assert torch.equal(get_masks(model)[name], second[name])
        assert torch.equal(model.get_submodule(name.rpartition(".")[0]).weight, dense[name] * second[name])
    # exactly one WeightMask per parameter, however often masks are applied
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            assert len(module.parametrizations.weight) == 1
    apply_masks(model, first, compose=True)
    for name in first:
        assert torch.equal(get_masks(model)[name], first[name] & second[name])


def test_compose_on_unmasked_parameter_is_plain_apply():
    model = tiny_mlp()
    masks = random_masks(model, 12)
    apply_masks(model, masks, compose=True)
    for name in masks:
        assert torch.equal(get_masks(model)[name], masks[name])


def test_reapplying_does_not_mutate_callers_mask():
    model = tiny_mlp()
    first, second = random_masks(model, 13), random_masks(model, 14)
    kept = {n: m.clone() for n, m in first.items()}
    apply_masks(model, first)
    applied = apply_masks(model, second)
    for name in first:
        assert torch.equal(first[name], kept[name])
        assert torch.equal(applied[name], get_masks(model)[name])
    second[next(iter(second))].logical_not_()  # the caller's tensors are not the model's masks either
    assert torch.equal(get_masks(model)[next(iter(second))], ~second[next(iter(second))])


# ---- bad masks: ValueError, nothing applied ----


def _bad_mask_cases(model):
    good = torch.ones_like(model[0].weight, dtype=torch.bool)
    return {
        "shape": {"0.weight": good, "2.weight": torch.ones(4, 4, dtype=torch.bool)},
        "transposed": {"0.weight": good, "2.weight": torch.ones(5, 4, dtype=torch.bool)},
        "dtype_float": {"0.weight": good, "2.weight": torch.ones(4, 5)},
        "dtype_uint8": {"0.weight": good, "2.weight": torch.ones(4, 5, dtype=torch.uint8)},
        "no_module": {"0.weight": good, "7.weight": torch.ones(4, 5, dtype=torch.bool)},
        "no_parameter": {"0.weight": good, "2.gamma": torch.ones(4, 5, dtype=torch.bool)},
        "dotted_too_deep": {"0.weight": good, "2.weight.data": torch.ones(4, 5, dtype=torch.bool)},
    }


@pytest.mark.parametrize(
    "case", ["shape", "transposed", "dtype_float", "dtype_uint8", "no_module", "no_parameter", "dotted_too_deep"]
)
@pytest.mark.parametrize("premasked", [False, True])
def test_bad_mask_raises_and_applies_nothing(case, premasked):
    model = tiny_mlp()
    if premasked:
        apply_masks(model, random_masks(model, 15))
    before = state_copy(model)
    masks_before = {n: m.clone() for n, m in get_masks(model).items()}
    with pytest.raises(ValueError, match=r"mask|module|parameter"):
        apply_masks(model, _bad_mask_cases(model)[case])
    assert_same_state(state_copy(model), before)
    assert get_masks(model).keys() == masks_before.keys()
    for name, mask in masks_before.items():
        assert torch.equal(get_masks(model)[name], mask)
    assert is_masked(model) == premasked


@pytest.mark.parametrize("name, shape", [("fc1", (300, 64)), ("", (300, 64))])
def test_module_name_instead_of_parameter_name_is_a_value_error(shipped, name, shape):
    model = shipped("mlp")
    before = state_copy(model)
    with pytest.raises(ValueError, match="parameter"):
        apply_masks(
            model, {"fc1.weight": torch.ones(300, 64, dtype=torch.bool), name: torch.ones(shape, dtype=torch.bool)}
        )
    assert_same_state(state_copy(model), before)
    assert not is_masked(model)


def test_buffer_name_is_not_a_parameter(shipped):
    model = shipped("cnn")
    before = state_copy(model)
    with pytest.raises(ValueError, match="parameter"):
        apply_masks(model, {"stem.1.running_mean": torch.ones(32, dtype=torch.bool)})
    assert_same_state(state_copy(model), before)
    assert not is_masked(model)


def test_non_tensor_mask_is_a_value_error():
    model = tiny_mlp()
    before = state_copy(model)
    try:
        with pytest.raises(ValueError, match="bool tensor"):
            apply_masks(model, {"0.weight": [[True] * 6] * 5})
    finally:
        assert_same_state(state_copy(model), before)


# ---- pruning touches weights only; copying ----


def test_biases_untouched_by_default(shipped):
    model = shipped("mlp")
    before = state_copy(model)
    result = wb.prune(model, sparsity=0.7, criterion="magnitude", pattern="unstructured", scope="global")
    assert set(get_masks(model)) == {"fc1.weight", "fc2.weight", "fc3.weight"} == set(result.masks)
    for name in ("fc1.bias", "fc2.bias", "fc3.bias"):
        assert not parametrize.is_parametrized(model.get_submodule(name.split(".")[0]), "bias")
        assert torch.equal(model.get_parameter(name), before[name])


def test_masked_model_deep_copies_independently(shipped, digits):
    model = shipped("mlp")
    masks = random_masks(model, 16)
    apply_masks(model, masks)
    clone = copy.deepcopy(model)
    x = digits.test.tensors[0][:20]
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))
    for name in masks:
        assert torch.equal(get_masks(clone)[name], masks[name])
        assert get_masks(clone)[name].data_ptr() != get_masks(model)[name].data_ptr()
    apply_masks(clone, {"fc1.weight": torch.zeros(300, 64, dtype=torch.bool)})
    assert torch.equal(get_masks(model)["fc1.weight"], masks["fc1.weight"])


def test_undo_of_deep_copy_leaves_original_masked(shipped, digits):
    model = shipped("mlp")
    apply_masks(model, random_masks(model, 17))
    x = digits.test.tensors[0][:20]
    with torch.no_grad():
        reference = model(x)
    clone = copy.deepcopy(model)
    undo(clone)
    with torch.no_grad():
        assert torch.equal(model(x), reference)


def test_weight_mask_repr_reports_sparsity():
    mask = WeightMask(torch.tensor([True, False, False, False]))
    assert "sparsity=0.750" in repr(mask)


def test_root_level_parameter_can_be_masked_and_saved(shipped, digits):
    model = shipped("transformer")
    mask = torch.rand(model.pos_embed.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    before = state_copy(model)
    apply_masks(model, {"pos_embed": mask})
    assert set(get_masks(model)) == {"pos_embed"}
    assert torch.equal(model.pos_embed, before["pos_embed"] * mask)
    fresh = wb.build_model("transformer", model.config).eval()
    fresh.load_state_dict(plain_state_dict(model), strict=True)
    x = digits.test.tensors[0][:10]
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
    undo(model)
    assert_same_state(state_copy(model), before)
