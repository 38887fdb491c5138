"""Lottery tickets drawn: accuracy against the share of weights remaining, for the ticket and its controls.

Example:
    >>> sparsities = [0.0, 0.5, 0.75]
    >>> curves = {"winning ticket": (sparsities, [0.97, 0.97, 0.96]), "random masks": (sparsities, [0.97, 0.9, 0.8])}
    >>> fig = plot_lottery(curves, 0.97)
    >>> ticket, random, dense = fig.axes[0].lines
    >>> ticket.get_xdata().tolist(), random.get_ydata().tolist(), dense.get_label()
    ([100.0, 50.0, 25.0], [97.0, 90.0, 80.0], 'dense')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from .colors import REFERENCE, series_style
from .render import axes_for


def plot_lottery(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    dense_accuracy: float | None = None,
    *,
    split: str = "test",
    ax=None,
) -> Figure:
    """Accuracy against the weights remaining (log scale, falling to the right as in Frankle & Carbin 2019).

    Args:
        curves: label → (sparsities, accuracies), fractions in [0, 1]; one line each, in order, with its own colour
            and marker.
        dense_accuracy: the dense network's accuracy (a dotted line), or None for none.
        split: the y axis reads "<split> accuracy (%)".
    """
    if not curves:
        raise ValueError("no curves to plot")
    fig, ax = axes_for(ax, (5.5, 3.4))
    remaining = []
    for index, (label, (sparsities, accuracies)) in enumerate(curves.items()):
        x = 100 * (1 - np.asarray(sparsities, dtype=np.float64))
        y = 100 * np.asarray(accuracies, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"curve {label!r}: {x.size} sparsities but {y.size} accuracies")
        ax.plot(x, y, markersize=5, label=label, **series_style(index))
        remaining.extend(x.tolist())
    if dense_accuracy is not None:
        ax.axhline(100 * dense_accuracy, color=REFERENCE, linestyle=":", linewidth=1, label="dense")
    ax.set_xscale("log")
    ticks = sorted({round(v, 1) for v in remaining if v > 0}, reverse=True)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize="small")
    if ticks:
        ax.set_xlim(max(ticks) * 1.15, min(ticks) / 1.15)
    ax.set(xlabel="weights remaining (%)", ylabel=f"{split} accuracy (%)")
    ax.legend(fontsize="small", loc="lower left")
    ax.grid(alpha=0.3)
    return fig
