"""The apps' sliders: a fraction (a sparsity, a tolerance) shown as a percentage, updating while dragged.

Example:
    >>> slider = fraction_slider("sparsity")
    >>> slider.value = 0.5  # what a user's drag does
    >>> (slider.min, slider.max, slider.step, slider.value)
    (0.0, 0.99, 0.01, 0.5)
"""

from __future__ import annotations

import ipywidgets as widgets


def fraction_slider(
    description: str,
    value: float = 0.0,
    *,
    min: float = 0.0,
    max: float = 0.99,
    step: float = 0.01,
    readout_format: str = ".0%",
    **options,
) -> widgets.FloatSlider:
    """A slider over [min, max] in steps of ``step``, its value read out as ``readout_format`` (a percentage)."""
    return widgets.FloatSlider(
        value=value,
        min=min,
        max=max,
        step=step,
        description=description,
        readout_format=readout_format,
        continuous_update=True,
        **options,
    )
