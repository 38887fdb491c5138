"""The shrink lab's figure and shape table: one layer's matrices before → after, costs as shares of the dense
model, and accuracy and latency against sparsity with the current grid point marked.

Built once per sweep; ``update`` swaps the matrices and moves bars and markers, nothing else.

Example:
    >>> print(shape_table({"fc1": "300×64", "fc3": "10×100"}, {"fc1": "150×64", "fc3": "10×100"}))  # doctest: +ELLIPSIS
    <table ...<td ...>fc1</td><td ...>300×64</td><td>→</td><td ...><b>150×64</b></td></tr>...</table>
"""

from __future__ import annotations

import html

import numpy as np
from matplotlib.figure import Figure

from ..cuts import LayerCut
from ..shrink_sweep import ShrinkPoint, ShrinkSweep
from .colors import BUDGET, CURRENT, CURVE, REFERENCE
from .render import DPI, BlitRenderer, share_bars
from .shrinking import cut_colors, draw_cut, set_cut

COSTS = ("params", "FLOPs", "latency")


class ShrinkLabFigure:
    """Before/after matrices of one layer, cost bars (% of dense), accuracy and latency against sparsity."""

    def __init__(self, sweep: ShrinkSweep, cut: LayerCut, split_name: str = "val", dpi: int = DPI):
        self.sweep = sweep
        self.figure = Figure(
            figsize=(10, 6.4), dpi=dpi
        )  # fixed margins: a constrained layout would double the build time
        grid = self.figure.add_gridspec(
            2, 12, height_ratios=(1.1, 1), left=0.07, right=0.97, top=0.9, bottom=0.09, hspace=0.5, wspace=1.6
        )
        self.cut_artists = draw_cut(self.figure.add_subplot(grid[0, :4]), self.figure.add_subplot(grid[0, 4:8]), cut)
        cost_ax = self.figure.add_subplot(grid[0, 9:])
        self.bars = share_bars(cost_ax, COSTS, BUDGET, "shrunk as a share of dense", xmax=110)
        x = 100 * np.asarray(sweep.sparsities)
        accuracy_ax = self.figure.add_subplot(grid[1, :6])
        accuracy_ax.plot(x, 100 * sweep.curve("accuracy"), color=CURVE, marker=".")
        accuracy_ax.axhline(100 * sweep.dense_accuracy_, color=REFERENCE, linestyle=":", linewidth=1)
        (self.accuracy_marker,) = accuracy_ax.plot([], [], "o", color=CURRENT, markersize=8)
        accuracy_ax.set(
            xlim=(-2, 100),
            ylim=(0, 102),
            xlabel="sparsity: share of each group's units removed (%)",
            ylabel=f"{split_name} accuracy (%)",
        )
        accuracy_ax.set_title("accuracy, no fine-tuning (dotted: dense)", fontsize=10)
        accuracy_ax.grid(alpha=0.3)
        latency_ax = self.figure.add_subplot(grid[1, 6:])
        latency = sweep.curve("latency_ms")
        dense = sweep.dense_latency_
        latency_ax.plot(x, latency, color=BUDGET[2], marker=".", label="shrunk")
        latency_ax.axhline(dense.median_ms, color=REFERENCE, linestyle=":", linewidth=1, label="dense")
        (self.latency_marker,) = latency_ax.plot([], [], "o", color=CURRENT, markersize=8)
        latency_ax.set(
            xlim=(-2, 100), ylim=(0, 1.15 * max(latency.max(), dense.median_ms)), xlabel="sparsity (%)", ylabel="ms"
        )
        where = "CPU" if dense.device == "cpu" else dense.device.upper()
        latency_ax.set_title(f"{where} latency per batch of {dense.batch}, {dense.threads} thread", fontsize=10)
        latency_ax.legend(fontsize=8, loc="lower left")
        latency_ax.grid(alpha=0.3)
        dynamic = [*self.cut_artists, *self.bars, self.accuracy_marker, self.latency_marker]
        self.renderer = BlitRenderer(self.figure, dynamic, colors=cut_colors())

    def update(self, point: ShrinkPoint, cut: LayerCut) -> None:
        """Show ``point``'s costs and markers and ``cut``'s matrices; nothing is rebuilt."""
        sweep = self.sweep
        set_cut(self.cut_artists, cut)
        shares = (
            point.params / sweep.dense_params_,
            point.flops / sweep.dense_flops_,
            point.latency.median_ms / sweep.dense_latency_.median_ms,
        )
        for bar, share in zip(self.bars, shares):
            bar.set_width(100 * share)
        self.accuracy_marker.set_data([100 * point.sparsity], [100 * point.accuracy])
        self.latency_marker.set_data([100 * point.sparsity], [point.latency.median_ms])

    def png(self) -> bytes:
        return self.renderer.png()


def shape_table(dense: dict[str, str], shrunk: dict[str, str]) -> str:
    """HTML table: module, shape before → after (changed rows bold)."""
    rows = []
    for name, before in dense.items():
        after = shrunk[name]
        cell = f"<b>{html.escape(after)}</b>" if after != before else html.escape(after)
        rows.append(
            f"<tr><td style='padding:0 8px'>{html.escape(name)}</td>"
            f"<td style='padding:0 8px'>{html.escape(before)}</td>"
            f"<td>→</td><td style='padding:0 8px'>{cell}</td></tr>"
        )
    return (
        "<table style='font-family:monospace;font-size:11px;line-height:1.4'>"
        "<tr><th>layer</th><th>dense</th><th></th><th>shrunk</th></tr>" + "".join(rows) + "</table>"
    )
