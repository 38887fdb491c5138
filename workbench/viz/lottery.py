"""Lottery tickets drawn: accuracy against the share of weights remaining, for the ticket and its controls.

Example:
    >>> sparsities = [0.0, 0.5, 0.75]
    >>> curves = {"winning ticket": (sparsities, [0.97, 0.97, 0.96]), "random masks": (sparsities, [0.97, 0.9, 0.8])}
    >>> fig = plot_lottery(curves, 0.97)
    >>> ticket, random, dense = fig.axes[0].lines
    >>> ticket.get_xdata().tolist(), random.get_ydata().tolist(), dense.get_label()
    ([100.0, 50.0, 25.0], [97.0, 90.0, 80.0], 'dense')
    >>> import workbench as wb
    >>> history = wb.lottery_ticket("mlp", wb.load_dataset("digits"), 0.5, rounds=2, epochs=1, progress=False)
    >>> len(plot_input_masks(history, "fc1.weight", input_shape=(8, 8)).axes)  # two rounds and a colour bar
    3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from .colors import ACCENT, KEPT, REFERENCE, RELATIVE_COLORS, series_style
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


def plot_input_masks(history, layer: str, *, input_shape: tuple[int, ...] | None = None, count: int = 5) -> Figure:
    """Which inputs a ticket's ``layer`` keeps weights from, round by round (Greydanus & Kobak 2024 on mnist1d).

    The share kept from each input is drawn relative to the layer's share that round (1: no preference; a
    diverging map, darker orange = listened to more, purple = less). 1-D inputs: a heat map (rounds × input
    position) and the last round's share per position against the layer's share. ``input_shape`` (e.g. (8, 8)):
    ``count`` rounds drawn as images, one value per pixel.
    """
    kept = history.kept_per_input(layer)
    relative = kept / kept.mean(axis=1, keepdims=True)
    sparsities = [r.sparsity for r in history.rounds]
    colors = {"cmap": RELATIVE_COLORS, "vmin": 0, "vmax": 2}
    if input_shape is not None and len(input_shape) == 2:
        indices = np.unique(np.linspace(0, len(kept) - 1, count).round().astype(int))
        fig = Figure(figsize=(1.7 * len(indices) + 0.8, 2.2), layout="constrained")
        axes = fig.subplots(1, len(indices), squeeze=False)[0]
        for ax, index in zip(axes, indices):
            image = ax.imshow(relative[index].reshape(input_shape), **colors)
            ax.set(xticks=[], yticks=[], title=f"{100 * (1 - sparsities[index]):.3g} % kept")
            ax.title.set_fontsize(8)
        fig.colorbar(image, ax=list(axes), label="kept ÷ layer's share", shrink=0.8)
        return fig
    fig = Figure(figsize=(6.5, 4.6), layout="constrained")
    heat_ax, line_ax = fig.subplots(2, 1, height_ratios=(1.3, 1), sharex=True)
    image = heat_ax.imshow(relative, aspect="auto", interpolation="nearest", **colors)
    heat_ax.set_yticks(range(len(kept)), [f"{100 * (1 - s):.3g}" for s in sparsities], fontsize=7)
    heat_ax.set(ylabel="weights kept (%)", title=f"{layer}: weights kept from each input, relative to the layer")
    fig.colorbar(image, ax=heat_ax, label="kept ÷ layer's share")
    positions = np.arange(kept.shape[1])
    last = kept[-1]
    line_ax.bar(positions, 100 * last, width=0.85, color=KEPT, label=f"round {len(kept)}")
    line_ax.axhline(100 * last.mean(), color=ACCENT, linestyle="--", label="no spatial preference")
    line_ax.set(xlabel="input position", ylabel="kept (%)")
    line_ax.legend(fontsize="small", loc="upper right")
    return fig
