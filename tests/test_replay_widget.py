"""The replay app: frames looked up and drawn, schedules recorded once, the play button tied to the slider."""

from __future__ import annotations

import pytest

from workbench.widgets.replay import ReplayApp


@pytest.fixture(scope="module")
def app() -> ReplayApp:
    return ReplayApp(epochs=2)


def test_moving_the_slider_shows_that_frame(app):
    frames = app.recording.frames
    pictures = set()
    for index in (0, len(frames) // 2, len(frames) - 1):
        app.slider.value = index
        frame = frames[index]
        assert (app.state["frame"], app.state["step"], app.state["sparsity"]) == (index, frame.step, frame.sparsity)
        assert f"step <b>{frame.step}</b>" in app.status.value
        pictures.add(bytes(app.image.value))
    assert len(pictures) == 3, "every frame draws its own picture"
    assert app.state["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert app.slider.max == app.play.max == len(frames) - 1


def test_each_schedule_is_recorded_once(app):
    cubic = app.recording
    app.schedule.value = "linear"
    assert app.state["schedule"] == "linear" and app.recording is not cubic
    app.schedule.value = "cubic"
    assert app.recording is cubic, "a schedule seen before is looked up, not recorded again"
    middle = len(cubic.frames) // 2
    app.slider.value = middle
    linear = app.runs[("magnitude", "linear")][0]
    assert linear.frames[middle].sparsity <= cubic.frames[middle].sparsity + 1e-9, "cubic prunes early, linear evenly"


def test_methods_record_their_own_runs(app):
    app.method.value = "magnitude, neurons, progressive"
    frame = app.recording.frames[-1]
    mask = frame.masks["fc1.weight"]
    assert app.state["method"] == "magnitude, neurons, progressive"
    assert bool((mask.all(1) | ~mask.any(1)).all()), "whole neurons at the end"
    assert app.state["sparsity"] <= 0.9 + 1e-9
    app.method.value = "magnitude"
