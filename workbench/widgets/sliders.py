"""The apps' sliders: a fraction (a sparsity, a tolerance) on a grid of steps, read out as a percentage.

A ``StepSlider`` keeps its float ``value`` in the kernel and gives the browser only the index of the step it is on,
drawn by ipywidgets' own selection-slider view with one label per step. (An ipywidgets FloatSlider hands the
browser the float itself; the browser snaps it to the step grid in floating point, 0.9 → 0.9000000000000001, and
when that differs sends it back, late: after a notebook cell has set a newer value from code, the stale echo
overwrites it. A step index is an integer, which the snapping leaves as it is, so nothing comes back.)

Example:
    >>> slider = fraction_slider("sparsity")
    >>> slider.value = 0.9  # from code: the browser is told step 90
    >>> slider.index, slider.label
    (90, '90%')
    >>> slider.set_state({"index": 95})  # a user's drag to step 95, as the browser sends it
    >>> slider.value
    0.95
"""

from __future__ import annotations

import math

import ipywidgets as widgets
from ipywidgets.widgets.trait_types import InstanceDict, TypedTuple
from ipywidgets.widgets.widget_description import DescriptionWidget
from traitlets import Bool, CaselessStrEnum, CFloat, Int, TraitError, Unicode, observe, validate

DECIMALS = 12  # a step's value, min + i·step, is rounded to this many decimals: 90 × 0.01 gives 0.9, not 0.9000…01


class StepSlider(DescriptionWidget, widgets.ValueWidget, widgets.CoreWidget):
    """A float slider over ``min``, ``min + step``, …, ``max`` that the browser sees as a slider over step indices,
    each labelled ``format(min + i·step, readout_format)``.

    ``value`` is clamped to [min, max], as a FloatSlider's, and may lie between steps when set from code (the
    browser then shows the nearest step); a user's move sets it to a step's value. ``min``, ``max``, ``step`` and
    ``readout_format`` are fixed when the slider is made.
    """

    _model_name = Unicode("SelectionSliderModel").tag(sync=True)
    _view_name = Unicode("SelectionSliderView").tag(sync=True)

    value = CFloat(0.0, help="The value (kept in the kernel; the browser sees ``index``)")
    min = CFloat(0.0, read_only=True)
    max = CFloat(1.0, read_only=True)
    step = CFloat(0.1, read_only=True)
    readout_format = Unicode(".2f", read_only=True, help="Python format spec of the step labels")
    index = Int(0, help="The step the browser shows").tag(sync=True)
    _options_labels = TypedTuple(trait=Unicode(), read_only=True, help="One label per step").tag(sync=True)
    orientation = CaselessStrEnum(values=["horizontal", "vertical"], default_value="horizontal").tag(sync=True)
    readout = Bool(True, help="Show the step's label next to the slider").tag(sync=True)
    continuous_update = Bool(True, help="Update the value while the slider is dragged").tag(sync=True)
    behavior = CaselessStrEnum(values=["drag-tap", "drag-snap", "tap", "drag", "snap"], default_value="drag-tap").tag(
        sync=True
    )
    disabled = Bool(False, help="Whether the user can move it").tag(sync=True)
    style = InstanceDict(widgets.SliderStyle).tag(sync=True, **widgets.widget_serialization)

    def __init__(self, value=0.0, *, min=0.0, max=1.0, step=0.1, readout_format=".2f", **kwargs):
        super().__init__(**kwargs)
        if not (step > 0 and min <= max):
            raise TraitError(f"a StepSlider needs step > 0 and min <= max, got {min}..{max} in steps of {step}")
        for name, setting in (("min", min), ("max", max), ("step", step), ("readout_format", readout_format)):
            self.set_trait(name, setting)
        steps = self._nearest_step(self.max) + 1
        self.set_trait("_options_labels", [format(self._step_value(i), readout_format) for i in range(steps)])
        self.value = value
        self.index = self._nearest_step(self.value)

    @property
    def label(self) -> str:
        """What the browser reads out: the label of the step shown."""
        return self._options_labels[self.index]

    def _nearest_step(self, value: float) -> int:
        return math.floor((value - self.min) / self.step + 0.5)

    def _step_value(self, index: int) -> float:
        return round(self.min + index * self.step, DECIMALS)

    @validate("value")
    def _clamp(self, proposal):
        value = proposal.value
        return self.min if value < self.min else self.max if value > self.max else value

    @observe("value")
    def _show_nearest_step(self, change) -> None:
        if math.isfinite(change.new):  # NaN set from code is for the app to refuse
            self.index = self._nearest_step(change.new)

    @observe("index")
    def _take_step(self, change) -> None:
        if not (math.isfinite(self.value) and self._nearest_step(self.value) == change.new):
            self.value = self._step_value(change.new)


def fraction_slider(
    description: str,
    value: float = 0.0,
    *,
    min: float = 0.0,
    max: float = 0.99,
    step: float = 0.01,
    readout_format: str = ".0%",
    **options,
) -> StepSlider:
    """A slider over [min, max] in steps of ``step``, its value read out as ``readout_format`` (a percentage)."""
    return StepSlider(
        value, min=min, max=max, step=step, readout_format=readout_format, description=description, **options
    )
