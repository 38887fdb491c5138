"""Figures of a recorded run: the training timeline with its pruning events, and a film strip of one layer's mask.

Example:
    >>> import numpy as np, torch
    >>> from workbench.recording import Frame, Recording
    >>> from workbench.schedules import schedule
    >>> frames = [Frame(t, t / 100, 1 - t / 200, 0.9, {"w": torch.rand(4, 6) > t / 100}, {"w": np.ones(42)})
    ...           for t in (0, 50, 100)]
    >>> run = Recording("demo", schedule(final=0.9, end=100, every=50), ["w"], frames)
    >>> len(plot_timeline(run).axes), len(plot_mask_film(run, "w").axes)
    (2, 3)
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .render import axes_for


def plot_timeline(recording, ax=None) -> Figure:
    """Training loss and validation accuracy against step; the sparsity ramp shaded; pruning steps as lines."""
    fig, ax = axes_for(ax, (6.5, 3.2))
    steps = recording.steps
    sparsity_ax = ax.twinx()
    sparsity_ax.fill_between(steps, [100 * f.sparsity for f in recording.frames], step="post", color="0.85", zorder=0)
    sparsity_ax.set(ylabel="sparsity (%)", ylim=(0, 100))
    ax.set_zorder(sparsity_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(steps, [100 * f.accuracy for f in recording.frames], color="tab:blue", label="val accuracy (%)")
    ax.plot(steps, [100 * min(f.loss, 1.0) for f in recording.frames], color="tab:red", label="train loss (×100)")
    for step in recording.schedule.pruning_steps():
        if step <= steps[-1]:
            ax.axvline(step, color="0.6", linewidth=0.6, linestyle=":")
    ax.set(xlabel="training step", ylim=(0, 102), title=recording.method)
    ax.legend(fontsize="small", loc="center right")
    return fig


def plot_mask_film(recording, layer: str, count: int = 6) -> Figure:
    """``count`` frames of one layer's mask, evenly spread over the run (dark = kept weight)."""
    indices = np.unique(np.linspace(0, len(recording.frames) - 1, count).round().astype(int))
    fig = Figure(figsize=(1.6 * len(indices), 2.0), layout="constrained")
    for position, index in enumerate(indices, start=1):
        frame = recording.frames[index]
        ax = fig.add_subplot(1, len(indices), position)
        mask = frame.masks[layer]
        shown = mask.reshape(mask.shape[0], -1).float().numpy()
        ax.imshow(shown, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set(xticks=[], yticks=[], title=f"step {frame.step}\n{frame.sparsity:.0%}")
        ax.title.set_fontsize(8)
    return fig
