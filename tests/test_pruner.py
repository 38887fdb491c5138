"""Pruner / wb.prune: every criterion × pattern × scope, exact sparsities, validation, and the PruneResult table."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import assert_same_state, retry_load, state_copy
from hypothesis import given, settings
from hypothesis import strategies as st
from test_patterns import check_structure, head_keep
from torch import nn

import workbench as wb
from workbench.criteria import CRITERIA
from workbench.masks import apply_masks, get_masks, is_masked
from workbench.patterns import parse_pattern

FAST = {"max_batches": 1, "max_samples": 32, "batch_size": 32, "steps": 5}
PATTERNS = ("unstructured", "2:4", "block1x4", "block4x4", "kernel", "neuron", "channel", "head")
SCOPES = ("local", "global")
LAST_LAYER = {"mlp": "fc3", "cnn": "fc", "transformer": "head"}


def pruned(mask: torch.Tensor) -> int:
    return int((~mask).sum())


# ---- which model each combination runs on ----


def exclusions(model_name: str, pattern: str, criterion: str) -> tuple[str, ...] | str:
    """Layers to leave out for the combination to apply, or a string saying why it cannot."""
    p = parse_pattern(pattern)
    if p.kind == "kernel" and model_name != "cnn":
        return f"kernel prunes k×k kernels of Conv layers; {model_name} has none"
    if p.kind == "head" and model_name != "transformer":
        return f"head needs attention modules; {model_name} has none"
    if criterion == "bn_scale" and model_name != "cnn":
        return f"bn_scale needs a BatchNorm after each pruned layer; {model_name} has no BatchNorm"
    exclude = []
    if criterion == "bn_scale" and p.kind != "output":
        exclude.append("fc")  # the classifier has no BatchNorm after it
    if model_name == "cnn" and (p.kind == "nm" or (p.kind == "block" and p.block[1] > 1)):
        exclude.append("stem.0")  # 1 input channel: 9 columns, not divisible by M or 4
    if p.kind == "block" and p.block[0] == 4 and model_name in ("mlp", "cnn", "transformer"):
        exclude.append(LAST_LAYER[model_name])  # 10 classes: not divisible into 4-row tiles
    return tuple(dict.fromkeys(exclude))


MODEL_FOR_PATTERN = {
    "unstructured": "mlp",
    "2:4": "cnn",
    "block1x4": "mlp",
    "block4x4": "cnn",
    "kernel": "cnn",
    "neuron": "mlp",
    "channel": "transformer",
    "head": "transformer",
}


def _cases():
    cases = []
    for criterion in CRITERIA:
        for pattern in PATTERNS:
            for scope in SCOPES:
                models = (
                    ("mlp", "cnn", "transformer")
                    if criterion == "magnitude"
                    else ("cnn" if criterion == "bn_scale" and pattern != "head" else MODEL_FOR_PATTERN[pattern],)
                )
                cases += [
                    pytest.param(criterion, pattern, scope, m, id=f"{criterion}-{pattern}-{scope}-{m}") for m in models
                ]
    return cases


def expected_targets(model, model_name, pattern, exclude):
    """Target name → (names of its weights, number of groups, elements per group), from the pattern's meaning."""
    p = parse_pattern(pattern)
    if p.kind == "head":
        result = {}
        for name, module in model.named_modules():
            if hasattr(module, "num_heads") and name not in exclude:
                params = [f"{name}.{part}.weight" for part in ("q", "k", "v", "out")]
                result[name] = (
                    params,
                    module.num_heads,
                    sum(model.get_parameter(n).numel() for n in params) // module.num_heads,
                )
        return result
    result = {}
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or name in exclude:
            continue
        if p.kind == "output" and name == LAST_LAYER[model_name]:
            continue
        if p.kind == "kernel" and not isinstance(module, nn.Conv2d):
            continue
        w = module.weight
        size = {
            "unstructured": 1,
            "kernel": w[0, 0].numel(),
            "output": w[0].numel(),
            "input": w.numel() // w.shape[1],
            "nm": 1,
        }.get(p.kind) or p.block[0] * p.block[1]
        result[name] = ([f"{name}.weight"], w.numel() // size, size)
    return result


def check_exact(targets, masks, sparsity, pattern, scope) -> None:
    p = parse_pattern(pattern)
    if p.kind == "nm":
        for mask in masks.values():
            assert pruned(mask) * p.m == mask.numel() * (p.m - p.n)
        return
    total = sum(groups * size for _, groups, size in targets.values())
    if scope == "local":
        for name, (params, groups, size) in targets.items():
            count = min(round(sparsity * groups), groups - 1)
            assert sum(pruned(masks[n]) for n in params) == count * size, f"{name}: not exactly round(s·groups) groups"
    else:
        wanted = round(sparsity * total)
        got = sum(pruned(m) for m in masks.values())
        if p.kind == "unstructured":
            assert got == wanted
        else:
            biggest = max(size for _, _, size in targets.values())
            assert abs(got - wanted) < biggest, f"{got} pruned, {wanted} asked, groups up to {biggest}"
        for name, (params, _, _) in targets.items():  # no layer emptied
            assert any(bool(masks[n].any()) for n in params), f"global scope emptied {name}"


@pytest.fixture(scope="module")
def test_inputs(digits):
    return digits.test.tensors[0][:32]


@pytest.mark.parametrize("criterion, pattern, scope, model_name", _cases())
def test_every_criterion_pattern_scope(shipped, digits, test_inputs, criterion, pattern, scope, model_name):
    exclude = exclusions(model_name, pattern, criterion)
    if isinstance(exclude, str):
        pytest.skip(exclude)
    model = shipped(model_name)
    before = state_copy(model)
    with torch.no_grad():
        reference = model(test_inputs)
    nm = parse_pattern(pattern).kind == "nm"
    options = CRITERIA[criterion].accepted(FAST)

    def make():
        return wb.Pruner(model, criterion, pattern, scope, data=digits, exclude=exclude, criterion_options=options)

    pruner = make()
    targets = expected_targets(model, model_name, pattern, exclude)
    weight_names = {n for params, _, _ in targets.values() for n in params}
    for sparsity in [None] if nm else [0.3, 0.7]:
        masks = pruner.masks(sparsity)
        assert set(masks) == weight_names
        for name, mask in masks.items():
            assert mask.shape == model.get_parameter(name).shape and mask.dtype == torch.bool, name
        check_structure(pattern, masks, model)
        check_exact(targets, masks, sparsity, pattern, scope)
    assert_same_state(state_copy(model), before)  # scoring and masks() leave the model alone
    again = make()
    for sparsity in [None] if nm else [0.3, 0.7]:  # deterministic
        first, second = pruner.masks(sparsity), again.masks(sparsity)
        assert all(torch.equal(first[n], second[n]) for n in first)
    if nm:
        result = pruner.apply()
        assert result.sparsity == pytest.approx(parse_pattern(pattern).fixed_sparsity)
        return
    zero = pruner.masks(0.0)
    assert all(bool(m.all()) for m in zero.values())
    result = pruner.apply(0.0)
    assert result.pruned == 0 and is_masked(model)
    with torch.no_grad():
        assert torch.equal(model(test_inputs), reference)


# ---- inapplicable combinations fail cleanly ----


@pytest.mark.parametrize(
    "model_name, pattern, criterion, exclude, message",
    [
        ("mlp", "kernel", "magnitude", (), "Conv"),
        ("transformer", "kernel", "taylor", (), "Conv"),
        ("mlp", "head", "magnitude", (), "attention"),
        ("cnn", "head", "random", (), "attention"),
        ("cnn", "2:4", "magnitude", (), "stem.0"),
        ("cnn", "block1x4", "magnitude", (), "stem.0"),
        ("mlp", "neuron", "bn_scale", (), "BatchNorm"),
        ("cnn", "unstructured", "bn_scale", (), "BatchNorm"),
        ("transformer", "head", "bn_scale", (), "BatchNorm"),
    ],
)
def test_inapplicable_combination_raises_and_leaves_model_unchanged(
    shipped, digits, model_name, pattern, criterion, exclude, message
):
    model = shipped(model_name)
    before = state_copy(model)
    with pytest.raises(ValueError, match=message):
        wb.prune(
            model,
            sparsity=None if parse_pattern(pattern).kind == "nm" else 0.5,
            criterion=criterion,
            pattern=pattern,
            data=digits,
            exclude=exclude,
        )
    assert_same_state(state_copy(model), before)
    assert not is_masked(model)


# ---- validation: ValueError, model unchanged ----


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sparsity": -0.1}, "sparsity"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"sparsity": 1.5}, "sparsity"),
        ({"sparsity": "x"}, "sparsity"),
        ({"sparsity": float("nan")}, "sparsity"),
        ({"sparsity": 0.3, "pattern": "2:4"}, "2:4"),
        ({"sparsity": 0.999, "pattern": "neuron", "scope": "global"}, "empty a layer"),
        ({"sparsity": 0.99999, "pattern": "unstructured", "scope": "global"}, "empty a layer"),
        ({"sparsity": 0.5, "layer_sparsity": {"fc4": 0.5}}, "fc4"),
        ({"sparsity": 0.5, "layer_sparsity": {"fc1.weight": 0.5}}, "fc1.weight"),
        ({"sparsity": 0.5, "pattern": "neuron", "layer_sparsity": {"fc3": 0.5}}, "fc3"),
        ({"sparsity": 0.5, "layer_sparsity": {"fc1": 1.0}}, "fc1"),
        ({"sparsity": 0.5, "layer_sparsity": {"fc1": 0.5}, "scope": "global"}, "local"),
        ({"sparsity": None, "pattern": "2:4", "layer_sparsity": {"fc1": 0.5}}, "2:4"),
        ({"sparsity": 0.5, "scope": "layer"}, "scope"),
        ({"sparsity": 0.5, "reduce": "max"}, "reduce"),
        ({"sparsity": 0.5, "normalize": "l1"}, "normalize"),
        ({"sparsity": 0.5, "pattern": "neurons"}, "pattern"),
        ({"sparsity": 0.5, "iterations": 0}, "iterations"),
        ({"sparsity": 0.5, "iterations": 3, "layer_sparsity": {"fc1": 0.2}}, "iterations"),
    ],
)
def test_bad_arguments_raise_and_leave_model_unchanged(shipped, kwargs, message):
    model = shipped("mlp")
    before = state_copy(model)
    with pytest.raises(ValueError, match=message):
        wb.prune(model, **kwargs)
    assert_same_state(state_copy(model), before)
    assert not is_masked(model)


def test_global_sparsity_up_to_one_group_per_layer_is_reachable(shipped):
    model = shipped("mlp")
    pruner = wb.Pruner(model, "magnitude", "unstructured", "global")
    total = 19200 + 30000 + 1000
    masks = pruner.masks((total - 3) / total)  # everything but one weight per layer
    assert [int(m.sum()) for m in masks.values()] == [1, 1, 1]
    for name, mask in masks.items():  # the survivor is the layer's largest weight
        assert (
            model.get_parameter(name).detach().abs()[mask].item()
            == model.get_parameter(name).detach().abs().max().item()
        )


# ---- layer_sparsity ----


def test_layer_sparsity_is_respected_exactly(shipped):
    model = shipped("mlp")
    result = wb.prune(model, sparsity=0.5, layer_sparsity={"fc1": 0.3, "fc2": 0.7})
    assert [(l.name, l.pruned) for l in result.layers] == [
        ("fc1.weight", round(0.3 * 19200)),
        ("fc2.weight", round(0.7 * 30000)),
        ("fc3.weight", round(0.5 * 1000)),
    ]
    model = shipped("mlp")
    result = wb.prune(model, sparsity=None, pattern="neuron", layer_sparsity={"fc2": 0.25})
    assert [(l.name, l.pruned) for l in result.layers] == [("fc1.weight", 0), ("fc2.weight", 25 * 300)]


def test_local_sparsity_that_would_empty_a_layer_keeps_one_group(shipped):
    model = shipped("mlp")
    result = wb.prune(model, sparsity=0.5, pattern="neuron", layer_sparsity={"fc2": 0.999})
    assert [l.pruned for l in result.layers] == [150 * 64, 99 * 300]
    assert any("fc2" in note for note in result.notes)


# ---- re-pruning and composing ----


def test_pruner_apply_replaces_masks_and_restores_weights(shipped):
    model = shipped("mlp")
    dense = state_copy(model)
    pruner = wb.Pruner(model, "magnitude", "unstructured", "local")
    pruner.apply(0.8)
    low = pruner.apply(0.3)
    for name in ("fc1.weight", "fc2.weight", "fc3.weight"):
        mask = get_masks(model)[name]
        assert pruned(mask) == round(0.3 * mask.numel())
        layer = model.get_submodule(name.split(".")[0])
        assert torch.equal(layer.weight, dense[name] * mask)  # weights pruned at 0.8 but kept at 0.3 are back
    assert low.pruned == sum(round(0.3 * n) for n in (19200, 30000, 1000))
    wb.masks.undo(model)
    assert_same_state(state_copy(model), dense)


def test_repruning_with_wb_prune_at_lower_sparsity_restores_weights(shipped, test_inputs):
    model = shipped("mlp")
    dense = state_copy(model)
    wb.prune(model, sparsity=0.8)
    result = wb.prune(model, sparsity=0.3)
    assert result.pruned == sum(round(0.3 * n) for n in (19200, 30000, 1000))
    for name, mask in get_masks(model).items():
        assert torch.equal(model.get_submodule(name.split(".")[0]).weight, dense[name] * mask)


def test_pruner_leaves_a_masked_model_working(shipped, test_inputs):
    model = shipped("mlp")
    wb.prune(model, sparsity=0.5)
    with torch.no_grad():
        reference = model(test_inputs)
    wb.Pruner(model, "magnitude", "unstructured")
    with torch.no_grad():
        assert torch.equal(model(test_inputs), reference)


def test_compose_only_grows_the_pruned_set(shipped):
    model = shipped("mlp")
    first = {n: m.clone() for n, m in wb.prune(model, sparsity=0.5, criterion="random").masks.items()}
    second = wb.prune(model, sparsity=0.7, criterion="magnitude", compose=True).masks
    for name in first:
        assert bool((second[name] <= first[name]).all())  # pruned at 0.5 → still pruned
    assert second and sum(pruned(m) for m in second.values()) == round(0.7 * 50200)


def test_prune_result_masks_are_a_snapshot(shipped):
    model = shipped("mlp")
    pruner = wb.Pruner(model, "magnitude", "unstructured")
    first = pruner.apply(0.5)
    pruner.apply(0.8)
    assert first.pruned == sum(pruned(m) for m in first.masks.values())


@pytest.mark.parametrize("scope", ["local", "global"])
def test_iterations_reach_requested_sparsity_exactly(shipped, scope):
    model = shipped("mlp")
    result = wb.prune(model, sparsity=0.9, scope=scope, iterations=5)
    if scope == "global":
        assert result.pruned == round(0.9 * 50200)
    else:
        assert [l.pruned for l in result.layers] == [round(0.9 * n) for n in (19200, 30000, 1000)]
    assert wb.sparsity_report(model).pruned == result.pruned


@pytest.mark.parametrize("kwargs", [{"criterion": "taylor"}, {"sparsity": 1.0}, {"pattern": "kernel"}])
def test_failed_iterative_prune_leaves_model_unchanged(shipped, kwargs):
    model = shipped("mlp")
    before = state_copy(model)
    with pytest.raises(ValueError):
        wb.prune(model, **{"sparsity": 0.9, "iterations": 3, **kwargs})
    assert_same_state(state_copy(model), before)
    assert not is_masked(model)


# ---- nested masks ----


@pytest.fixture(scope="module")
def mlp_pruners():
    model = retry_load(lambda: wb.pretrained("mlp"))
    return {scope: wb.Pruner(model, "magnitude", "unstructured", scope) for scope in SCOPES} | {
        "taylor-global": wb.Pruner(
            model,
            "taylor",
            "unstructured",
            "global",
            data=wb.load_dataset("digits"),
            criterion_options={"max_batches": 1},
        ),
        "neuron-local": wb.Pruner(model, "magnitude", "neuron", "local"),
    }


@given(a=st.floats(0, 0.99), b=st.floats(0, 0.99))
@settings(max_examples=25, deadline=None)
@pytest.mark.parametrize("which", ["local", "global", "taylor-global", "neuron-local"])
def test_masks_at_higher_sparsity_are_nested(mlp_pruners, which, a, b):
    s1, s2 = sorted((a, b))
    pruner = mlp_pruners[which]
    low, high = pruner.masks(s1), pruner.masks(s2)
    for name in low:
        assert bool((high[name] <= low[name]).all()), f"{name}: a weight pruned at {s1} is kept at {s2}"


# ---- accuracy, reports, lamp ----


@pytest.mark.parametrize("model_name, pattern", [("mlp", "unstructured"), ("cnn", "filter"), ("transformer", "head")])
def test_pruner_accuracy_equals_evaluate_after_apply(shipped, digits, model_name, pattern):
    model = shipped(model_name)
    pruner = wb.Pruner(model, "magnitude", pattern, "global")
    masks = pruner.masks(0.5)
    predicted = pruner.accuracy(masks, digits.test)
    assert pruner.accuracy(masks, digits.test.tensors) == predicted
    pruner.apply(0.5)
    assert predicted == wb.evaluate(model, digits.test)


@pytest.mark.parametrize(
    "model_name, pattern, sparsity",
    [("mlp", "unstructured", 0.6), ("mlp", "neuron", 0.4), ("cnn", "kernel", 0.5), ("transformer", "head", 0.5)],
)
def test_sparsity_report_matches_prune_result(shipped, model_name, pattern, sparsity):
    model = shipped(model_name)
    assert wb.sparsity_report(model).pruned == 0  # shipped weights have no exact zeros
    result = wb.prune(model, sparsity=sparsity, pattern=pattern, scope="global")
    report = {l.name: l for l in wb.sparsity_report(model).layers}
    assert set(result.masks) <= set(report)
    for layer in result.layers:
        assert (report[layer.name].shape, report[layer.name].total, report[layer.name].pruned) == (
            layer.shape,
            layer.total,
            layer.pruned,
        )
        assert layer.pruned == pruned(result.masks[layer.name])
    assert all(l.pruned == 0 for name, l in report.items() if name not in result.masks)
    assert result.pruned == sum(l.pruned for l in result.layers) == wb.sparsity_report(model).pruned
    assert result.total == sum(m.numel() for m in result.masks.values())
    table = str(result)
    assert all(layer.name in table for layer in result.layers)
    assert result.to_dict()["pruned"] == result.pruned


def test_sparsity_report_of_a_bare_layer():
    layer = nn.Linear(4, 3)
    assert [(l.name, l.total) for l in wb.sparsity_report(layer).layers] == [("weight", 12)]
    apply_masks(layer, {"weight": torch.tensor([[True, False, True, False]] * 3)})
    assert [(l.name, l.pruned) for l in wb.sparsity_report(layer).layers] == [("weight", 6)]


def test_lamp_global_is_exact_and_allocates_differently(shipped):
    model = shipped("mlp")
    plain = wb.Pruner(model, "magnitude", "unstructured", "global")
    lamp = wb.Pruner(model, "magnitude", "unstructured", "global", normalize="lamp")
    for s in (0.5, 0.9):
        a, b = plain.masks(s), lamp.masks(s)
        assert sum(pruned(m) for m in b.values()) == round(s * 50200)
        assert [pruned(m) for m in a.values()] != [pruned(m) for m in b.values()]
    # lamp keeps more of the small output layer at high sparsity than plain magnitude does
    assert pruned(lamp.masks(0.9)["fc3.weight"]) < pruned(plain.masks(0.9)["fc3.weight"])
    # LAMP is monotone inside a layer: local masks are unchanged by it
    local_plain = wb.Pruner(model, "magnitude", "unstructured", "local")
    local_lamp = wb.Pruner(model, "magnitude", "unstructured", "local", normalize="lamp")
    for name, mask in local_plain.masks(0.7).items():
        assert torch.equal(mask, local_lamp.masks(0.7)[name])


def test_reduce_sum_ranks_neurons_by_l1_norm(shipped):
    model = shipped("mlp")
    masks = wb.Pruner(model, "magnitude", "neuron", "local", reduce="sum").masks(0.4)
    for name in ("fc1.weight", "fc2.weight"):
        norms = model.get_parameter(name).detach().abs().sum(1)
        kept = masks[name].all(1)
        assert int((~kept).sum()) == round(0.4 * len(norms))
        assert norms[kept].min() > norms[~kept].max()


def test_sparsity_none_prunes_nothing_and_nm_defaults_to_its_ratio(shipped):
    model = shipped("mlp")
    assert wb.prune(model, sparsity=None).pruned == 0
    model = shipped("mlp")
    result = wb.prune(model, sparsity=None, pattern="1:4")
    assert result.sparsity == 0.75
    model = shipped("mlp")
    assert wb.prune(model, sparsity=0.75, pattern="1:4").sparsity == 0.75


def test_head_pruning_reports_heads(shipped):
    model = shipped("transformer")
    result = wb.prune(model, sparsity=0.5, pattern="head", scope="local")
    for i in range(model.config.depth):
        keep = head_keep(model, f"blocks.{i}.attn", result.masks)
        assert int(keep.sum()) == model.config.num_heads // 2


def test_prune_does_not_touch_a_deep_copy(shipped):
    model = shipped("cnn")
    twin = copy.deepcopy(model)
    before = state_copy(twin)
    wb.prune(model, sparsity=0.5, pattern="filter")
    assert_same_state(state_copy(twin), before)
    assert not is_masked(twin)


# ---- documented tie-breaking: lower position (layer order, then flat index) is pruned first ----


def _constant_model() -> nn.Module:
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    return model


def test_ties_local_prune_lower_flat_index_first():
    model = _constant_model()
    masks = wb.Pruner(model, "magnitude", "unstructured", "local").masks(0.25)
    for name, mask in masks.items():
        flat = mask.flatten()
        k = round(0.25 * flat.numel())
        assert not bool(flat[:k].any()) and bool(flat[k:].all()), name


def test_ties_global_prune_earlier_layers_first_but_never_empty_one():
    model = _constant_model()
    masks = wb.Pruner(model, "magnitude", "unstructured", "global").masks(0.75)  # 36 of 48
    first, second = masks["0.weight"].flatten(), masks["2.weight"].flatten()
    assert int((~first).sum()) == 31 and bool(first[-1])  # all of layer 0 but its held-back weight
    assert not bool(second[:5].any()) and bool(second[5:].all())
    assert int((~first).sum() + (~second).sum()) == 36


def test_ties_nm_keep_lower_inputs():
    model = _constant_model()
    masks = wb.Pruner(model, "magnitude", "2:4").masks()
    assert masks["0.weight"][0].tolist() == [True, True, False, False] * 2
    assert masks["2.weight"][0].tolist() == [True, True, False, False]


@pytest.mark.parametrize("pattern", ["unstructured", "neuron"])
def test_lamp_composes_with_existing_masks_and_never_empties_a_layer(shipped, pattern):
    """Composing used to square the −∞ of pruned groups inside LAMP, which pruned every weight."""
    model = shipped("mlp")
    wb.prune(model, 0.5, pattern=pattern, scope="global", normalize="lamp")
    result = wb.prune(model, 0.8, pattern=pattern, scope="global", normalize="lamp", compose=True)
    assert abs(result.sparsity - 0.8) < 0.02
    for layer in result.layers:
        assert layer.kept > 0, layer.name
