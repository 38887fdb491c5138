"""The shrink lab: pick a model, criterion and structured pattern, slide the sparsity, watch the matrices shrink.

Each (model, criterion, pattern) choice runs one ``ShrinkSweep`` (a progress bar shows inside the widget): every
grid sparsity is shrunk, evaluated and timed once. The lab keeps the sweeps and figures of its last few choices.
A slider move or a layer choice is then a lookup and a redraw of the changing artists: the chosen layer's
before/after matrices, the params/FLOPs/latency bars, the accuracy and latency markers, and the shape table.

Example:
    >>> lab = ShrinkLab("mlp", sparsities=(0.0, 0.5), progress=False)
    >>> lab.slider.value = 0.5  # what a user's drag does
    >>> lab.state["shapes"]["fc1"], lab.state["params"]["shrunk"] < lab.state["params"]["dense"]
    (('300×64', '150×64'), True)
"""

from __future__ import annotations

import html
import time
from functools import lru_cache

import ipywidgets as widgets
import numpy as np

from ..shrink_sweep import GRID, ShrinkSweep, canonical_pattern, default_layer, shrink_sweep
from ..viz.render import DPI
from ..viz.shrink_lab import ShrinkLabFigure, shape_table
from .app import App, figure_image
from .choices import MODELS, shrink_criteria, shrink_patterns
from .controller import Controller
from .sliders import fraction_slider

KEPT_SWEEPS = 4  # choices kept for a quick return, each with its grid of shrunk models and its figure


class ShrinkLab(App):
    """Dropdowns (model, criterion, pattern, layer) and a sparsity slider over shrunk models of the shipped nets.

    Accuracy is measured on the digits ``split`` ("val" or "test"); latency on ``device`` ("auto": CUDA when
    available) with ``batch`` training images and one thread. ``state`` holds what is shown; ``update_ms`` the
    time of each slider or layer update, ``build_ms`` of each model/criterion/pattern change (a new choice runs
    its sweep).
    """

    CHOICES = ("model", "criterion", "pattern")

    def __init__(
        self,
        model_name: str = "mlp",
        criterion: str = "l1",
        pattern: str = "filter",
        *,
        split: str = "val",
        batch: int = 256,
        sparsities=GRID,
        dpi: int = DPI,
        progress: bool = True,
        device: str = "auto",
    ):
        self.device = device  # where the sweep times latency ("auto": CUDA when available)
        self.split_name, self.batch, self.sparsities, self.dpi, self.progress = (
            split,
            batch,
            tuple(sparsities),
            dpi,
            progress,
        )
        self._run = lru_cache(maxsize=KEPT_SWEEPS)(self._sweep_and_figure)
        self.model = widgets.Dropdown(options=MODELS, value=model_name, description="model")
        self.criterion = widgets.Dropdown(options=shrink_criteria(), value=criterion, description="criterion")
        self.pattern = widgets.Dropdown(options=shrink_patterns(), value=pattern, description="pattern")
        self.layer = widgets.Dropdown(description="layer")
        step = min(np.diff(self.sparsities)) if len(self.sparsities) > 1 else 0.1
        self.slider = fraction_slider(
            "sparsity",
            self.sparsities[0],
            min=self.sparsities[0],
            max=self.sparsities[-1],
            step=round(float(step), 6),
            layout=widgets.Layout(width="60%"),
        )
        self.image = figure_image()
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.log = widgets.Output()  # the sweep's progress bar
        self.update_ms: list[float] = []
        self.build_ms: list[float] = []
        self.state: dict = {}
        self.choice: tuple[str, str, str] | None = None
        self.sweep: ShrinkSweep | None = None
        self.view: ShrinkLabFigure | None = None
        controls = {"model": self.model, "criterion": self.criterion, "pattern": self.pattern, "layer": self.layer}
        self.controller = Controller({**controls, "sparsity": self.slider}, show_error=self.show_error)
        self.controller.register(self.show)
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.model, self.criterion, self.pattern]),
                widgets.HBox([self.slider, self.layer]),
                self.log,
                self.status,
                self.image,
                self.table,
            ]
        )
        self.controller.refresh()

    def _sweep_and_figure(self, model_name: str, criterion: str, groups: str) -> tuple[ShrinkSweep, ShrinkLabFigure]:
        """Run a choice's sweep (its progress bar in ``log``) and build its figure."""
        try:
            with self.log:
                sweep = shrink_sweep(
                    model_name,
                    criterion,
                    groups,
                    split=self.split_name,
                    batch=self.batch,
                    sparsities=self.sparsities,
                    device=self.device,
                    progress=self.progress,
                )
        finally:
            if self.progress:
                self.log.clear_output()
        first = sweep.cut(sweep.sparsities[0], default_layer(sweep))
        return sweep, ShrinkLabFigure(sweep, first, self.split_name, self.dpi)

    def show(self, params: dict) -> None:
        """Show ``params``: a new choice runs (or fetches) its sweep and figure; the slider and layer only look up."""
        start = time.perf_counter()
        choice = tuple(params[name] for name in self.CHOICES)
        built = choice != self.choice
        if built:
            model_name, criterion, pattern = choice
            sweep, view = self._run(model_name, criterion, canonical_pattern(pattern))
            layer = params["layer"] if params["layer"] in sweep.layers_ else default_layer(sweep)
            self.controller.set_quietly("layer", options=sweep.layers_, value=layer)
            self.choice, self.sweep, self.view = choice, sweep, view
        sweep, layer = self.sweep, self.controller.params["layer"]
        point = sweep.at(params["sparsity"])
        cut = sweep.cut(point.sparsity, layer)
        self.view.update(point, cut)
        self.show_png(self.view.png())
        self.table.value = shape_table(sweep.dense_shapes_, point.shapes)
        dense_ms, shrunk_ms = sweep.dense_latency_.median_ms, point.latency.median_ms
        batch, threads = sweep.dense_latency_.batch, sweep.dense_latency_.threads
        self.state = {
            "model": choice[0],
            "criterion": choice[1],
            "pattern": choice[2],
            "layer": layer,
            "sparsity": point.sparsity,
            "accuracy": point.accuracy,
            "dense_accuracy": sweep.dense_accuracy_,
            "params": {"dense": sweep.dense_params_, "shrunk": point.params},
            "flops": {"dense": sweep.dense_flops_, "shrunk": point.flops},
            "latency_ms": {"dense": dense_ms, "shrunk": shrunk_ms},
            "batch": batch,
            "threads": threads,
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
                f"latency <b>{shrunk_ms:.2f} ms</b> vs dense {dense_ms:.2f} ms (batch {batch}, {threads} thread)",
                f"{html.escape(layer)}: {html.escape(cut.label)}",
                f"{1000 * (time.perf_counter() - start):.0f} ms",
            ]
        )
        (self.build_ms if built else self.update_ms).append(1000 * (time.perf_counter() - start))
