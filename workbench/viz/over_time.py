"""Pruning over time: accuracy before and after fine-tuning.

``plot_iterative`` draws an iterative run (a drop after each pruning step, the recovery of its fine-tune);
``plot_recovery`` compares accuracy-against-sparsity curves (one-shot, fine-tuned, iterative).

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
from matplotlib.figure import Figure

MARKERS = ("o", "s", "^", "v", "D", "P", "X")


def _values(values) -> np.ndarray:
    """A tensor, array or sequence as a flat float64 NumPy array."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def plot_iterative(history, ax=None) -> Figure:
    """Accuracy against sparsity: a drop after each pruning step and the recovery of its fine-tune."""
    if ax is None:
        fig = Figure(figsize=(5.5, 3.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
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
        >>> fig = plot_recovery({"one-shot": ([0.5, 0.9], [0.95, 0.48]), "fine-tuned": ([0.5, 0.9], [0.98, 0.96])}, 0.975)
        >>> one_shot, tuned, dense = fig.axes[0].lines
        >>> one_shot.get_label(), one_shot.get_ydata().tolist(), tuned.get_xdata().tolist()
        ('one-shot', [95.0, 48.0], [50.0, 90.0])
    """
    if not curves:
        raise ValueError("no curves to plot")
    if ax is None:
        fig = Figure(figsize=(5.5, 3.4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
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
