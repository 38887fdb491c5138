"""Sensitivity scans: each point is Pruner.accuracy of a one-layer mask; the model is untouched; max_sparsity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_same_state, state_copy

import workbench as wb
from workbench.criteria import CRITERIA, Criterion
from workbench.sensitivity import SPARSITIES, SensitivityResult, scan, sensitivity


@pytest.fixture(scope="module")
def mlp_scan(digits):
    model = wb.pretrained("mlp")
    before = state_copy(model)
    return model, before, sensitivity(model, digits.test)


def test_default_grid():
    assert SPARSITIES == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def test_sparsity_zero_is_the_baseline_for_every_layer(mlp_scan, digits):
    model, _, result = mlp_scan
    np.testing.assert_array_equal(result.sparsities, np.array(SPARSITIES))
    assert list(result.accuracies) == ["fc1", "fc2", "fc3"]
    for name, accuracies in result.accuracies.items():
        assert accuracies.shape == result.sparsities.shape
        assert accuracies[0] == result.baseline, name
    assert result.baseline == pytest.approx(wb.evaluate(model, digits.test), abs=1e-6)


def test_points_are_pruner_accuracy_of_one_layer_masks(mlp_scan, digits):
    model, _, result = mlp_scan
    pruner = wb.Pruner(model)
    for name, accuracies in result.accuracies.items():
        for sparsity, accuracy in zip(result.sparsities, accuracies):
            masks = pruner.masks(layer_sparsity={name: sparsity})
            others = [m for n, m in masks.items() if n != f"{name}.weight"]
            assert all(bool(m.all()) for m in others), "only the scanned layer is pruned"
            pruned = int((~masks[f"{name}.weight"]).sum())
            assert pruned == round(sparsity * masks[f"{name}.weight"].numel())
            assert accuracy == pruner.accuracy(masks, digits.test), (name, sparsity)


def test_model_is_untouched(mlp_scan):
    model, before, _ = mlp_scan
    assert_same_state(before, state_copy(model))
    assert not wb.masks.is_masked(model)


def test_cnn_points_and_model_untouched(shipped, digits):
    model = shipped("cnn")
    before, training = state_copy(model), model.training
    result = sensitivity(model, digits.test, sparsities=(0.0, 0.5, 0.9))
    assert_same_state(before, state_copy(model))
    assert model.training == training
    pruner = wb.Pruner(model)
    assert list(result.accuracies) == [t.name for t in pruner.targets]
    for name, accuracies in result.accuracies.items():
        assert accuracies[0] == result.baseline
        assert accuracies[2] == pruner.accuracy(pruner.masks(layer_sparsity={name: 0.9}), digits.test)
    assert min(values[-1] for values in result.accuracies.values()) < result.baseline - 0.05, "90% of some layer hurts"


def test_scores_are_computed_once(monkeypatch, shipped, digits):
    calls = []
    magnitude = CRITERIA["magnitude"]

    def counting(*args, **kwargs):
        calls.append(1)
        return magnitude.fn(*args, **kwargs)

    monkeypatch.setitem(CRITERIA, "magnitude", Criterion("magnitude", counting, False, magnitude.description))
    sensitivity(shipped("mlp"), digits.test, sparsities=(0.0, 0.3, 0.6))
    assert len(calls) == 1


def test_structured_and_data_driven(shipped, digits):
    result = sensitivity(shipped("transformer"), digits.test, pattern="head", sparsities=(0.0, 0.5))
    assert list(result.accuracies) == ["blocks.0.attn", "blocks.1.attn"]
    mlp = shipped("mlp")
    result = sensitivity(
        mlp,
        digits.test,
        criterion="taylor",
        pattern="neuron",
        sparsities=(0.5, 0.0, 0.5),
        data=digits,
        criterion_options={"max_batches": 2},
    )
    assert result.sparsities.tolist() == [0.0, 0.5], "sorted, duplicates dropped"
    assert list(result.accuracies) == ["fc1", "fc2"], "the output layer keeps its classes"
    pruner = wb.Pruner(mlp, "taylor", "neuron", data=digits, criterion_options={"max_batches": 2})
    assert result.accuracies["fc2"][1] == pruner.accuracy(pruner.masks(layer_sparsity={"fc2": 0.5}), digits.test)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pattern": "2:4"}, "N:M"),
        ({"scope": "global"}, "local"),
        ({"sparsities": ()}, "empty"),
        ({"sparsities": (0.5, 1.0)}, r"\[0, 1\)"),
    ],
)
def test_bad_scans_raise(shipped, digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sensitivity(shipped("mlp"), digits.test, **kwargs)


def test_scan_takes_an_existing_pruner(shipped, digits):
    pruner = wb.Pruner(shipped("mlp"), pattern="block1x4")
    result = scan(pruner, digits.test, (0.0, 0.4))
    assert result.accuracies["fc3"][1] == pruner.accuracy(pruner.masks(layer_sparsity={"fc3": 0.4}), digits.test)


def hand_made() -> SensitivityResult:
    grid = np.array([0.0, 0.25, 0.5, 0.75])
    return SensitivityResult(
        grid,
        {
            "steady": np.array([0.9, 0.9, 0.9, 0.9]),
            "falls": np.array([0.9, 0.88, 0.7, 0.5]),
            "dips": np.array([0.9, 0.6, 0.89, 0.2]),  # recovers after a dip: the later point counts
            "edge": np.array([0.9, 0.85, 0.8, 0.79]),  # 0.8 is exactly baseline - 0.1 (not exact in floats)
        },
        baseline=0.9,
    )


def test_max_sparsity_by_hand():
    result = hand_made()
    assert result.max_sparsity(0.0) == {"steady": 0.75, "falls": 0.0, "dips": 0.0, "edge": 0.0}
    assert result.max_sparsity(0.02) == {"steady": 0.75, "falls": 0.25, "dips": 0.5, "edge": 0.0}
    assert result.max_sparsity(0.1) == {"steady": 0.75, "falls": 0.25, "dips": 0.5, "edge": 0.5}
    assert result.max_sparsity(1.0) == {name: 0.75 for name in result.accuracies}
    assert all(isinstance(v, float) for v in result.max_sparsity(0.1).values())


def test_max_sparsity_without_zero_in_grid_and_bad_tolerance():
    result = SensitivityResult(np.array([0.5, 0.9]), {"a": np.array([0.1, 0.1])}, baseline=0.9)
    assert result.max_sparsity(0.05) == {"a": 0.0}, "nothing within tolerance: left dense"
    for bad in (-0.01, float("nan")):
        with pytest.raises(ValueError, match="tolerance"):
            result.max_sparsity(bad)


def test_to_dict_is_json(mlp_scan):
    _, _, result = mlp_scan
    data = json.loads(json.dumps(result.to_dict()))
    assert data["sparsities"] == list(SPARSITIES)
    assert data["baseline"] == result.baseline
    assert data["accuracies"]["fc2"] == result.accuracies["fc2"].tolist()
