"""Controller: views see every change with all parameters; a ValueError snaps the control back; code sets at once."""

from __future__ import annotations

import threading
import time

import ipywidgets as widgets
import pytest

from workbench.widgets.controller import Controller


def make(show_error=None) -> tuple[Controller, list[dict]]:
    """A controller over a slider "a" and a dropdown "b", and the parameters its one view was shown."""
    controls = {"a": widgets.IntSlider(value=1, max=10), "b": widgets.Dropdown(options=["x", "y"], value="x")}
    controller = Controller(controls, show_error)
    seen = []

    def view(params):
        if params["a"] > 5:
            raise ValueError(f"a={params['a']} is too large")
        seen.append(dict(params))

    controller.register(view)
    return controller, seen


def test_each_change_calls_the_views_with_all_parameters():
    controller, seen = make()
    controller.refresh()
    controller.controls["b"].value = "y"
    controller.controls["a"].value = 3
    controller.controls["a"].value = 3  # no change, no call
    assert seen == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 3, "b": "y"}]
    assert controller.params == {"a": 3, "b": "y"}


def test_views_are_called_in_the_order_they_registered():
    controller, _ = make()
    order = []
    controller.register(lambda params: order.append("second"))
    controller.views.insert(0, lambda params: order.append("first"))
    controller.controls["b"].value = "y"
    assert order == ["first", "second"]


def test_a_value_error_snaps_the_control_back_and_is_shown():
    errors = []
    controller, seen = make(errors.append)
    controller.controls["a"].value = 9
    assert controller.controls["a"].value == 1 and controller.params == {"a": 1, "b": "x"}
    assert seen == [] and [str(error) for error in errors] == ["a=9 is too large"]
    controller.controls["a"].value = 2
    assert seen == [{"a": 2, "b": "x"}], "the snap back itself called no view"


def test_without_show_error_the_error_reaches_whoever_made_the_change():
    controller, seen = make()
    with pytest.raises(ValueError, match="too large"):
        controller.controls["a"].value = 9
    assert controller.controls["a"].value == 1 and controller.params["a"] == 1 and seen == []


def test_set_changes_several_controls_and_calls_the_views_once():
    controller, seen = make()
    controller.set({"a": 4, "b": "y"})
    assert seen == [{"a": 4, "b": "y"}]
    with pytest.raises(ValueError, match="too large"):
        controller.set({"a": 7, "b": "x"})
    assert {name: control.value for name, control in controller.controls.items()} == {"a": 4, "b": "y"}
    assert controller.params == {"a": 4, "b": "y"} and len(seen) == 1


def test_set_takes_the_value_the_control_keeps():
    errors = []
    controller, seen = make(errors.append)
    controller.set({"a": 99})  # the slider clamps to its max, 10, which the view refuses
    assert controller.params["a"] == 1 and str(errors[0]) == "a=10 is too large"
    controller.set({"a": -3})
    assert seen == [{"a": 0, "b": "x"}]


def test_set_quietly_changes_a_control_without_calling_the_views():
    controller, seen = make()
    controller.set_quietly("a", value=5, disabled=True)
    assert seen == [] and controller.params["a"] == 5 and controller.controls["a"].disabled


def test_a_view_may_constrain_another_control():
    """As the explorer does when N:M fixes the sparsity: the constrained value is the one shown and kept."""
    controls = {"pattern": widgets.Dropdown(options=["free", "fixed"]), "s": widgets.IntSlider(value=3)}
    controller = Controller(controls)

    def view(params):
        if params["pattern"] == "fixed":
            controller.set_quietly("s", value=5, disabled=True)

    controller.register(view)
    controls["pattern"].value = "fixed"
    assert controller.params == {"pattern": "fixed", "s": 5} and controls["s"].value == 5


def test_a_stub_that_is_not_implemented_snaps_back_like_a_refusal():
    controls = {"criterion": widgets.Dropdown(options=["magnitude", "mine"], value="magnitude")}
    errors = []
    controller = Controller(controls, show_error=errors.append)

    def view(params):
        if params["criterion"] == "mine":
            raise NotImplementedError("your code here")

    controller.register(view)
    controls["criterion"].value = "mine"
    assert controls["criterion"].value == "magnitude" and controller.params == {"criterion": "magnitude"}
    assert [type(e).__name__ for e in errors] == ["NotImplementedError"]


def test_changes_from_two_threads_are_drawn_one_at_a_time_and_the_last_one_shown_wins():
    # JupyterLab may hand a drag to a kernel thread of its own while a cell sets the slider on the main thread.
    slider = widgets.IntSlider(value=0, max=1000)
    controller = Controller({"n": slider})
    drawing, drawn, overlaps = threading.Lock(), [], []

    def view(params):
        if not drawing.acquire(blocking=False):
            overlaps.append(params["n"])
            return
        try:
            time.sleep(0.0005)  # a redraw takes a while: long enough for the other thread to come in
            drawn.append(params["n"])
        finally:
            drawing.release()

    controller.register(view)

    def drag(values):
        for value in values:
            slider.value = value

    threads = [threading.Thread(target=drag, args=(range(start, 1000, 2),)) for start in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not overlaps
    assert drawn[-1] == slider.value == controller.params["n"]
