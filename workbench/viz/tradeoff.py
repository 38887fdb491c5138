"""The trade-off figure: accuracy against sparsity, against measured latency and against file size, one line per
pattern × mode across sparsity, the Pareto front marked, and the chosen sparsity ringed on every panel.

Latency and file size are shares of the dense model's (latency timed side by side with it), on log axes: a masked
model at 3× dense and a shrunk one at 0.1× both stay readable. ``TradeoffFigure`` is built once per model and
device; ``update(sparsity)`` moves the rings only, so a slider move costs a blit.

Example:
    >>> from workbench.tradeoff import recorded_tradeoff
    >>> figure = TradeoffFigure(recorded_tradeoff(), model="mlp")
    >>> shown = figure.update(0.9)
    >>> sorted(set(shown["mode"]))
    ['csr', 'dense', 'masked', 'shrunk']
    >>> figure.png()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..tradeoff import pareto_points
from .colors import CURRENT, MODE_STYLES, PARETO, PATTERN_LINES, REFERENCE
from .render import DPI, BlitRenderer, ratio_ticks

COSTS = {"relative_latency": "latency ÷ dense (timed side by side)", "file_share": "file size ÷ dense file"}


def select(table: pd.DataFrame, model: str | None = None, device: str | None = None) -> pd.DataFrame:
    """The rows of one model on one device (default: the table's first of each); a name not in it is refused."""
    for column, value in (("model", model), ("device", device)):
        present = list(dict.fromkeys(table[column]))
        if value is not None and value not in present:
            raise ValueError(f"{column} {value!r} is not in the table; it holds {', '.join(map(str, present))}")
        table = table[table[column] == (present[0] if value is None else value)]
    return table


def _where(device: str) -> str:
    return "CPU" if device == "cpu" else device.upper()


class TradeoffFigure:
    """Three panels over one model and device of a ``wb.tradeoff`` table; ``update`` rings one sparsity."""

    def __init__(self, table: pd.DataFrame, model: str | None = None, device: str | None = None, dpi: int = DPI):
        self.rows = select(table, model, device)
        self.available = self.rows[self.rows["available"].astype(bool)]
        self.patterns = list(dict.fromkeys(self.rows["pattern"]))
        self.modes = [mode for mode in MODE_STYLES if mode in set(self.available["mode"])]
        self.sparsities = sorted(set(self.rows["sparsity"]))
        first = self.rows.iloc[0]
        self.figure = Figure(figsize=(10, 4.2), dpi=dpi)
        grid = self.figure.add_gridspec(1, 3, left=0.065, right=0.985, top=0.86, bottom=0.27, wspace=0.12)
        axes = [self.figure.add_subplot(grid[0, i]) for i in range(3)]
        self._accuracy_panel(axes[0])
        for ax, cost in zip(axes[1:], COSTS):
            self._cost_panel(ax, cost)
        for ax in axes[1:]:
            ax.sharey(axes[0])
            ax.tick_params(labelleft=False)
        epochs = int(self.available.loc[self.available["sparsity"] > 0, "fine_tune_epochs"].max() or 0)
        tuned = f"fine-tuned {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "not fine-tuned"
        self.figure.suptitle(
            f"{first['model']}: test accuracy ({tuned}) against what it costs · {_where(first['device'])}, "
            f"batch {int(first['batch'])}, {int(first['threads'])} thread{'s' if first['threads'] != 1 else ''}",
            fontsize=11,
        )
        self.rings = [ax.plot([], [], "o", markersize=13, markerfacecolor="none", markeredgecolor=CURRENT,
                              markeredgewidth=2, zorder=5)[0] for ax in axes]  # fmt: skip
        self._legend()
        self._points = {s: self.available[np.isclose(self.available["sparsity"], s)] for s in self.sparsities}
        self._rings = {s: self._ring_data(points) for s, points in self._points.items()}
        self.renderer = BlitRenderer(self.figure, self.rings)

    def _accuracy_panel(self, ax) -> None:
        for index, pattern in enumerate(self.patterns):
            points = self.available[(self.available["pattern"] == pattern) & (self.available["mode"] == "dense")]
            ax.plot(
                100 * points["sparsity"], 100 * points["accuracy"], linestyle=PATTERN_LINES[index], color=REFERENCE,
                marker=".",
            )  # fmt: skip
        floor = 10 * np.floor(10 * self.available["accuracy"].min() - 0.5)
        ax.set(xlim=(-3, 100), ylim=(max(0, floor), 101), xlabel="sparsity (%)", ylabel="test accuracy (%)")
        ax.set_title("accuracy", fontsize=10)
        ax.grid(alpha=0.3)

    def _cost_panel(self, ax, cost: str) -> None:
        for index, pattern in enumerate(self.patterns):
            for mode in self.modes:
                points = self.available[(self.available["pattern"] == pattern) & (self.available["mode"] == mode)]
                if points.empty:
                    continue
                points = points.sort_values("sparsity")
                ax.plot(
                    points[cost], 100 * points["accuracy"], linestyle=PATTERN_LINES[index], markersize=5,
                    linewidth=1.2, alpha=0.85, **MODE_STYLES[mode],
                )  # fmt: skip
        front = pareto_points(self.rows, cost)
        ax.plot(
            front[cost], 100 * front["accuracy"], drawstyle="steps-post", color=PARETO, linewidth=4, alpha=0.45,
            zorder=1, label="Pareto front",
        )  # fmt: skip
        ax.axvline(1, color=REFERENCE, linestyle=":", linewidth=1)
        ax.set_xscale("log")
        low, high = self.available[cost].min(), self.available[cost].max()
        ratio_ticks(ax.xaxis, low, high)
        ax.set_xlim(low / 1.3, high * 1.3)
        ax.set(xlabel=COSTS[cost])
        ax.set_title(f"accuracy vs {'latency' if cost == 'relative_latency' else 'file size'}", fontsize=10)
        ax.grid(alpha=0.3, which="both")

    def _legend(self) -> None:
        modes = [
            Line2D([], [], linewidth=1.2, label=mode.replace("_", " "), **MODE_STYLES[mode]) for mode in self.modes
        ]
        patterns = [
            Line2D([], [], color=REFERENCE, linestyle=PATTERN_LINES[i], label=pattern)
            for i, pattern in enumerate(self.patterns)
        ]
        extra = [
            Line2D([], [], color=PARETO, linewidth=4, alpha=0.45, label="Pareto front"),
            Line2D([], [], linestyle="none", marker="o", markersize=10, markerfacecolor="none",
                   markeredgecolor=CURRENT, markeredgewidth=2, label="chosen sparsity"),
        ]  # fmt: skip
        self.figure.legend(
            handles=[*modes, *patterns, *extra], loc="lower center", ncols=6, fontsize=8.5, frameon=False,
            bbox_to_anchor=(0.5, 0.0),
        )  # fmt: skip

    @staticmethod
    def _ring_data(shown: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
        """Where the rings go on each panel for the points ``shown``."""
        dense = shown[shown["mode"] == "dense"]
        accuracy = 100 * shown["accuracy"].to_numpy()
        return [
            (100 * dense["sparsity"].to_numpy(), 100 * dense["accuracy"].to_numpy()),
            *((shown[cost].to_numpy(), accuracy) for cost in COSTS),
        ]

    def nearest(self, sparsity: float) -> float:
        """The measured sparsity nearest to ``sparsity``."""
        return min(self.sparsities, key=lambda measured: abs(measured - sparsity))

    def points_at(self, sparsity: float) -> pd.DataFrame:
        """The available points at the measured sparsity nearest ``sparsity``."""
        return self._points[self.nearest(sparsity)]

    def update(self, sparsity: float) -> pd.DataFrame:
        """Ring every available point at the measured sparsity nearest ``sparsity``; returns those points."""
        for ring, (x, y) in zip(self.rings, self._rings[self.nearest(sparsity)]):
            ring.set_data(x, y)
        return self.points_at(sparsity)

    def png(self) -> bytes:
        return self.renderer.png()


def plot_tradeoff(
    table: pd.DataFrame, sparsity: float | None = None, *, model: str | None = None, device: str | None = None
) -> Figure:
    """The trade-off figure of one model and device of ``table``, ``sparsity``'s points ringed (None: none)."""
    view = TradeoffFigure(table, model, device)
    if sparsity is not None:
        view.update(sparsity)
    for ring in view.rings:
        ring.set_animated(False)
    return view.figure
