"""Over-time figures draw exactly their data: recovery curves, weight distributions, histograms per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, StepPatch

import workbench as wb
from workbench.iterative import IterativeHistory, Round
from workbench.viz.over_time import (
    plot_histograms_over_time,
    plot_iterative,
    plot_recovery,
    plot_weight_distributions,
)


def stairs(ax) -> list[StepPatch]:
    return [p for p in ax.patches if isinstance(p, StepPatch)]


def test_plot_iterative_draws_every_round():
    rounds = [Round(1, 0.5, 0.9, 0.96, 1.0), Round(2, 0.75, 0.8, 0.95, 1.0), Round(3, 0.9, 0.5, 0.9, 1.0)]
    fig = plot_iterative(IterativeHistory(0.97, "test", rounds))
    pruned, tuned = fig.axes[0].lines[:2]
    assert pruned.get_xdata().tolist() == [50.0, 75.0, 90.0] and pruned.get_ydata().tolist() == [90.0, 80.0, 50.0]
    assert np.allclose(tuned.get_ydata(), [97.0, 96.0, 95.0, 90.0]) and fig.axes[0].get_ylabel() == "test accuracy (%)"


def test_plot_recovery_draws_each_curve_in_percent():
    curves = {
        "one-shot": ([0.5, 0.8, 0.9], [0.95, 0.7, 0.5]),
        "fine-tuned": (torch.tensor([0.8, 0.9]), torch.tensor([0.97, 0.96])),  # tensors are accepted too
    }
    fig = plot_recovery(curves, 0.975, split="val", xlabel="filters removed (%)")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    one_shot, tuned, dense = ax.lines
    assert [line.get_label() for line in ax.lines] == ["one-shot", "fine-tuned", "dense"]
    assert np.allclose(one_shot.get_xdata(), [50, 80, 90]) and np.allclose(one_shot.get_ydata(), [95, 70, 50])
    assert np.allclose(tuned.get_xdata(), [80, 90]) and np.allclose(tuned.get_ydata(), [97, 96])
    assert np.allclose(dense.get_ydata(), [97.5, 97.5])
    assert one_shot.get_marker() != tuned.get_marker()
    assert ax.get_ylabel() == "val accuracy (%)" and ax.get_xlabel() == "filters removed (%)"
    assert len(plot_recovery({"a": ([0.1], [0.5])}).axes[0].lines) == 1  # no dense line unless given


def test_plot_recovery_rejects_bad_curves():
    with pytest.raises(ValueError, match="no curves"):
        plot_recovery({})
    with pytest.raises(ValueError, match="2 sparsities but 3 accuracies"):
        plot_recovery({"a": ([0.1, 0.2], [0.9, 0.8, 0.7])})


def test_weight_distributions_count_exact_zeros_apart():
    generator = torch.Generator().manual_seed(0)
    dense = torch.randn(1000, generator=generator) * 0.05
    sparse = dense.clone()
    sparse[::3] = 0.0
    sparse[1] = 1e-9  # nonzero but under ``smallest``: counted in the first bin, not as a zero
    fig = plot_weight_distributions({"dense": dense, "sparse": sparse}, bins=20)
    assert len(fig.axes) == 2
    for ax, weights in zip(fig.axes, (dense, sparse)):
        (histogram,) = stairs(ax)
        (zero_bar,) = [p for p in ax.patches if isinstance(p, Rectangle) and not isinstance(p, StepPatch)]
        zeros = int((weights == 0).sum())
        assert zero_bar.get_height() == zeros
        counts, edges, _ = histogram.get_data()
        assert counts.sum() == weights.numel() - zeros and len(counts) == 20
        nonzero = weights[weights != 0].abs().double().numpy()
        expected, _ = np.histogram(np.clip(np.log10(nonzero), edges[0], edges[-1]), edges)
        assert np.array_equal(counts, expected)
        assert f"{zeros / weights.numel():.1%} exactly zero" in ax.get_title(loc="left")
    assert stairs(fig.axes[1])[0].get_data()[0][0] >= 1  # the tiny weight sits in the first bin
    assert fig.axes[1].get_xticklabels()[0].get_text() == "0"


def test_weight_distributions_reject_nothing():
    with pytest.raises(ValueError, match="no weights"):
        plot_weight_distributions({})


def test_histograms_over_time_draw_every_snapshot_scaled_to_its_tallest_bin():
    snapshots = [
        {"a": torch.tensor([1.0, 0.9, 1.1, 0.95]), "b": np.array([2.0, 1.0])},
        {"a": torch.tensor([0.0, 0.5, 0.8, 0.5]), "b": np.array([1.5, 0.0])},
        {"a": torch.tensor([0.0, 0.0, 0.6, 0.0]), "b": np.array([0.0, 0.0])},
    ]
    fig = plot_histograms_over_time(snapshots, bins=10, labels=["start", "middle", "end"])
    assert len(fig.axes) == 2
    for ax, layer in zip(fig.axes, ("a", "b")):
        drawn = stairs(ax)
        assert len(drawn) == 3
        top = max(float(np.max(np.asarray(s[layer]))) for s in snapshots)
        edges = np.linspace(0, top, 11)
        for row, (patch, snapshot) in zip((2, 1, 0), zip(drawn, snapshots)):  # the first snapshot on top
            heights, patch_edges, baseline = patch.get_data()
            assert baseline == row and np.allclose(patch_edges, edges)
            counts = np.histogram(np.asarray(snapshot[layer]), edges)[0]
            assert np.allclose(heights - row, 0.9 * counts / counts.max())
    assert [t.get_text() for t in fig.axes[0].texts] == ["1 at 0", "3 at 0"]
    assert [t.get_text() for t in fig.axes[1].texts] == ["1 at 0", "2 at 0"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["start", "middle", "end"]
    assert fig.axes[0].get_title() == "a (4 groups)"


def test_histograms_over_time_wrap_into_rows(shipped):
    model = shipped("cnn")
    norms = wb.regularizers.bn_l1(model, strength=1e-3).group_norms(model)
    fig = plot_histograms_over_time([norms, norms], columns=4)
    assert len(fig.axes) == len(norms) == 6  # two rows of four, the two unused panels removed
    assert [ax.get_title() for ax in fig.axes][:2] == ["stem.1 (32 groups)", "block1.bn1 (32 groups)"]
    rows = {round(ax.get_position().y0, 3) for ax in fig.axes}
    assert len(rows) == 2


def test_histograms_over_time_of_group_lasso_norms(shipped):
    model = shipped("mlp")
    hook = wb.regularizers.group_lasso(model, pattern="neuron", strength=1.0)
    before = hook.group_norms(model)
    hook.proximal(1.0)(model, 0)  # rows with a norm under 1 are zeroed
    after = hook.group_norms(model)
    fig = plot_histograms_over_time([before, after])
    assert [ax.get_title() for ax in fig.axes] == ["fc1 (300 groups)", "fc2 (100 groups)"]
    assert fig.axes[0].texts[0].get_text() == f"{int((after['fc1'] == 0).sum())} at 0"


@pytest.mark.parametrize(
    ("snapshots", "options", "message"),
    [
        ([], {}, "no snapshots"),
        ([{"a": [1.0]}, {"b": [1.0]}], {}, "same, nonempty, layers"),
        ([{}], {}, "same, nonempty, layers"),
        ([{"a": [1.0]}], {"labels": ["x", "y"]}, "2 labels for 1 snapshots"),
        ([{"a": [1.0]}], {"columns": 0}, "columns must be"),
    ],
)
def test_histograms_over_time_reject_bad_input(snapshots, options, message):
    with pytest.raises(ValueError, match=message):
        plot_histograms_over_time(snapshots, **options)
