"""The shrink lab: pick a model, criterion and structured pattern, slide the sparsity, watch the matrices shrink.

Each (model, criterion, pattern) choice runs one ``ShrinkSweep`` (cached; a progress bar shows inside the
widget): every grid sparsity is shrunk, evaluated and timed once. A slider move or a layer choice is then a
lookup and a redraw of the changing artists: the chosen layer's before/after matrices, the params/FLOPs/latency
bars, the accuracy and latency markers, and the shape table.

Example:
    >>> lab = ShrinkLab("mlp", sparsities=(0.0, 0.5), progress=False)
    >>> lab.slider.value = 0.5  # what a user's drag does
    >>> lab.state["shapes"]["fc1"], lab.state["params"]["shrunk"] < lab.state["params"]["dense"]
    (('300×64', '150×64'), True)
"""

from __future__ import annotations

import html
import time

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from ..shrink_sweep import GRID, PATTERNS, ShrinkPoint, ShrinkSweep, shrink_sweep
from ..viz.render import BlitRenderer, share_bars
from ..viz.shrinking import LayerCut, draw_cut, set_cut
from .app import App

MODEL_NAMES = ("mlp", "cnn", "transformer")
CRITERIA = ("l1", "l2", "fpgm", "random", "bn_scale", "taylor")
COSTS = ("params", "FLOPs", "latency")
COST_COLORS = ("#1f4e79", "#d9822b", "tab:green")


class ShrinkLabFigure:
    """Before/after matrices of one layer, cost bars (% of dense), accuracy and latency against sparsity."""

    def __init__(self, sweep: ShrinkSweep, cut: LayerCut, split_name: str = "val", dpi: int = 72):
        self.sweep = sweep
        self.figure = Figure(
            figsize=(10, 6.4), dpi=dpi
        )  # fixed margins: a constrained layout would double the build time
        grid = self.figure.add_gridspec(
            2, 12, height_ratios=(1.1, 1), left=0.07, right=0.97, top=0.9, bottom=0.09, hspace=0.5, wspace=1.6
        )
        self.cut_artists = draw_cut(self.figure.add_subplot(grid[0, :4]), self.figure.add_subplot(grid[0, 4:8]), cut)
        cost_ax = self.figure.add_subplot(grid[0, 9:])
        self.bars = share_bars(cost_ax, COSTS, COST_COLORS, "shrunk vs dense (numbers above)", xmax=110)
        x = 100 * np.asarray(sweep.sparsities)
        accuracy_ax = self.figure.add_subplot(grid[1, :6])
        accuracy_ax.plot(x, 100 * sweep.curve("accuracy"), color="0.4", marker=".")
        accuracy_ax.axhline(100 * sweep.dense_accuracy_, color="0.3", linestyle=":", linewidth=1)
        (self.accuracy_marker,) = accuracy_ax.plot([], [], "o", color="tab:red", markersize=8)
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
        latency_ax.plot(x, latency, color="tab:green", marker=".", label="shrunk")
        latency_ax.axhline(dense.median_ms, color="0.3", linestyle=":", linewidth=1, label="dense")
        (self.latency_marker,) = latency_ax.plot([], [], "o", color="tab:red", markersize=8)
        latency_ax.set(
            xlim=(-2, 100), ylim=(0, 1.15 * max(latency.max(), dense.median_ms)), xlabel="sparsity (%)", ylabel="ms"
        )
        latency_ax.set_title(f"CPU latency per batch of {dense.batch}, {dense.threads} thread", fontsize=10)
        latency_ax.legend(fontsize=8, loc="lower left")
        latency_ax.grid(alpha=0.3)
        dynamic = [*self.cut_artists, *self.bars, self.accuracy_marker, self.latency_marker]
        self.renderer = BlitRenderer(self.figure, dynamic)

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


def default_layer(sweep: ShrinkSweep) -> str:
    """The first layer that loses both rows and columns at the sweep's top sparsity, else the first that loses any."""
    top = sweep.sparsities[-1]
    cuts = [sweep.cut(top, layer) for layer in sweep.layers_]
    for wanted in (lambda c: c.rows.size and c.columns.size, lambda c: c.rows.size or c.columns.size):
        chosen = [c.name for c in cuts if wanted(c)]
        if chosen:
            return chosen[0]
    return sweep.layers_[0]


def shape_table(dense: dict[str, str], shrunk: dict[str, str]) -> str:
    """HTML table: module, shape before → after (changed rows bold)."""
    rows = []
    for name, before in dense.items():
        after = shrunk[name]
        cell = f"<b>{html.escape(after)}</b>" if after != before else html.escape(after)
        rows.append(
            f"<tr><td style='padding:0 8px'>{html.escape(name)}</td><td style='padding:0 8px'>{html.escape(before)}</td>"
            f"<td>→</td><td style='padding:0 8px'>{cell}</td></tr>"
        )
    return (
        "<table style='font-family:monospace;font-size:11px'><tr><th>layer</th><th>dense</th><th></th><th>shrunk</th></tr>"
        + "".join(rows)
        + "</table>"
    )


class ShrinkLab(App):
    """Dropdowns (model, criterion, pattern, layer) and a sparsity slider over shrunk models of the shipped nets.

    Accuracy is measured on the digits ``split`` ("val" or "test"); latency on the CPU with ``batch`` training
    images and one thread. ``state`` holds what is shown; ``update_ms`` the time of each slider or layer
    update, ``build_ms`` of each model/criterion/pattern change (a first choice runs its sweep).
    """

    def __init__(
        self,
        model_name: str = "mlp",
        criterion: str = "l1",
        pattern: str = "filter",
        *,
        split: str = "val",
        batch: int = 256,
        sparsities=GRID,
        dpi: int = 72,
        progress: bool = True,
    ):
        self.split_name, self.batch, self.sparsities, self.dpi, self.progress = (
            split,
            batch,
            tuple(sparsities),
            dpi,
            progress,
        )
        self.model = widgets.Dropdown(options=MODEL_NAMES, value=model_name, description="model")
        self.criterion = widgets.Dropdown(options=CRITERIA, value=criterion, description="criterion")
        self.pattern = widgets.Dropdown(options=list(PATTERNS), value=pattern, description="pattern")
        self.layer = widgets.Dropdown(description="layer")
        step = min(np.diff(self.sparsities)) if len(self.sparsities) > 1 else 0.1
        self.slider = widgets.FloatSlider(
            value=self.sparsities[0],
            min=self.sparsities[0],
            max=self.sparsities[-1],
            step=round(float(step), 6),
            description="sparsity",
            readout_format=".0%",
            continuous_update=True,
            layout=widgets.Layout(width="60%"),
        )
        self.image = widgets.Image(format="png")
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.log = widgets.Output()  # the sweep's progress bar
        self.update_ms: list[float] = []
        self.build_ms: list[float] = []
        self.state: dict = {}
        self.sweep: ShrinkSweep | None = None
        self.view: ShrinkLabFigure | None = None
        self._views: dict[int, ShrinkLabFigure] = {}
        for dropdown in (self.model, self.criterion, self.pattern):
            dropdown.observe(self._on_choice, names="value")
        self.layer.observe(self._on_view, names="value")
        self.slider.observe(self._on_view, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.model, self.criterion, self.pattern]),
                widgets.HBox([self.slider, self.layer]),
                self.log,
                self.status,
                widgets.HBox([self.image, self.table]),
            ]
        )
        self.build()

    def build(self) -> None:
        """Run (or fetch) the sweep of the dropdowns' choice, build its figure and show the slider's sparsity."""
        start = time.perf_counter()
        try:
            with self.log:
                sweep = shrink_sweep(
                    self.model.value,
                    self.criterion.value,
                    self.pattern.value,
                    split=self.split_name,
                    batch=self.batch,
                    sparsities=self.sparsities,
                    progress=self.progress,
                )
        finally:
            if self.progress:
                self.log.clear_output()
        layer = self.layer.value if self.layer.value in sweep.layers_ else default_layer(sweep)
        self._set_quietly(self.layer, options=sweep.layers_, value=layer)
        self.sweep = sweep
        if id(sweep) not in self._views:  # a revisited choice reuses its figure and cached background
            self._views[id(sweep)] = ShrinkLabFigure(
                sweep, sweep.cut(self.slider.value, layer), self.split_name, self.dpi
            )
        self.view = self._views[id(sweep)]
        self._show(start)
        self.build_ms.append(1000 * (time.perf_counter() - start))

    def update(self) -> None:
        """Look up the slider's grid point, cut the chosen layer and redraw; records the time taken."""
        start = time.perf_counter()
        self._show(start)
        self.update_ms.append(1000 * (time.perf_counter() - start))

    def _show(self, start: float) -> None:
        sweep, layer = self.sweep, self.layer.value
        point = sweep.at(self.slider.value)
        cut = sweep.cut(point.sparsity, layer)
        self.view.update(point, cut)
        self.image.value = self.view.png()
        self.table.value = shape_table(sweep.dense_shapes_, point.shapes)
        dense_ms, shrunk_ms = sweep.dense_latency_.median_ms, point.latency.median_ms
        self.state = {
            "model": self.model.value,
            "criterion": self.criterion.value,
            "pattern": self.pattern.value,
            "layer": layer,
            "sparsity": point.sparsity,
            "accuracy": point.accuracy,
            "dense_accuracy": sweep.dense_accuracy_,
            "params": {"dense": sweep.dense_params_, "shrunk": point.params},
            "flops": {"dense": sweep.dense_flops_, "shrunk": point.flops},
            "latency_ms": {"dense": dense_ms, "shrunk": shrunk_ms},
            "batch": sweep.dense_latency_.batch,
            "threads": sweep.dense_latency_.threads,
            "shapes": {name: (before, point.shapes[name]) for name, before in sweep.dense_shapes_.items()},
            "cut": cut.label,
            "max_difference": point.max_difference,
            "error": None,
        }
        self.status.value = " · ".join(
            [
                f"accuracy <b>{point.accuracy:.1%}</b> (dense {sweep.dense_accuracy_:.1%})",
                f"params <b>{point.params:,}</b> of {sweep.dense_params_:,}",
                f"FLOPs <b>{point.flops:,}</b> of {sweep.dense_flops_:,} per image",
                f"latency <b>{shrunk_ms:.2f} ms</b> vs dense {dense_ms:.2f} ms (batch {self.state['batch']}, {self.state['threads']} thread)",
                f"{html.escape(layer)}: {html.escape(cut.label)}",
                f"{1000 * (time.perf_counter() - start):.0f} ms",
            ]
        )

    def _on_view(self, _change) -> None:
        if not self._syncing:
            self.update()

    def _show_error(self, error: ValueError) -> None:
        self.state["error"] = str(error)
        kept = " · ".join((self.state["model"], self.state["criterion"], self.state["pattern"]))
        self.status.value = f"<span style='color:#b00'>⚠ {html.escape(str(error))}</span> (still showing {kept})"
