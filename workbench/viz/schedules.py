"""Schedule curves: target sparsity against training step, pruning steps marked.

Example:
    >>> from workbench.schedules import schedule
    >>> fig = plot_schedules({k: schedule(k, final=0.9, end=100, every=10) for k in ("linear", "cubic")})
    >>> [line.get_label() for line in fig.axes[0].lines if not line.get_label().startswith("_")]
    ['linear', 'cubic']
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .render import axes_for


def plot_schedules(schedules: dict, ax=None, steps: int | None = None) -> Figure:
    """One step curve per schedule (label → ``Schedule``), dots at its pruning steps."""
    fig, ax = axes_for(ax, (5.5, 3.2))
    last = steps if steps is not None else max(int(s.end * 1.15) + 1 for s in schedules.values())
    t = np.arange(last + 1)
    for label, s in schedules.items():
        (line,) = ax.step(t, [100 * s(int(step)) for step in t], where="post", label=label)
        marks = [step for step in s.pruning_steps() if step <= last]
        ax.plot(marks, [100 * s(step) for step in marks], "o", color=line.get_color(), markersize=3)
    ax.set(xlabel="training step", ylabel="target sparsity (%)", ylim=(-2, 102), xlim=(0, last))
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3)
    return fig
