"""The sensitivity board: per-layer sensitivity curves, one sparsity slider per layer, and the budget they buy.

The scan runs once; each slider move asks the same ``Pruner`` for ``masks(layer_sparsity=...)``,
measures accuracy, nonzero parameters and effective FLOPs, and redraws only the markers and meter bars.
"apply tolerance" sets every slider to the largest grid sparsity within the tolerance of its curve.

Example:
    >>> board = SensitivityBoard("mlp")
    >>> board.sliders["fc1"].value = 0.5  # what a user's drag does
    >>> board.state["layer_sparsity"]["fc1"], board.state["params"]["nonzero"] < board.state["params"]["total"]
    (0.5, True)
    >>> board.apply_button.click()
    >>> board.state["layer_sparsity"] == board.result.max_sparsity(board.tolerance.value)
    True
"""

from __future__ import annotations

import time

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from ..data import load_dataset
from ..measure import layer_flops, parameter_counts, sparse_flops
from ..pruner import Pruner
from ..sensitivity import SPARSITIES, SensitivityResult, scan
from ..viz.pruning import draw_sensitivity
from ..viz.render import BlitRenderer, share_bars
from ..zoo import pretrained
from .app import App

METER = ("nonzero params", "effective FLOPs", "accuracy")


class BoardFigure:
    """Sensitivity curves with each layer's chosen sparsity marked, and a meter of size, FLOPs and accuracy vs dense."""

    def __init__(self, result: SensitivityResult, tolerance: float, dpi: int = 72):
        self.result = result
        self.figure = Figure(figsize=(10, 4.2), dpi=dpi, layout="constrained")
        grid = self.figure.add_gridspec(1, 3)
        curve_ax = self.figure.add_subplot(grid[0, :2])
        lines, self.floor = draw_sensitivity(curve_ax, result, tolerance)
        self.markers = {
            name: curve_ax.plot([], [], "o", color=line.get_color(), markersize=8, markeredgecolor="k")[0]
            for name, line in lines.items()
        }
        curve_ax.set_ylim(0, 102)
        curve_ax.legend(fontsize=7, ncols=2, loc="lower left")
        curve_ax.set_title("each layer alone (dots: your choice)", fontsize=10)
        meter_ax = self.figure.add_subplot(grid[0, 2])
        self.meter = share_bars(meter_ax, METER, ["#1f4e79", "#d9822b", "tab:green"], "budget of the combined choice")
        self.renderer = BlitRenderer(self.figure, [*self.markers.values(), self.floor, *self.meter])

    def update(self, layer_sparsity: dict[str, float], tolerance: float, shares: tuple[float, float, float]) -> None:
        """Move each layer's marker onto its curve, the tolerance line, and the meter bars (fractions of dense)."""
        for name, marker in self.markers.items():
            sparsity = layer_sparsity[name]
            accuracy = np.interp(sparsity, self.result.sparsities, self.result.accuracies[name])
            marker.set_data([100 * sparsity], [100 * accuracy])
        self.floor.set_ydata([100 * (self.result.baseline - tolerance)] * 2)
        for bar, share in zip(self.meter, shares):
            bar.set_width(100 * share)

    def png(self) -> bytes:
        return self.renderer.png()


class SensitivityBoard(App):
    """Sensitivity scan of a shipped model (digits test split), with per-layer sliders and a budget meter.

    ``state`` holds the combined choice; ``update_ms`` the time of each update.
    """

    def __init__(
        self,
        model_name: str = "cnn",
        criterion: str = "magnitude",
        pattern: str = "unstructured",
        sparsities=SPARSITIES,
        dpi: int = 72,
    ):
        self.data = load_dataset("digits")
        self.model = pretrained(model_name)
        self.pruner = Pruner(self.model, criterion, pattern, data=self.data.train)
        self.result = scan(self.pruner, self.data.test, sparsities)
        self.sample = self.data.test.tensors[0][:1]  # FLOPs of one inference
        self.counted = layer_flops(self.model, self.sample)
        self.sliders = {
            target.name: widgets.FloatSlider(
                value=0.0,
                min=0.0,
                max=0.99,
                step=0.01,
                description=target.name,
                readout_format=".0%",
                continuous_update=True,
                style={"description_width": "110px"},
                layout=widgets.Layout(width="420px"),
            )
            for target in self.pruner.targets
        }
        self.tolerance = widgets.FloatSlider(
            value=0.01, min=0.0, max=0.2, step=0.005, description="tolerance", readout_format=".1%"
        )
        self.apply_button = widgets.Button(
            description="apply tolerance", tooltip="set each slider to result.max_sparsity(tolerance)"
        )
        self.image = widgets.Image(format="png")
        self.status = widgets.HTML()
        self.view = BoardFigure(self.result, self.tolerance.value, dpi)
        self.update_ms: list[float] = []
        self.state: dict = {}
        for slider in (*self.sliders.values(), self.tolerance):
            slider.observe(self._on_change, names="value")
        self.apply_button.on_click(lambda _: self.apply_tolerance())
        self.widget = widgets.VBox(
            [
                widgets.HBox(
                    [widgets.VBox(list(self.sliders.values())), widgets.VBox([self.tolerance, self.apply_button])]
                ),
                self.status,
                self.image,
            ]
        )
        self.update()

    def _on_change(self, _change) -> None:
        if not self._syncing:
            self.update()

    def apply_tolerance(self) -> None:
        """Set every layer's slider to ``result.max_sparsity(tolerance)``, then update once."""
        chosen = self.result.max_sparsity(self.tolerance.value)
        self._syncing = True
        try:
            for name, slider in self.sliders.items():
                slider.value = chosen[name]
        finally:
            self.update()

    def update(self) -> None:
        """Masks of the sliders' per-layer sparsities, their accuracy and budget, and the redrawn figure."""
        start = time.perf_counter()
        layer_sparsity = {name: slider.value for name, slider in self.sliders.items()}
        masks = self.pruner.masks(layer_sparsity=layer_sparsity)
        accuracy = self.pruner.accuracy(masks, self.data.test)
        total, nonzero = parameter_counts(self.model, masks)
        dense_flops, effective = self.counted[0], sparse_flops(self.counted, masks)
        self.view.update(
            layer_sparsity,
            self.tolerance.value,
            (nonzero / total, effective / dense_flops, accuracy / self.result.baseline),
        )
        self.image.value = self.view.png()
        self.state = {
            "layer_sparsity": layer_sparsity,
            "accuracy": accuracy,
            "baseline": self.result.baseline,
            "tolerance": self.tolerance.value,
            "params": {"total": total, "nonzero": nonzero},
            "flops": {"dense": dense_flops, "effective": effective},
        }
        elapsed = 1000 * (time.perf_counter() - start)
        self.update_ms.append(elapsed)
        self.status.value = " · ".join(
            [
                f"accuracy <b>{accuracy:.1%}</b> (dense {self.result.baseline:.1%})",
                f"nonzero params <b>{nonzero:,}</b> of {total:,}",
                f"effective FLOPs <b>{effective:,.0f}</b> of {dense_flops:,} per image",
                f"{elapsed:.0f} ms",
            ]
        )
