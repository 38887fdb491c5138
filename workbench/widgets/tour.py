"""The tour app: a sparsity slider driving per-layer magnitude masks and the tour figure.

A thin view: the logic is a ``Sweep`` over a magnitude ``Pruner``, the drawing is ``TourFigure``; this file wires them
to ipywidgets through a ``Controller``. The figure is shown as a PNG in an ``ipywidgets.Image`` so it updates in
place, with no flicker and no front-end extension (the same in JupyterLab, Voilà and nbval).

Example:
    >>> app = TourApp()
    >>> app.slider.value = 0.5  # what a user's drag does
    >>> round(app.state["sparsity"], 2), app.state["accuracy"] > 0.9
    (0.5, True)
"""

from __future__ import annotations

import time

import ipywidgets as widgets
import numpy as np

from ..data import load_dataset
from ..pruner import Pruner
from ..reports import check_sparsity
from ..sweep import Sweep
from ..viz.tour import TourFigure
from ..zoo import pretrained
from .app import App, figure_image
from .controller import Controller
from .sliders import fraction_slider

CURVE_SPARSITIES = np.round(np.concatenate([np.arange(0.0, 0.9, 0.05), np.arange(0.9, 0.995, 0.01)]), 2)


class TourApp(App):
    """Slider (0–99 % sparsity) → masks of every Linear layer, test accuracy, and the figure, live.

    Args:
        model: a trained classifier (default: the shipped "mlp").
        split: where accuracy is measured (default: the digits test split).
    """

    def __init__(self, model=None, split=None):
        self.model = model if model is not None else pretrained("mlp")
        pruner = Pruner(self.model, criterion="magnitude", pattern="unstructured", scope="local")
        self.sweep = Sweep(pruner, split if split is not None else load_dataset("digits").test)
        self.curve = self.sweep.curve(CURVE_SPARSITIES)
        self.view = TourFigure(self.sweep.masks(0.0), CURVE_SPARSITIES, self.curve)
        self.slider = fraction_slider("sparsity", layout=widgets.Layout(width="60%"))
        self.image = figure_image()
        self.status = widgets.HTML()
        self.update_ms: list[float] = []
        self.state: dict = {}
        # No place to show errors: a bad value set from code (NaN) raises, after the slider snapped back.
        self.controller = Controller({"sparsity": self.slider})
        self.controller.register(lambda params: self.update(params["sparsity"]))
        self.widget = widgets.VBox([widgets.HBox([self.slider, self.status]), self.image])
        self.controller.refresh()

    def update(self, sparsity: float) -> None:
        """Re-threshold the cached magnitude order, evaluate, redraw; records the time taken."""
        start = time.perf_counter()
        sparsity = check_sparsity(sparsity)
        masks = self.sweep.masks(sparsity)
        accuracy = self.sweep.accuracy(sparsity, masks)
        self.view.update(masks, sparsity, accuracy)
        self.show_png(self.view.png())
        elapsed = 1000 * (time.perf_counter() - start)
        self.update_ms.append(elapsed)
        kept = {name: int(mask.sum()) for name, mask in masks.items()}
        total = sum(mask.numel() for mask in masks.values())
        self.state = {
            "sparsity": sparsity,
            "accuracy": accuracy,
            "kept": kept,
            "achieved_sparsity": 1 - sum(kept.values()) / total,
        }
        self.status.value = f"accuracy <b>{accuracy:.1%}</b> · update {elapsed:.0f} ms"
