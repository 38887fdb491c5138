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

from .colors import CURRENT, CURVE
from .pruning import mask_image, show_mask
from .render import DPI, BlitRenderer, axes_for


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
    ax.plot(
        steps, [100 * min(f.loss, 1.0) for f in recording.frames], color="tab:red", label="train loss ×100 (cut at 100)"
    )
    for step in recording.schedule.pruning_steps():
        if step <= steps[-1]:
            ax.axvline(step, color="0.6", linewidth=0.6, linestyle=":")
    ax.set(xlabel=recording.unit, ylim=(0, 102), title=recording.method)
    ax.legend(fontsize="small", loc="center right")
    return fig


def plot_mask_film(recording, layer: str, count: int = 6) -> Figure:
    """``count`` frames of one layer's mask, evenly spread over the run (dark = kept weight), each titled with its
    step and this layer's sparsity."""
    indices = np.unique(np.linspace(0, len(recording.frames) - 1, count).round().astype(int))
    fig = Figure(figsize=(1.6 * len(indices), 2.0), layout="constrained")
    for position, index in enumerate(indices, start=1):
        frame = recording.frames[index]
        ax = fig.add_subplot(1, len(indices), position)
        mask = frame.masks[layer]
        shown = mask.reshape(mask.shape[0], -1).float().numpy()
        ax.imshow(shown, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set(
            xticks=[],
            yticks=[],
            title=f"{recording.unit.split()[-1]} {frame.step}\n{1 - float(mask.float().mean()):.0%} pruned",
        )
        ax.title.set_fontsize(8)
    return fig


class ReplayFigure:
    """One frame of a recorded run: a layer's mask, its weight histogram, and the timeline with a marker.

    ``update(frame)`` changes only the mask image, the histogram bars and the markers; the rest is drawn once.
    """

    def __init__(self, recording, layer: str, dpi: int = DPI):
        self.recording, self.layer = recording, layer
        self.figure = Figure(figsize=(9.5, 5.2), dpi=dpi)
        grid = self.figure.add_gridspec(
            2, 2, height_ratios=(1.15, 1), left=0.07, right=0.93, top=0.92, bottom=0.1, hspace=0.45, wspace=0.25
        )
        first = recording.frames[0]
        mask_ax = self.figure.add_subplot(grid[0, 0])
        self.mask = show_mask(mask_ax, first.masks[layer])
        mask_ax.set(xticks=[], yticks=[], title=f"{layer} mask (dark = kept)")
        hist_ax = self.figure.add_subplot(grid[0, 1])
        centers = np.arange(len(recording.bins))
        self.bars = hist_ax.bar(centers, first.histograms[layer], width=0.9, color=CURVE)
        peak = max(int(frame.histograms[layer].max()) for frame in recording.frames)
        hist_ax.set(ylim=(0, 1.05 * peak), xlabel="|w| (log bins; pruned weights in the first, at 0)", ylabel="count")
        ticks = [0, *range(9, len(recording.bins), 8)]  # 0 (pruned) apart from the log-spaced ticks
        hist_ax.set_xticks(ticks, ["0", *(f"{recording.bins[t]:.0e}" for t in ticks[1:])], fontsize=7)
        hist_ax.set_title("weight magnitudes", fontsize=10)
        timeline_ax = self.figure.add_subplot(grid[1, :])
        plot_timeline(recording, ax=timeline_ax)
        timeline_ax.get_legend().set_loc("lower left")
        (self.marker,) = timeline_ax.plot([], [], "o", color=CURRENT, markersize=8)
        self.cursor = timeline_ax.axvline(0, color=CURRENT, linewidth=1)
        self.renderer = BlitRenderer(self.figure, [self.mask, *self.bars, self.marker, self.cursor])

    def update(self, frame) -> None:
        self.mask.set_data(mask_image(frame.masks[self.layer]))
        for bar, count in zip(self.bars, frame.histograms[self.layer]):
            bar.set_height(count)
        self.marker.set_data([frame.step], [100 * frame.accuracy])
        self.cursor.set_xdata([frame.step, frame.step])

    def png(self) -> bytes:
        return self.renderer.png()
