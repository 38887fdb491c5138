"""The browser's side of a slider, in Python: what it does with the updates the kernel sends, echoes included.

ipywidgets' slider views hand every value they receive to noUiSlider, which snaps it to the step grid, computing
in percent of the range (``snapped``: toStepping, getStep and fromStepping of noUiSlider 15, as bundled with
jupyterlab_widgets 3). The view reads the snapped value back (a FloatSlider's as it is, an IntSlider's and a
SelectionSlider's rounded to an integer) and, when it differs from what it received, sends it to the kernel.
The browser does this after the cell that set the value has moved on, so the echo can arrive after newer values.
"""

from __future__ import annotations

import math


def snapped(value: float, low: float, high: float, step: float) -> float:
    """noUiSlider's value for ``value`` on [low, high] in steps of ``step`` (JavaScript's float arithmetic)."""
    if value >= high:
        return high
    percent = 100 * (value - low) / (high - low)
    step_percent = 100 * step / (high - low)
    percent = math.floor(percent / step_percent + 0.5) * step_percent  # Math.round
    if percent >= 100:
        return high
    return percent * (high - low) / 100 + low


def echo(widget, state: dict) -> dict | None:
    """What the browser's view of ``widget`` sends back after applying ``state``, an update the kernel sent."""
    view = widget._view_name
    if view in ("FloatSliderView", "IntSliderView") and "value" in state:
        shown = snapped(state["value"], widget.min, widget.max, widget.step)
        shown = math.floor(shown + 0.5) if view == "IntSliderView" else shown
        return {"value": shown} if shown != state["value"] else None
    if view == "SelectionSliderView" and "index" in state:
        shown = math.floor(snapped(state["index"], 0, len(widget._options_labels) - 1, 1) + 0.5)
        return {"index": shown} if shown != state["index"] else None
    return None


class Browser:
    """Collects the updates the kernel sends ``widget`` and, on ``catch_up``, applies them as the browser does,
    delivering each echo through the widget's comm message handler, as a message from the browser arrives."""

    def __init__(self, widget, monkeypatch):
        self.widget = widget
        self.received: list[dict] = []
        monkeypatch.setattr(widget.comm, "send", self._receive)

    def _receive(self, data=None, metadata=None, buffers=None) -> None:
        if data["method"] == "update":
            self.received.append(data["state"])

    def catch_up(self) -> list[dict]:
        """Apply every update received so far, in order; returns the echoes sent back."""
        echoes = []
        while self.received:
            sent_back = echo(self.widget, self.received.pop(0))
            if sent_back is not None:
                echoes.append(sent_back)
                message = {"method": "update", "state": sent_back, "buffer_paths": []}
                self.widget._handle_msg({"content": {"data": message}, "buffers": []})
        return echoes
