"""One registry each for criteria and patterns: one registration reaches ``wb.prune``, ``wb.Pruner``,
``wb.shrink``, the widgets' dropdowns and the CLI; unknown options are refused with the allowed ones."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.utils.prune
from helpers import assert_refused
from torch import nn

import workbench as wb
from workbench.cli import main
from workbench.criteria import CRITERIA, register
from workbench.patterns import PATTERN_SPECS, PatternSpec, coupled_patterns, pattern_examples, register_pattern


@pytest.fixture
def largest_first():
    """A criterion defined here, with one register call: −|w| (prunes the largest weights first)."""

    @register("largest_first", needs_data=False, description="−|w|, a criterion defined in a test")
    def largest_first(model, names, data, offset: float = 0.0):
        return {name: offset - wb.masks.dense_parameter(model, name).detach().abs() for name in names}

    yield "largest_first"
    del CRITERIA["largest_first"]


@pytest.fixture
def even_rows():
    """A pattern defined here: pairs of neighbouring output rows of every Linear layer."""

    def pair_ids(weight, pattern):
        rows = torch.arange(weight.shape[0]).div(2, rounding_mode="floor")
        return rows.view(-1, *[1] * (weight.dim() - 1)).expand(weight.shape).clone(), (weight.shape[0] + 1) // 2

    register_pattern(
        PatternSpec("row_pairs", ("row_pairs",), "pairs of output rows", ("row_pairs",), pair_ids, layers=(nn.Linear,))
    )
    yield "row_pairs"
    del PATTERN_SPECS["row_pairs"]


def test_a_registered_criterion_works_in_prune_pruner_and_shrink(largest_first):
    model = wb.pretrained("mlp")
    result = wb.prune(model, sparsity=0.5, criterion=largest_first)
    weight = model.fc1.parametrizations.weight.original
    kept = weight[result.masks["fc1.weight"]].abs()
    removed = weight[~result.masks["fc1.weight"]].abs()
    assert kept.max() <= removed.min(), "the largest weights went first"
    pruner = wb.Pruner(wb.pretrained("mlp"), largest_first, "neuron", criterion_options={"offset": 1.0})
    assert pruner.masks(0.5)["fc1.weight"].any(1).sum() == 150
    small = wb.shrink(wb.pretrained("mlp"), sparsity=0.5, pattern="neuron", criterion=largest_first)
    assert small.fc1.out_features == 150


def test_a_registered_criterion_is_offered_by_the_cli(largest_first, capsys):
    assert main(["prune", "mlp", "--criterion", largest_first, "--sparsity", "0.3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["criterion"] == largest_first


def test_a_registered_pattern_works_in_prune_and_the_cli(even_rows, capsys):
    model = wb.pretrained("mlp")
    masks = wb.prune(model, sparsity=0.5, pattern=even_rows).masks
    rows = masks["fc1.weight"].all(1)
    assert torch.equal(rows[0::2], rows[1::2]) and int(rows.sum()) == 150
    assert even_rows in pattern_examples()
    assert main(["prune", "mlp", "--pattern", even_rows, "--sparsity", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pattern"] == even_rows


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: wb.prune(m, 0.5, "magnitude", criterion_options={"seed": 1}), "takes no option 'seed'"),
        (lambda m: wb.prune(m, 0.5, "random", criterion_options={"sede": 1}), "its options are: seed"),
        (lambda m: wb.prune(m, 0.5, "magnitude", reduse="sum"), "its options are: reduce, normalize"),
        (lambda m: wb.prune(m, 0.5, "l1", "neuron", coupled=True, criterion_options={"x": 1}), "takes no option"),
        (lambda m: wb.shrink(m, sparsity=0.5, criterion="fpgm", criterion_options={"x": 1}), "takes no option"),
        (lambda m: wb.prune(m, "0.5"), "sparsity must be a number"),
        (lambda m: wb.prune(m, True), "sparsity must be a number"),
        (lambda m: wb.prune(m, 0.5, criterion=3), "unknown criterion"),
        (lambda m: wb.prune(m, 0.5, pattern=4), "pattern must be a name"),
        (lambda m: wb.prune(m, 0.5, iterations=2.0), "iterations must be an integer"),
        (lambda m: wb.prune(m, 0.5, exclude=["nosuch"]), r"exclude 'nosuch' matches no layer of MLP.*fc1, fc2, fc3"),
        (lambda m: wb.prune(m, 0.5, exclude=[3]), "exclude takes module names"),
        (lambda m: wb.prune(m, 0.5, "l1", "neuron", coupled=True, exclude="fc9"), "exclude 'fc9' matches no layer"),
        (lambda m: wb.shrink(m, sparsity=0.5, pattern="channel"), "use 'filter' or 'neuron'"),
    ],
)
def test_bad_options_and_types_are_refused_and_change_nothing(call, message):
    model = wb.pretrained("mlp")
    assert_refused(model, call, message)


def test_cli_refuses_an_exclude_that_matches_nothing(capsys):
    assert main(["prune", "mlp", "--exclude", "nosuchlayer"]) != 0
    assert "exclude 'nosuchlayer' matches no layer" in capsys.readouterr().err


def test_criterion_functions_name_their_options():
    with pytest.raises(ValueError, match="no \\*\\*kwargs"):
        register("loose", needs_data=False, description="takes anything")(lambda model, names, data, **_: {})
    assert "loose" not in CRITERIA
    for criterion in CRITERIA.values():
        assert criterion.scores in ("elements", "units") and isinstance(criterion.options, tuple)


@pytest.mark.parametrize("norm, criterion", [(1, "l1"), (2, "l2")])
def test_l1_and_l2_rows_match_torch_ln_structured(norm, criterion):
    """Per-layer neuron pruning by L1/L2 row norms keeps what torch.nn.utils.prune.ln_structured keeps."""
    model = wb.pretrained("mlp")
    masks = wb.Pruner(model, criterion, "neuron").masks(0.3)
    for layer in ("fc1", "fc2"):
        reference = nn.Linear(1, 1)
        reference.weight = nn.Parameter(getattr(model, layer).weight.detach().clone())
        torch.nn.utils.prune.ln_structured(reference, "weight", amount=0.3, n=norm, dim=0)
        assert torch.equal(masks[f"{layer}.weight"], reference.weight_mask.bool())


def test_coupled_names_and_their_groups():
    assert set(coupled_patterns()) == {"neuron", "filter", "head"}
    model = wb.pretrained("cnn")
    assert wb.shrink(model, sparsity=0.5, pattern="neuron").stem[0].out_channels == 16  # neuron = filter


def test_global_structured_pruning_keeps_every_layer_alive_by_default():
    """Global filter pruning with raw L2 norms cuts the cnn's stem to 1 of 32 filters (tiny 1×3×3 filters have
    small norms); the default LAMP normalization ranks each unit within its layer first."""
    model = wb.pretrained("cnn")
    raw = wb.Pruner(model, "magnitude", "filter", "global", normalize=None).masks(0.5)
    assert int(raw["stem.0.weight"].flatten(1).any(1).sum()) == 1
    masks = wb.Pruner(model, "magnitude", "filter", "global").masks(0.5)
    kept = {name: float(mask.flatten(1).any(1).float().mean()) for name, mask in masks.items()}
    assert min(kept.values()) >= 0.25, kept
    overall = 1 - sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
    assert abs(overall - 0.5) < 0.02
    unstructured = wb.Pruner(model, "magnitude", "unstructured", "global")
    assert unstructured.normalize is None, "unstructured global ranking stays raw"


def test_a_registered_criterion_and_pattern_appear_in_the_widgets(largest_first, even_rows):
    from workbench.widgets.choices import explorer_patterns, shrink_criteria
    from workbench.widgets.explorer import Explorer

    app = Explorer("mlp")
    assert largest_first in app.criterion.options and even_rows in app.pattern.options
    app.criterion.value = largest_first
    app.pattern.value = even_rows
    app.slider.value = 0.5
    assert (app.state["criterion"], app.state["pattern"], app.state["error"]) == (largest_first, even_rows, None)
    assert app.state["overall_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert largest_first in shrink_criteria() and even_rows in explorer_patterns()


def test_a_registered_stub_criterion_is_named_in_the_explorer_and_changes_nothing():
    from workbench.widgets.explorer import Explorer

    @register("stub", needs_data=False, description="a learner's criterion before its body is written")
    def stub(model, names, data):
        raise NotImplementedError  # your code here

    try:
        app = Explorer("mlp")
        shown = app.image.value
        app.criterion.value = "stub"
        assert (app.criterion.value, app.state["error"]) == ("magnitude", "NotImplementedError")
        assert "NotImplementedError" in app.status.value and app.image.value == shown
    finally:
        del CRITERIA["stub"]


PATTERN_MODELS = ("mlp", "cnn", "transformer")


@pytest.mark.parametrize("pattern", pattern_examples())
def test_every_registered_pattern_covers_each_weight_once_and_prunes_exactly(pattern):
    """Common checks over the pattern registry, on each shipped model the pattern applies to."""
    applied = 0
    for name in PATTERN_MODELS:
        model = wb.pretrained(name)
        try:
            pruner = wb.Pruner(model, "magnitude", pattern, "local", exclude=_unfit(model, pattern))
        except ValueError:
            continue
        applied += 1
        for target in pruner.targets:
            for param, ids in target.group_ids.items():
                inside = ids[ids >= 0]
                assert int(inside.max()) < target.num_groups and int(inside.min()) >= 0, (name, param)
            assert int(target.group_sizes.sum()) == sum(int((ids >= 0).sum()) for ids in target.group_ids.values())
        fixed = pruner.pattern.fixed_sparsity
        masks = pruner.masks(None if fixed is not None else 0.5)
        pruned = sum(int((~m).sum()) for m in masks.values())
        total = sum(t.numel for t in pruner.targets)
        assert abs(pruned / total - (fixed if fixed is not None else 0.5)) <= 0.05, (name, pattern)
    assert applied, f"{pattern} applies to none of {PATTERN_MODELS}"


def _unfit(model, pattern):
    from workbench.layer_fit import unfit_layers

    return list(unfit_layers(model, "magnitude", pattern))
