"""Whole-group pruning and ``wb.shrink``: every chosen unit goes, outputs stay equal, inputs are checked."""

import copy

import pytest
import torch
from torch.nn.utils import prune as torch_prune

import workbench as wb
from workbench.masks import get_masks, is_masked
from workbench.structure.group_prune import GroupPruner


@pytest.fixture(scope="module")
def digits():
    return wb.load_dataset("digits")


@pytest.fixture(scope="module")
def models():
    return {name: wb.pretrained(name) for name in ("mlp", "cnn", "transformer")}


def _inputs(name, x):
    return x.flatten(1) if name == "mlp" else x


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


CASES = [("mlp", "neuron"), ("cnn", "filter"), ("transformer", "head"), ("transformer", "neuron")]


@pytest.mark.parametrize("name,pattern", CASES)
@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7])
def test_every_chosen_unit_is_removed_and_outputs_match(models, digits, name, pattern, scope, sparsity):
    x = _inputs(name, digits.test.tensors[0])
    model = copy.deepcopy(models[name])
    pruner = GroupPruner(model, "l1", x[:8], pattern=pattern, scope=scope)
    removed, _ = pruner.plan(sparsity)
    result = pruner.apply(sparsity)
    assert result.masks and is_masked(model)
    small, report = wb.shrink_with_report(model, example_inputs=x[:8])
    assert report.removed == {gid: units.tolist() for gid, units in removed.items()}
    with torch.no_grad():
        assert _relative_error(small(x), model(x)) <= 1e-5
    total = sum(g.size for g in pruner.groups)
    gone = sum(len(u) for u in removed.values())
    if scope == "local":
        assert all(len(removed.get(g.id, [])) == min(round(sparsity * g.size), g.size - 1) for g in pruner.groups)
    else:
        assert gone == round(sparsity * total)
    assert wb.count_parameters(small) < wb.count_parameters(models[name])


def test_parameter_count_falls_by_exactly_the_removed_slices(models):
    model = models["cnn"]
    small, report = wb.shrink_with_report(model, sparsity=0.5, pattern="filter")
    widths = {g.id: g.size for g in report.graph.groups}
    kept = {gid: widths[gid] - len(units) for gid, units in report.removed.items()}
    assert kept == {0: 16, 1: 16, 2: 32, 3: 32}
    expected = (  # residual stream 32→16 (stem, block1), 64→32 (down, block2), inner widths halved
        16 * 9 + 2 * 16 + 2 * (16 * 16 * 9 + 2 * 16) + 32 * 16 * 9 + 2 * 32 + 2 * (32 * 32 * 9 + 2 * 32) + 10 * 32 + 10
    )
    assert wb.count_parameters(small) == report.params_after == expected


def test_heads_follow_the_group_and_the_module_count(models, digits):
    x = digits.test.tensors[0]
    small = wb.shrink(models["transformer"], sparsity=0.5, pattern="head")
    for block in small.blocks:
        assert block.attn.num_heads == 2
        assert block.attn.q.weight.shape[0] == 2 * block.attn.head_dim
        assert block.attn.out.weight.shape[1] == 2 * block.attn.head_dim
    assert small(x[:3]).shape == (3, 10)


def test_l1_groups_of_a_single_layer_match_torch_ln_structured(models):
    model = models["mlp"]
    pruner = GroupPruner(model, "l1", pattern="neuron")
    removed, _ = pruner.plan(0.4)
    reference = copy.deepcopy(model)
    torch_prune.ln_structured(reference.fc1, "weight", amount=0.4, n=1, dim=0)
    torch_gone = (~reference.fc1.weight_mask.bool().all(dim=1)).nonzero().flatten()
    fc1_group = next(
        g for g in pruner.groups if any(m.param == "fc1.weight" and m.role == "producer" for m in g.members)
    )
    assert torch.equal(removed[fc1_group.id], torch_gone)


def test_bn_scale_removes_the_smallest_gammas(models):
    model = models["cnn"]
    pruner = GroupPruner(model, "bn_scale", pattern="filter")
    removed, _ = pruner.plan(0.25)
    group = next(
        g for g in pruner.groups if any(m.param == "block1.conv1.weight" and m.role == "producer" for m in g.members)
    )
    gamma = model.block1.bn1.weight.detach().abs()
    assert torch.equal(removed[group.id], gamma.argsort(stable=True)[:8].sort().values)


@pytest.mark.parametrize("criterion", ["l1", "l2", "fpgm", "bn_scale", "apoz", "mean_activation", "taylor", "random"])
def test_group_criteria_shrink_exactly(models, digits, criterion):
    model = models["cnn"]
    x = digits.test.tensors[0]
    pruner = GroupPruner(model, criterion, pattern="filter", data=digits)
    masks = pruner.masks(0.5)
    small, report = wb.shrink_with_report(model, masks=masks)
    masked = copy.deepcopy(model)
    wb.masks.apply_masks(masked, masks)
    with torch.no_grad():
        assert _relative_error(small(x), masked(x)) <= 1e-5
    assert report.params_after < report.params_before / 3.5


def test_random_criterion_depends_on_the_seed(models):
    a = GroupPruner(models["mlp"], "random", pattern="neuron", criterion_options={"seed": 0}).plan(0.5)[0]
    b = GroupPruner(models["mlp"], "random", pattern="neuron", criterion_options={"seed": 1}).plan(0.5)[0]
    assert any(not torch.equal(a[g], b[g]) for g in a)


def test_keep_multiple_rounds_kept_units(models):
    small, report = wb.shrink_with_report(models["mlp"], sparsity=0.55, pattern="neuron", keep_multiple=16)
    assert small.fc1.out_features % 16 == 0 and small.fc2.out_features % 16 == 0
    assert small.fc1.out_features >= round(300 * 0.45)
    assert any("multiple of 16" in note for note in report.notes)


def test_local_scope_keeps_one_unit_and_says_so(models):
    small, report = wb.shrink_with_report(models["transformer"], sparsity=0.95, pattern="head")
    assert all(block.attn.num_heads == 1 for block in small.blocks)
    assert any("kept 1" in note for note in report.notes)


def test_global_sparsity_beyond_the_keep_rule_is_an_error(models):
    model = copy.deepcopy(models["transformer"])
    before = _state(model)
    with pytest.raises(ValueError, match="at most"):
        wb.shrink(model, sparsity=0.9, pattern="head", scope="global", keep_multiple=2)
    with pytest.raises(ValueError, match="at most"):
        wb.prune(model, sparsity=0.9, pattern="head", scope="global", coupled=True, keep_multiple=2)
    assert not is_masked(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_coupled_prune_then_shrink_equals_shrink_at_a_sparsity(models, digits):
    x = digits.test.tensors[0]
    model = copy.deepcopy(models["cnn"])
    result = wb.prune(model, sparsity=0.5, pattern="filter", criterion="l1", coupled=True)
    assert "stem.1.bias" in result.masks  # BatchNorm masked with its filters
    via_masks = wb.shrink(model)
    direct = wb.shrink(models["cnn"], sparsity=0.5, pattern="filter", criterion="l1")
    assert [p.shape for p in via_masks.parameters()] == [p.shape for p in direct.parameters()]
    with torch.no_grad():
        assert torch.allclose(via_masks(x), direct(x), atol=1e-6)


def test_shrink_keeps_the_models_other_masks_and_never_mutates_it(models, digits):
    x = digits.test.tensors[0].flatten(1)
    model = copy.deepcopy(models["mlp"])
    wb.prune(model, sparsity=0.5, pattern="unstructured")
    before, masks_before = _state(model), {k: v.clone() for k, v in get_masks(model).items()}
    small = wb.shrink(model, sparsity=0.5, pattern="neuron")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(masks_before[k], v) for k, v in get_masks(model).items())
    zeros = int((small.fc3.weight == 0).sum())
    assert zeros > 0  # the unstructured zeros of kept units survive
    assert small(x[:2]).shape == (2, 10)


def test_user_model_needs_and_uses_example_inputs():
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    with pytest.raises(ValueError, match="example_inputs"):
        wb.shrink(model, sparsity=0.5)
    small = wb.shrink(model, example_inputs=torch.randn(4, 6), sparsity=0.5)
    assert small[0].out_features == 6 and small[2].in_features == 6


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m: wb.shrink(m, sparsity=0.5, pattern="unstructured"), "does not remove whole units"),
        (lambda m: wb.shrink(m, sparsity=0.5, scope="layer"), "unknown scope"),
        (lambda m: wb.shrink(m, sparsity=1.0), r"\[0, 1\)"),
        (lambda m: wb.shrink(m, sparsity=0.5, keep_multiple=0), "keep_multiple"),
        (lambda m: wb.shrink(m, sparsity=0.5, criterion="apoz"), "scores with data"),
        (lambda m: wb.shrink(m, sparsity=0.5, criterion="nope"), "unknown criterion"),
        (lambda m: wb.shrink(m, pattern="neuron"), "with sparsity="),
        (lambda m: wb.shrink(m, masks={"fc1.weight": torch.ones(300, 64, dtype=torch.bool)}, sparsity=0.5), "not both"),
        (lambda m: wb.prune(m, 0.5, pattern="neuron", coupled=True, iterations=2), "do not apply"),
        (lambda m: wb.prune(m, 0.5, pattern="neuron", example_inputs=torch.randn(2, 64)), "coupled=True"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(models, call, message):
    model = copy.deepcopy(models["mlp"])
    before = _state(model)
    with pytest.raises(ValueError, match=message):
        call(model)
    assert not is_masked(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_users_shrunk_model_reloads_into_its_template(tmp_path):
    torch.manual_seed(0)

    def build():
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(8 * 16, 4),
        )

    x = torch.randn(2, 3, 4, 4)
    small = wb.shrink(build().eval(), x, sparsity=0.5)
    wb.save_shrunk(small, tmp_path / "small.pt")
    with pytest.raises(ValueError, match="template"):
        wb.load_shrunk(tmp_path / "small.pt")
    again = wb.load_shrunk(tmp_path / "small.pt", template=build())
    assert [p.shape for p in again.parameters()] == [p.shape for p in small.parameters()]
    with torch.no_grad():
        assert torch.equal(again(x), small(x))
    with pytest.raises(ValueError, match="does not fit"):
        wb.load_shrunk(tmp_path / "small.pt", template=torch.nn.Sequential(torch.nn.Linear(2, 2)))
