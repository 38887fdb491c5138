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

from ..data import load_dataset
from ..measure import layer_flops, parameter_counts, sparse_flops
from ..pruner import Pruner
from ..sensitivity import SPARSITIES, scan
from ..viz.render import DPI
from ..viz.sensitivity_board import BoardFigure
from ..zoo import pretrained
from .app import App, figure_image
from .controller import Controller
from .sliders import fraction_slider


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
        dpi: int = DPI,
    ):
        self.data = load_dataset("digits")
        self.model = pretrained(model_name)
        self.pruner = Pruner(self.model, criterion, pattern, data=self.data.train)
        self.result = scan(self.pruner, self.data.test, sparsities)
        self.sample = self.data.test.tensors[0][:1]  # FLOPs of one inference
        self.counted = layer_flops(self.model, self.sample)
        self.sliders = {
            target.name: fraction_slider(
                target.name, style={"description_width": "110px"}, layout=widgets.Layout(width="420px")
            )
            for target in self.pruner.targets
        }
        self.tolerance = fraction_slider("tolerance", 0.01, max=0.2, step=0.005, readout_format=".1%")
        self.apply_button = widgets.Button(
            description="apply tolerance", tooltip="set each slider to result.max_sparsity(tolerance)"
        )
        self.image = figure_image()
        self.status = widgets.HTML()
        self.view = BoardFigure(self.result, self.tolerance.value, dpi)
        self.update_ms: list[float] = []
        self.state: dict = {}
        # Layer names are module names; "tolerance" is the one other control.
        self.controller = Controller({**self.sliders, "tolerance": self.tolerance})
        self.controller.register(self.show)
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
        self.controller.refresh()

    def apply_tolerance(self) -> None:
        """Set every layer's slider to ``result.max_sparsity(tolerance)``, then update once."""
        self.controller.set(self.result.max_sparsity(self.controller.params["tolerance"]))

    def show(self, params: dict) -> None:
        """Masks of the sliders' per-layer sparsities, their accuracy and budget, and the redrawn figure."""
        start = time.perf_counter()
        layer_sparsity = {name: params[name] for name in self.sliders}
        tolerance = params["tolerance"]
        masks = self.pruner.masks(layer_sparsity=layer_sparsity)
        accuracy = self.pruner.accuracy(masks, self.data.test)
        total, nonzero = parameter_counts(self.model, masks)
        dense_flops, effective = self.counted[0], sparse_flops(self.counted, masks)
        self.view.update(
            layer_sparsity,
            tolerance,
            (nonzero / total, effective / dense_flops, accuracy / self.result.baseline),
        )
        self.show_png(self.view.png())
        self.state = {
            "layer_sparsity": layer_sparsity,
            "accuracy": accuracy,
            "baseline": self.result.baseline,
            "tolerance": tolerance,
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
