"""Colours the apps tell things apart by stay apart for colour-blind readers (``workbench.viz.colors``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from workbench.sensitivity import SensitivityResult
from workbench.viz.colors import (
    ACCENT,
    ALL_WEIGHTS,
    BUDGET,
    CURRENT,
    CURVE,
    DICHROMACY,
    KEPT,
    PAPER,
    PARETO,
    STORAGE_PARTS,
    color_difference,
    distinguishable,
)
from workbench.viz.sensitivity_board import BoardFigure

# Colours drawn over or next to each other where only the colour says which is which.
TOLD_APART = {
    "mask: pruned vs kept": (PAPER, KEPT),
    "histogram: all vs kept weights": (ALL_WEIGHTS, KEPT),
    "histogram: threshold over kept weights": (CURRENT, KEPT),
    "curves: the current point on a measured curve": (CURRENT, CURVE),
    "shrink lab: the current point on the latency curve": (CURRENT, BUDGET[2]),
    "scop factors: real vs knockoff share of a filter's bar": (KEPT, ACCENT),
    "study: the Pareto front over the other points": (PARETO, ALL_WEIGHTS),
    **{f"budget bars {i} and {j}": (BUDGET[i], BUDGET[j]) for i, j in itertools.combinations(range(3), 2)},
    **{
        f"storage bars: {a} vs {b}": (STORAGE_PARTS[a], STORAGE_PARTS[b])
        for a, b in itertools.combinations(STORAGE_PARTS, 2)
    },
}


def test_the_simulation_confuses_what_dichromats_confuse():
    assert color_difference("tab:red", "tab:green") > 100  # far apart for normal vision
    assert color_difference("tab:red", "tab:green", "deuteranopia") < 10
    assert color_difference("#d9822b", "tab:green", "protanopia") < 10
    assert color_difference("#0072B2", "#009E73", "tritanopia") < 20 < color_difference("#0072B2", "#009E73")
    assert color_difference("white", "black", "protanopia") == pytest.approx(100, abs=0.1)  # lightness is kept
    assert not distinguishable("tab:orange", "tab:green") and distinguishable("tab:blue", "tab:orange")


@pytest.mark.parametrize("pair", TOLD_APART, ids=str)
def test_colours_told_apart_are_distinguishable_for_every_reader(pair):
    a, b = TOLD_APART[pair]
    differences = {vision: round(color_difference(a, b, vision)) for vision in DICHROMACY}
    assert distinguishable(a, b), f"{pair}: {a} vs {b} differ by ΔE {differences}"


def test_per_layer_curves_differ_in_marker_where_colours_are_too_close():
    layers = [f"layer{i}" for i in range(12)]  # more layers than distinguishable colours
    result = SensitivityResult(np.array([0.0, 0.5]), {name: np.array([0.9, 0.8]) for name in layers}, baseline=0.9)
    board = BoardFigure(result, tolerance=0.01)
    lines = [line for line in board.figure.axes[0].get_lines() if line.get_label() in layers]
    assert len(lines) == len(layers)
    for a, b in itertools.combinations(lines, 2):
        assert a.get_marker() != b.get_marker() or distinguishable(a.get_color(), b.get_color()), (
            f"{a.get_label()} and {b.get_label()}: {a.get_color()} vs {b.get_color()}, both {a.get_marker()!r}"
        )
    for name, marker in board.markers.items():  # the chosen point looks like its curve
        line = next(line for line in lines if line.get_label() == name)
        assert (marker.get_marker(), marker.get_color()) == (line.get_marker(), line.get_color())


def test_trade_off_modes_differ_in_marker_where_colours_are_too_close():
    from workbench.viz.colors import MODE_STYLES

    for (a, style_a), (b, style_b) in itertools.combinations(MODE_STYLES.items(), 2):
        assert style_a["marker"] != style_b["marker"] or distinguishable(style_a["color"], style_b["color"]), (a, b)
