"""TourApp: the slider drives masks, accuracy, the figure and the PNG, consistently with MagnitudeSweep."""

from __future__ import annotations

import io

import numpy as np
import pytest
from browser_slider import Browser
from helpers import assert_same_state, retry_load, state_copy
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.image import imread

import workbench as wb
from workbench.widgets.tour import CURVE_SPARSITIES, TourApp

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(app: TourApp) -> bytes:
    """The PNG shown (ipywidgets hands the Bytes trait back as a memoryview)."""
    return bytes(app.image.value)


@pytest.fixture(scope="module")
def app() -> TourApp:
    return retry_load(TourApp)


def check_consistent(app: TourApp, sparsity: float) -> None:
    """Everything the app shows agrees with MagnitudeSweep at ``sparsity``."""
    sweep = app.sweep
    masks = sweep.masks(sparsity)
    accuracy = sweep.accuracy(sparsity)
    state = app.state
    assert state["sparsity"] == sparsity
    assert state["accuracy"] == accuracy
    sizes = {name: mask.numel() for name, mask in masks.items()}
    assert state["kept"] == {name: n - round(sparsity * n) for name, n in sizes.items()}
    # Each layer rounds its pruned count by at most 1/2 weight, so the total is off by at most layers/2 weights.
    assert abs(state["achieved_sparsity"] - sparsity) <= len(sizes) / (2 * sum(sizes.values())) + 1e-12
    for name, mask in masks.items():
        shown = np.asarray(app.view.images[name].get_array())
        assert np.array_equal(shown, mask.reshape(mask.shape[0], -1).numpy()), f"{name}: image is not the mask"
    xs, ys = app.view.marker.get_data()
    assert list(xs) == [100 * sparsity] and list(ys) == [100 * accuracy]
    assert png(app).startswith(PNG_SIGNATURE)
    assert f"{accuracy:.1%}" in app.status.value


def test_initial_state(app, digits):
    assert (app.slider.min, app.slider.max, app.slider.step, app.slider.value) == (0.0, 0.99, 0.01, 0.0)
    assert app.state["accuracy"] == wb.evaluate(app.model, digits.test)
    assert app.state["achieved_sparsity"] == 0.0
    assert app.update_ms and app.update_ms[0] > 0
    check_consistent(app, 0.0)
    assert app.slider in app.widget.children[0].children and app.image in app.widget.children


def test_png_is_a_decodable_image(app):
    pixels = imread(io.BytesIO(png(app)), format="png")
    assert pixels.shape[2] in (3, 4) and pixels.shape[0] > 100 and pixels.shape[1] > 100


def test_the_picture_is_shown_at_its_own_width(app):
    """840 px, the width of a notebook's output area; shown no wider (stretched, its text would turn soft)."""
    width = imread(io.BytesIO(png(app)), format="png").shape[1]
    assert width == 840
    assert (app.image.layout.width, app.image.layout.max_width) == ("840px", "100%")


@given(value=st.integers(0, 99).map(lambda k: k / 100) | st.floats(0.0, 0.99))
def test_slider_moves_update_everything(app, value):
    before_png, before_calls, before_kept = png(app), len(app.update_ms), app.state["kept"]
    changed = value != app.slider.value
    app.slider.value = value  # what a user's drag does
    assert len(app.update_ms) == before_calls + changed
    assert app.update_ms[-1] > 0
    check_consistent(app, value)
    if app.state["kept"] != before_kept:
        assert png(app) != before_png, "the picture did not change though the masks did"


def test_moves_change_png_and_are_recorded(app):
    app.slider.value = 0.0
    start_png, start_calls = png(app), len(app.update_ms)
    app.slider.value = 0.5
    assert png(app) != start_png
    app.slider.value = 0.9
    assert len(app.update_ms) == start_calls + 2
    assert app.state["accuracy"] < app.sweep.accuracy(0.0)
    app.slider.value = 0.0
    assert png(app) == start_png, "same sparsity, same picture"


@pytest.mark.parametrize(("value", "clamped"), [(1.5, 0.99), (1.0, 0.99), (-0.5, 0.0)])
def test_slider_clamps_to_bounds(app, value, clamped):
    app.slider.value = 0.3
    app.slider.value = value
    assert app.slider.value == clamped
    check_consistent(app, clamped)


@pytest.mark.parametrize("bad", [1.0, -0.01, "abc", None])
def test_bad_update_raises_and_changes_nothing(app, bad):
    app.slider.value = 0.4
    state, picture, calls, status = dict(app.state), png(app), len(app.update_ms), app.status.value
    marker = [list(d) for d in app.view.marker.get_data()]
    with pytest.raises(ValueError, match="sparsity"):
        app.update(bad)
    assert app.state == state and png(app) == picture and len(app.update_ms) == calls and app.status.value == status
    assert [list(d) for d in app.view.marker.get_data()] == marker


def test_curve_is_the_sweep(app):
    assert CURVE_SPARSITIES[0] == 0.0 and CURVE_SPARSITIES[-1] == 0.99
    assert np.all(np.diff(CURVE_SPARSITIES) > 0)
    np.testing.assert_array_equal(app.curve, app.sweep.curve(CURVE_SPARSITIES))
    line = app.view.curve_ax.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), 100 * CURVE_SPARSITIES)
    np.testing.assert_array_equal(line.get_ydata(), 100 * app.curve)


def test_slider_never_modifies_the_model(app):
    before = state_copy(app.model)
    for value in (0.2, 0.95, 0.0):
        app.slider.value = value
    assert_same_state(before, state_copy(app.model))
    assert not app.model.training


def test_custom_model_and_split():
    model = retry_load(lambda: wb.pretrained("mlp2d"))
    spirals = wb.load_dataset("spirals")
    other = TourApp(model=model, split=spirals.test)
    assert set(other.view.images) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    assert other.state["accuracy"] == wb.evaluate(model, spirals.test)
    other.slider.value = 0.5
    check_consistent(other, 0.5)
    assert other.sweep.split is spirals.test


def test_nan_from_code_leaves_slider_and_state_consistent(app):
    app.slider.value = 0.3
    with pytest.raises(ValueError, match="sparsity"):
        app.slider.value = float("nan")
    assert app.state["sparsity"] == 0.3
    assert app.slider.value == 0.3  # fails: the slider now holds nan while the figure shows 0.3


def test_the_browser_cannot_undo_what_code_set(app, monkeypatch):
    """Run All in JupyterLab: the cells set these values; the browser catches up after the last cell, and what it
    sends back must not move the slider off the 99 % the last cell set."""
    browser = Browser(app.slider, monkeypatch)
    for value in (0.5, 0.8, 0.95, 0.0, 0.33, 0.5, 0.9, 0.99):
        app.slider.value = value
    echoes = browser.catch_up()
    assert app.slider.value == 0.99
    check_consistent(app, 0.99)
    assert echoes == [], "the browser had nothing to send back"
    app.slider.value = 0.95
    app.slider.value = 0.3
    browser.catch_up()
    assert app.slider.value == 0.3
    check_consistent(app, 0.3)


def test_a_drag_arrives_as_a_step(app):
    app.slider.value = 0.0
    app.slider.set_state({"index": 42})  # what the browser sends when the user drags to 42 %
    assert app.slider.value == 0.42
    check_consistent(app, 0.42)
