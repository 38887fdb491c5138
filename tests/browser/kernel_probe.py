"""Run inside a notebook's kernel (its source is sent there): describes the workbench apps the notebook holds.

Every function returns plain JSON-able data, printed by the test's kernel client and read back in the test.
"""

from __future__ import annotations

import hashlib
import html
import re


def _namespace() -> dict:
    from IPython import get_ipython

    return get_ipython().user_ns


def text(markup: str) -> str:
    """What the browser shows of an HTML widget's value: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", markup)).split())


def sha(data: bytes) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


def app_objects() -> dict:
    """Name → app for every workbench app bound to a name in the notebook."""
    from workbench.widgets.app import App

    return {name: value for name, value in _namespace().items() if isinstance(value, App) and not name.startswith("_")}


def main_slider(app):
    """The slider a learner moves first: ``app.slider``, else the first slider among the controller's controls."""
    slider = getattr(app, "slider", None)
    if slider is not None:
        return slider
    return next(c for c in app.controller.controls.values() if hasattr(c, "max") and hasattr(c, "min"))


def control_name(app, control) -> str:
    return next(name for name, c in app.controller.controls.items() if c is control)


def readout(slider) -> str:
    """The slider's readout as the browser writes it (a StepSlider's step label, else its value formatted)."""
    return slider.label if hasattr(slider, "label") else format(slider.value, slider.readout_format)


def position(slider) -> int:
    """The step the slider is on (a StepSlider's index, else counted from ``min`` in steps of ``step``)."""
    return slider.index if hasattr(slider, "index") else round((slider.value - slider.min) / slider.step)


def positions(slider) -> int:
    """How many steps the slider has (a SelectionSlider: its options)."""
    if hasattr(slider, "options"):
        return len(slider.options)
    return round((slider.max - slider.min) / slider.step) + 1


def describe(name: str) -> dict:
    """An app's class, image hash, status text, main slider and the parameter its controller holds for it."""
    app = app_objects()[name]
    slider = main_slider(app)
    control = control_name(app, slider)
    return {
        "name": name,
        "cls": type(app).__name__,
        "image": sha(app.image.value),
        "status": text(app.status.value),
        "description": slider.description,
        "control": control,
        "value": slider.value,
        "param": app.controller.params[control],
        "readout": readout(slider),
        "position": position(slider),
        "positions": positions(slider),
        "state_value": state_value(app, control),
        "error": app.state.get("error"),
    }


def describe_all() -> list[dict]:
    return [describe(name) for name in app_objects()]


def state_value(app, control: str):
    """What ``app.state`` says the control is set to (the slider's value, as the app applied it)."""
    state = app.state
    if control in state:
        return state[control]
    if control in state.get("layer_sparsity", {}):
        return state["layer_sparsity"][control]
    return None


def value_at(name: str, position: int):
    """The slider value of step ``position`` (a StepSlider's step value, a SelectionSlider's option's value, an
    IntSlider's integer)."""
    slider = main_slider(app_objects()[name])
    if hasattr(slider, "_step_value"):
        return slider._step_value(position)
    if hasattr(slider, "options"):
        option = slider.options[position]
        return option[1] if isinstance(option, tuple) else option
    value = slider.min + position * slider.step
    return value if isinstance(value, int) else round(value, 12)


def set_values(name: str, positions: list[int]) -> dict:
    """Set the main slider from code to the values of ``positions``, one after another, as a notebook cell does."""
    app = app_objects()[name]
    slider = main_slider(app)
    for position in positions:
        slider.value = value_at(name, position)
    return describe(name)


def redrawn_image(name: str) -> str:
    """The hash of the app's image redrawn from its current parameters (what the image of this value is)."""
    app = app_objects()[name]
    app.controller.refresh()
    return sha(app.image.value)


def update_times(name: str) -> list[float]:
    """The milliseconds of each of the app's updates so far, as it timed them."""
    return list(app_objects()[name].update_ms)
