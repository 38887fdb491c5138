"""Sparsity schedules: the formulas, exactness at pruning steps, monotone, constant in between, bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.schedules import SCHEDULES, schedule

fractions = st.floats(0.0, 0.99, allow_nan=False)


@st.composite
def schedules(draw):
    initial = draw(st.floats(0.0, 0.9))
    final = draw(st.floats(initial, 0.99))
    start = draw(st.integers(0, 50))
    end = draw(st.integers(start, start + 300))
    return schedule(draw(st.sampled_from(list(SCHEDULES))), initial, final, start, end, draw(st.integers(1, 40)))


def test_cubic_is_zhu_and_gupta():
    s = schedule("cubic", initial=0.1, final=0.9, start=100, end=1100, every=100)
    for n in range(11):
        t = 100 + 100 * n
        expected = 0.9 + (0.1 - 0.9) * (1 - (t - 100) / 1000) ** 3
        assert math.isclose(s(t), expected, rel_tol=1e-12)
        assert s(t + 99) == s(t) if t < 1100 else s(t + 99) == 0.9  # constant until the next pruning step


@pytest.mark.parametrize(
    "kind, middle",
    [("one_shot", 0.8), ("linear", 0.4), ("cubic", 0.7), ("cosine", 0.4), ("exponential", 1 - math.sqrt(0.2))],
)
def test_shapes_halfway(kind, middle):
    s = schedule(kind, initial=0.0, final=0.8, start=0, end=100, every=10)
    assert math.isclose(s(50), middle, rel_tol=1e-12)


@given(schedules(), st.integers(0, 600))
def test_monotone_initial_before_start_final_after_end(s, step):
    assert s(step) <= s(step + 1) + 1e-15
    assert s(max(0, s.start - 1)) == s.initial or s.start == 0
    assert math.isclose(s(s.end + step), s.final, rel_tol=1e-12)
    assert s.pruning_steps()[0] == s.start and s.pruning_steps()[-1] == s.end
    if not s.is_pruning_step(step) and step > s.start:
        assert s(step) == s(step - 1), "the target only moves at pruning steps"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": 10, "end": 5}, "end"),
        ({"final": 1.0}, "final"),
        ({"final": -0.1}, "final"),
        ({"initial": 0.5, "final": 0.2}, "final"),
        ({"every": 0}, "every"),
        ({"every": -3}, "every"),
        ({"start": 1.5}, "start"),
        ({"kind": "quartic"}, "cubic"),
        ({"final": "0.9"}, "final"),
    ],
)
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        schedule(**kwargs)


def test_steps_are_whole_numbers():
    with pytest.raises(ValueError, match="step"):
        schedule()(-1)


def test_plot_marks_every_pruning_step():
    s = schedule("linear", final=0.5, start=0, end=40, every=10)
    fig = s.plot()
    dots = [line for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert list(dots[0].get_xdata()) == [0, 10, 20, 30, 40]
