"""Over-time figures draw exactly their data: iterative runs and recovery curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from workbench.iterative import IterativeHistory, Round
from workbench.viz.over_time import plot_iterative, plot_recovery


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
