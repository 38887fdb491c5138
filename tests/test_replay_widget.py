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


def test_a_lottery_ticket_replays_round_by_round():
    import workbench as wb

    history = wb.lottery_ticket("mlp", wb.load_dataset("digits"), 0.5, rounds=2, epochs=1, progress=False)
    app = ReplayApp(epochs=2, recordings={"lottery ticket": history.recording()}, method="lottery ticket")
    assert app.schedule.disabled and app.state["schedule"] == "recorded"
    assert app.slider.max == 2, "the dense network and one frame per round"
    app.slider.value = 2
    last = history.rounds[-1]
    assert (app.state["step"], app.state["sparsity"]) == (2, last.sparsity)
    assert app.state["accuracy"] == last.val["ticket"]
    assert "round <b>2</b>" in app.status.value and "after this round's training" in app.status.value
    app.method.value = "magnitude"
    assert not app.schedule.disabled and app.state["schedule"] == "cubic"


def test_recordings_must_not_shadow_a_method():
    with pytest.raises(ValueError, match="share a name with a method"):
        ReplayApp(recordings={"magnitude": None})
    with pytest.raises(ValueError, match="neither a method nor a recording"):
        ReplayApp(method="lottery")
