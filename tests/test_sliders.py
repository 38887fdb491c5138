"""StepSlider: the kernel keeps what code sets; the browser sees step indices, so it has nothing to echo back."""

from __future__ import annotations

import ipywidgets as widgets
import pytest
from browser_slider import Browser, echo, snapped
from hypothesis import given
from hypothesis import strategies as st
from traitlets import TraitError

from workbench.widgets.sliders import StepSlider, fraction_slider

RUN_ALL = (0.5, 0.8, 0.95, 0.0, 0.33, 0.5, 0.9, 0.99)  # what 00_tour sets from code, cell after cell


def user_moves(slider, index: int) -> None:
    """A drag to step ``index``, as the browser's message arrives."""
    message = {"method": "update", "state": {"index": index}, "buffer_paths": []}
    slider._handle_msg({"content": {"data": message}, "buffers": []})


def test_the_browser_model_replays_the_float_slider_echo(monkeypatch):
    """What JupyterLab showed with a FloatSlider: the browser's rounded copies of older values arrive last."""
    slider = widgets.FloatSlider(min=0.0, max=0.99, step=0.01)
    browser = Browser(slider, monkeypatch)
    for value in RUN_ALL:
        slider.value = value
    assert browser.catch_up()[-1] == {"value": 0.9000000000000001}
    assert slider.value == 0.9000000000000001, "Run All ends at 90 %, not at the 99 % the last cell set"
    slider.value = 0.95
    slider.value = 0.3
    browser.catch_up()
    assert slider.value == 0.9500000000000002


def test_values_set_from_code_stay(monkeypatch):
    slider = fraction_slider("sparsity")
    browser = Browser(slider, monkeypatch)
    for value in RUN_ALL:
        slider.value = value
    assert [state["index"] for state in browser.received] == [round(100 * value) for value in RUN_ALL]
    assert browser.catch_up() == []
    assert slider.value == 0.99 and slider.label == "99%"
    slider.value = 0.95
    slider.value = 0.3
    assert browser.catch_up() == [] and slider.value == 0.3


@given(value=st.floats(0.0, 0.99))
def test_no_value_gives_the_browser_anything_to_echo(value):
    slider = fraction_slider("sparsity", value)
    assert slider.value == value, "the kernel keeps the value set, between steps too"
    assert abs(100 * value - slider.index) <= 0.5 + 1e-9, "the browser shows the nearest step"
    assert echo(slider, slider.get_state()) is None
    assert "value" not in slider.get_state(), "the browser never sees the float"


def test_every_step_survives_the_browser_rounding():
    for slider in (fraction_slider("sparsity"), fraction_slider("tolerance", max=0.2, step=0.005)):
        steps = len(slider._options_labels)
        assert all(echo(slider, {"index": index}) is None for index in range(steps))
    assert snapped(0.9, 0.0, 0.99, 0.01) != 0.9, "a float on the same grid does not"


def test_a_user_move_sets_the_step_value():
    slider = fraction_slider("sparsity")
    seen = []
    slider.observe(lambda change: seen.append(change["new"]), names="value")
    for index in range(100):
        user_moves(slider, index)
        assert slider.value == round(index / 100, 2) and slider.label == f"{index}%"
    assert seen == [round(index / 100, 2) for index in range(1, 100)], "one change per move"
    tolerance = fraction_slider("tolerance", 0.01, max=0.2, step=0.005, readout_format=".1%")
    user_moves(tolerance, 3)
    assert tolerance.value == 0.015 and tolerance.label == "1.5%"


def test_a_move_to_the_step_already_shown_changes_nothing():
    slider = fraction_slider("sparsity", 0.123)
    user_moves(slider, 12)
    assert slider.value == 0.123


def test_bounds_as_a_float_slider_has_them():
    slider = fraction_slider("sparsity")
    assert slider.get_state()["description"] == "sparsity", "the browser labels the slider"
    slider.value = 1.5
    assert (slider.value, slider.index) == (0.99, 99)
    slider.value = -0.5
    assert (slider.value, slider.index) == (0.0, 0)
    assert (slider.min, slider.max, slider.step, slider.readout_format) == (0.0, 0.99, 0.01, ".0%")
    with pytest.raises(TraitError, match="read-only"):
        slider.max = 0.5
    with pytest.raises(TraitError, match="step > 0"):
        StepSlider(step=0.0)
    assert fraction_slider("s", 0.0, min=0.0, max=0.8, step=0.2)._options_labels == ("0%", "20%", "40%", "60%", "80%")


def test_nan_is_left_for_the_app_to_refuse():
    slider = fraction_slider("sparsity", 0.3)
    slider.value = float("nan")
    assert slider.index == 30, "the browser keeps showing the last number"
