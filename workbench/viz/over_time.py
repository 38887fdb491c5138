"""Pruning over time: accuracy before and after each fine-tune of an iterative run.

Example:
    >>> from workbench.iterative import IterativeHistory, Round
    >>> history = IterativeHistory(0.97, "val", [Round(1, 0.5, 0.9, 0.96, 1.0), Round(2, 0.75, 0.8, 0.95, 1.0)])
    >>> fig = plot_iterative(history)
    >>> [line.get_label() for line in fig.axes[0].lines][:2]
    ['pruned (before fine-tuning)', 'fine-tuned']
"""

from __future__ import annotations

from matplotlib.figure import Figure


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
