"""Pruning over time: accuracy before and after fine-tuning, and distributions that change epoch by epoch.

``plot_iterative`` draws an iterative run (a drop after each pruning step, the recovery of its fine-tune);
``plot_recovery`` compares accuracy-against-sparsity curves (one-shot, fine-tuned, iterative);
``plot_weight_distributions`` shows how far weights are from zero, exact zeros apart (L1 vs L2);
``plot_histograms_over_time`` stacks one histogram per epoch (group norms collapsing under group lasso).

Example:
    >>> from workbench.iterative import IterativeHistory, Round
    >>> history = IterativeHistory(0.97, "val", [Round(1, 0.5, 0.9, 0.96, 1.0), Round(2, 0.75, 0.8, 0.95, 1.0)])
    >>> fig = plot_iterative(history)
    >>> [line.get_label() for line in fig.axes[0].lines][:2]
    ['pruned (before fine-tuning)', 'fine-tuned']
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .render import axes_for

MARKERS = ("o", "s", "^", "v", "D", "P", "X")
ZERO_COLOR = "tab:red"


def _values(values) -> np.ndarray:
    """A tensor, array or sequence as a flat float64 NumPy array."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def plot_iterative(history, ax=None) -> Figure:
    """Accuracy against sparsity: a drop after each pruning step and the recovery of its fine-tune."""
    fig, ax = axes_for(ax, (5.5, 3.2))
    sparsity = [100 * r.sparsity for r in history.rounds]
    pruned = [100 * r.accuracy_pruned for r in history.rounds]
    tuned = [100 * r.accuracy_tuned for r in history.rounds]
    ax.plot(sparsity, pruned, "v", color="tab:red", label="pruned (before fine-tuning)")
    ax.plot([0, *sparsity], [100 * history.dense_accuracy, *tuned], "o-", color="tab:blue", label="fine-tuned")
    for x, low, high in zip(sparsity, pruned, tuned):
        ax.plot([x, x], [low, high], color="0.7", linewidth=1, zorder=0)
    ax.axhline(100 * history.dense_accuracy, color="0.4", linestyle=":", linewidth=1)
    ax.set(xlabel="sparsity (%)", ylabel=f"{history.split} accuracy (%)", xlim=(-2, 100))
    ax.legend(fontsize="small", loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def plot_recovery(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    dense_accuracy: float | None = None,
    *,
    split: str = "test",
    xlabel: str = "sparsity (%)",
    ax=None,
) -> Figure:
    """Accuracy against sparsity, one line per curve, and the dense model's accuracy as a dotted line.

    Args:
        curves: label → (sparsities, accuracies), both fractions in [0, 1]; drawn in percent, in order.
        dense_accuracy: the unpruned model's accuracy (a fraction), or None for no line.
        split, xlabel: axis texts (the y axis reads "<split> accuracy (%)").

    Example:
        >>> curves = {"one-shot": ([0.5, 0.9], [0.95, 0.48]), "fine-tuned": ([0.5, 0.9], [0.98, 0.96])}
        >>> fig = plot_recovery(curves, 0.975)
        >>> one_shot, tuned, dense = fig.axes[0].lines
        >>> one_shot.get_label(), one_shot.get_ydata().tolist(), tuned.get_xdata().tolist()
        ('one-shot', [95.0, 48.0], [50.0, 90.0])
    """
    if not curves:
        raise ValueError("no curves to plot")
    fig, ax = axes_for(ax, (5.5, 3.4))
    for (label, (sparsities, accuracies)), marker in zip(curves.items(), itertools.cycle(MARKERS)):
        x, y = 100 * _values(sparsities), 100 * _values(accuracies)
        if x.shape != y.shape:
            raise ValueError(f"curve {label!r}: {x.size} sparsities but {y.size} accuracies")
        ax.plot(x, y, marker=marker, markersize=5, label=label)
    if dense_accuracy is not None:
        ax.axhline(100 * dense_accuracy, color="0.4", linestyle=":", linewidth=1, label="dense")
    ax.set(xlabel=xlabel, ylabel=f"{split} accuracy (%)", ylim=(0, 102))
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_weight_distributions(weights: Mapping[str, object], *, bins: int = 40, smallest: float = 1e-6) -> Figure:
    """One panel per label: a histogram of log10 |w| of the nonzero weights and, apart, a red bar of the exact zeros.

    A penalty that only shrinks weights moves the histogram left; one that makes exact zeros grows the red bar.
    Nonzero magnitudes under ``smallest`` are counted in the first bin. The panels share their x axis.

    Example:
        >>> import torch
        >>> weights = {"shrunk": torch.tensor([0.1, -0.02, 0.3]), "sparse": torch.tensor([0.0, 0.0, 0.5])}
        >>> fig = plot_weight_distributions(weights)
        >>> [int(ax.patches[-1].get_height()) for ax in fig.axes]  # the bar of exact zeros
        [0, 2]
    """
    if not weights:
        raise ValueError("no weights to plot")
    magnitudes = {label: np.abs(_values(w)) for label, w in weights.items()}
    low = np.log10(smallest)
    top = max((m.max() for m in magnitudes.values() if m.size and m.max() > 0), default=1.0)
    high = max(np.ceil(np.log10(top) * 2) / 2, low + 1)
    edges = np.linspace(low, high, bins + 1)
    zero_at, width = low - 1.0, 0.8
    fig = Figure(figsize=(6, 1.6 * len(weights) + 0.5), layout="constrained")
    axes = fig.subplots(len(weights), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, values) in zip(axes, magnitudes.items()):
        nonzero = values[values > 0]
        counts, _ = np.histogram(np.clip(np.log10(nonzero), low, high), edges)
        ax.stairs(counts, edges, fill=True, color="tab:blue", alpha=0.8, label="nonzero")
        zeros = int(values.size - nonzero.size)
        ax.bar([zero_at], [zeros], width=width, color=ZERO_COLOR, label="exactly 0")
        share = zeros / values.size if values.size else 0.0
        mean = float(values.mean()) if values.size else 0.0
        ax.set_title(f"{label}: {share:.1%} exactly zero, mean |w| {mean:.3g}", fontsize=9, loc="left")
        ax.set_ylabel("weights")
        ax.grid(alpha=0.3)
    decades = np.arange(np.ceil(low), np.floor(high) + 1)
    axes[-1].set_xticks([zero_at, *decades], ["0", *[f"1e{int(d)}" for d in decades]])
    axes[-1].set_xlim(zero_at - width, high)
    axes[-1].set_xlabel("|w| (log scale; exact zeros on the left)")
    axes[0].legend(fontsize="small", loc="upper left")
    return fig


def plot_histograms_over_time(
    snapshots: Sequence[Mapping[str, object]],
    *,
    labels: Sequence[str] | None = None,
    bins: int = 30,
    xlabel: str = "group norm",
    columns: int = 3,
) -> Figure:
    """One panel per layer: a histogram of its values at every snapshot (e.g. each epoch), stacked top to bottom.

    Args:
        snapshots: one mapping layer → values (a tensor or array) per point in time, all with the same layers,
            e.g. ``[hook.group_norms(model) for each epoch]``.
        labels: one name per snapshot (default "epoch 0", "epoch 1", …), written on the left.
        bins: bins over [0, the layer's largest value at any snapshot]; the first bin starts at exactly 0.
        columns: panels per row of the figure.

    Each histogram is scaled to its own tallest bin (the shape shows, not the count); the number of values
    that are exactly zero at a snapshot is written on its right.

    Example:
        >>> epochs = [{"fc1": [1.0, 0.9, 1.1]}, {"fc1": [0.0, 0.5, 0.8]}, {"fc1": [0.0, 0.0, 0.6]}]
        >>> fig = plot_histograms_over_time(epochs)
        >>> [text.get_text() for text in fig.axes[0].texts]
        ['1 at 0', '2 at 0']
    """
    if not snapshots:
        raise ValueError("no snapshots to plot")
    layers = list(snapshots[0])
    if not layers or any(list(s) != layers for s in snapshots):
        raise ValueError("every snapshot must hold the same, nonempty, layers in the same order")
    labels = [f"epoch {i}" for i in range(len(snapshots))] if labels is None else list(labels)
    if len(labels) != len(snapshots):
        raise ValueError(f"{len(labels)} labels for {len(snapshots)} snapshots")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be an integer >= 1, got {columns!r}")
    colors = colormaps["viridis"](np.linspace(0.0, 0.85, len(snapshots)))
    ncols = min(columns, len(layers))
    nrows = -(-len(layers) // ncols)
    fig = Figure(figsize=(3.4 * ncols, (0.4 * len(snapshots) + 1.2) * nrows), layout="constrained")
    grid = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    for ax in grid.flat[len(layers) :]:
        fig.delaxes(ax)
    rows = np.arange(len(snapshots))[::-1]  # the first snapshot on top
    for ax, layer in zip(grid.flat, layers):
        values = [_values(s[layer]) for s in snapshots]
        top = max((v.max() for v in values if v.size), default=0.0)
        edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1)
        for row, color, v in zip(rows, colors, values):
            count = np.histogram(v, edges)[0]
            ax.stairs(row + 0.9 * count / max(1, count.max()), edges, baseline=row, fill=True, color=color, alpha=0.85)
            zeros = int((v == 0).sum())
            if zeros:
                ax.text(edges[-1], row + 0.1, f"{zeros} at 0", ha="right", va="bottom", fontsize=7, color=ZERO_COLOR)
        ax.set_title(f"{layer} ({values[0].size} groups)", fontsize=9)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    for ax in grid[:, 0]:
        ax.set_yticks(rows, labels, fontsize=8)
    grid[0, 0].set_ylim(-0.1, len(snapshots))
    return fig
