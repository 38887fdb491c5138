"""The pruning explorer: model, criterion, pattern and scope dropdowns and a sparsity slider, all live.

Each (model, criterion, pattern, scope) choice scores once (one ``Pruner``) and builds its figure once;
a slider move only re-thresholds the cached ranks, evaluates, and redraws the changing artists.
A choice that does not apply (kernel on the MLP, head without attention, bn_scale without BatchNorm)
shows its ValueError in the status line, snaps the dropdown back, and changes nothing else.

Example:
    >>> app = Explorer("mlp")
    >>> app.slider.value = 0.5  # what a user's drag does
    >>> app.state["sparsity"], app.state["accuracy"] > 0.9
    (0.5, True)
    >>> app.pattern.value = "kernel"  # the MLP has no Conv layer
    >>> app.pattern.value, "Conv" in app.state["error"]
    ('unstructured', True)
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch

from ..criteria import CRITERIA
from ..data import load_dataset
from ..layers import prunable_layers
from ..masks import qualified
from ..measure import parameter_counts
from ..patterns import build_targets, parse_pattern
from ..pruner import Pruner
from ..reports import SCOPES, report_from_masks
from ..viz.explorer import ExplorerFigure
from ..zoo import pretrained
from .app import App

MODEL_NAMES = ("mlp", "cnn", "transformer")
PATTERN_CHOICES = ("unstructured", "2:4", "block1x4", "block4x4", "kernel", "neuron", "channel", "head")
CURVE_SPARSITIES = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
# Small budgets keep a data-driven dropdown change near a second; each criterion gets the options it takes.
FAST_CRITERION_OPTIONS = {"max_batches": 2, "max_samples": 64}  # each criterion gets the ones it takes


def unfit_layers(model, criterion: str, pattern: str) -> dict[str, str]:
    """Layers to leave dense, with why: shapes an N:M or block pattern cannot tile, layers bn_scale cannot score.

    Empty when that would leave nothing to prune, so the Pruner raises its own explanation instead.
    """
    kind = parse_pattern(pattern).kind
    layers = prunable_layers(model)
    unfit = {}
    for name, layer in layers.items():
        if kind in ("nm", "block"):
            try:
                build_targets(layer, pattern)  # the pattern's own shape rule, on this layer alone
            except ValueError:
                unfit[name] = f"shape does not fit {pattern}"
                continue
        if criterion == "bn_scale":
            try:
                CRITERIA["bn_scale"].fn(model, [qualified(name, "weight")], None)
            except ValueError:
                unfit[name] = "no BatchNorm after it"
    return unfit if len(unfit) < len(layers) else {}


@dataclass
class Setup:
    """One scored choice: the Pruner, the layers left dense, and its accuracy curve."""

    key: tuple[str, str, str, str]  # model, criterion, pattern, scope
    pruner: Pruner
    excluded: dict[str, str]
    curve_x: np.ndarray
    curve_y: np.ndarray
    baseline: float

    def masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        return self.pruner.masks(None if self.pruner.pattern.fixed_sparsity is not None else sparsity)


class Explorer(App):
    """Dropdowns (model, criterion, pattern, scope) and a sparsity slider over a live pruning figure.

    Accuracy is measured on the digits validation split (``split="val"``, the split for exploring and
    tuning; "test" is allowed); data-driven criteria score on its train split with ``FAST_CRITERION_OPTIONS``. ``state`` holds what is shown; ``update_ms`` the time of each
    slider update, ``build_ms`` of each dropdown change.
    """

    def __init__(self, model_name: str = "mlp", dpi: int = 72, split: str = "val"):
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        self.data = load_dataset("digits")
        self.split_name = split
        self.split = getattr(self.data, split)
        self.dpi = dpi
        self._models, self._setups = {}, {}
        self.model = widgets.Dropdown(options=MODEL_NAMES, value=model_name, description="model")
        self.criterion = widgets.Dropdown(options=list(CRITERIA), value="magnitude", description="criterion")
        self.pattern = widgets.Dropdown(options=PATTERN_CHOICES, value="unstructured", description="pattern")
        self.scope = widgets.Dropdown(options=SCOPES, value="local", description="scope")
        self.slider = widgets.FloatSlider(
            value=0.0,
            min=0.0,
            max=0.99,
            step=0.01,
            description="sparsity",
            readout_format=".0%",
            continuous_update=True,
            layout=widgets.Layout(width="60%"),
        )
        self.image = widgets.Image(format="png")
        self.status = widgets.HTML()
        self.update_ms: list[float] = []
        self.build_ms: list[float] = []
        self.state: dict = {}
        self.setup: Setup | None = None
        self.view: ExplorerFigure | None = None
        for dropdown in (self.model, self.criterion, self.pattern, self.scope):
            dropdown.observe(self._on_choice, names="value")
        self.slider.observe(self._on_slide, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.model, self.criterion]),
                widgets.HBox([self.pattern, self.scope]),
                widgets.HBox([self.slider]),
                self.status,
                self.image,
            ]
        )
        self.build()

    def _setup(self, key: tuple[str, str, str, str]) -> Setup:
        if key in self._setups:
            return self._setups[key]
        model_name, criterion, pattern, scope = key
        if model_name not in self._models:
            self._models[model_name] = pretrained(model_name)
        model = self._models[model_name]
        excluded = unfit_layers(model, criterion, pattern)
        pruner = Pruner(
            model,
            criterion,
            pattern,
            scope,
            data=self.data.train,
            exclude=list(excluded),
            criterion_options=CRITERIA[criterion].accepted(FAST_CRITERION_OPTIONS),
        )
        fixed = pruner.pattern.fixed_sparsity
        points = {}
        for sparsity in [fixed] if fixed is not None else CURVE_SPARSITIES:
            try:
                points[sparsity] = pruner.accuracy(pruner.masks(None if fixed is not None else sparsity), self.split)
            except ValueError:  # global scope cannot reach the highest sparsities without emptying a layer
                break
        setup = Setup(
            key,
            pruner,
            excluded,
            np.array(list(points)),
            np.array(list(points.values())),
            pruner.accuracy({}, self.split),
        )
        self._setups[key] = setup
        return setup

    def build(self) -> None:
        """Score the dropdowns' choice (once; cached), build its figure and show it at the slider's sparsity."""
        start = time.perf_counter()
        setup = self._setup((self.model.value, self.criterion.value, self.pattern.value, self.scope.value))
        fixed = setup.pruner.pattern.fixed_sparsity
        sparsity = fixed if fixed is not None else self.slider.value
        shown = self._evaluate(setup, sparsity)
        weights = setup.pruner.weights
        hist_name = max(weights, key=lambda name: weights[name].numel())
        view = ExplorerFigure(
            shown[0],
            weights[hist_name],
            hist_name,
            setup.curve_x,
            setup.curve_y,
            setup.baseline,
            self.dpi,
            self.split_name,
        )
        self.setup, self.view = setup, view
        self._set_quietly(self.slider, disabled=fixed is not None, **({"value": fixed} if fixed is not None else {}))
        self._show(sparsity, *shown, start)
        self.build_ms.append(1000 * (time.perf_counter() - start))

    def update(self, sparsity: float) -> None:
        """Re-threshold the cached ranks at ``sparsity``, evaluate and redraw; records the time taken."""
        start = time.perf_counter()
        self._show(sparsity, *self._evaluate(self.setup, sparsity), start)
        self.update_ms.append(1000 * (time.perf_counter() - start))

    def _evaluate(self, setup: Setup, sparsity: float):
        masks = setup.masks(sparsity)
        return masks, setup.pruner.accuracy(masks, self.split), report_from_masks(masks)

    def _show(self, sparsity, masks, accuracy, report, start) -> None:
        total, nonzero = parameter_counts(self.setup.pruner.model, masks)
        self.view.update(masks, report, sparsity, accuracy)
        self.image.value = self.view.png()
        model_name, criterion, pattern, scope = self.setup.key
        self.state = {
            "model": model_name,
            "criterion": criterion,
            "pattern": pattern,
            "scope": scope,
            "sparsity": sparsity,
            "accuracy": accuracy,
            "overall_sparsity": report.sparsity,
            "layer_sparsity": {layer.name: layer.sparsity for layer in report.layers},
            "params": {"total": total, "nonzero": nonzero},
            "excluded": dict(self.setup.excluded),
            "error": None,
        }
        notes = [f"left dense: {name} ({why})" for name, why in self.setup.excluded.items()]
        if self.setup.pruner.pattern.fixed_sparsity is not None:
            notes.append(f"{pattern} fixes the sparsity at {sparsity:.0%}")
        self.status.value = " · ".join(
            [
                f"accuracy <b>{accuracy:.1%}</b>",
                f"sparsity <b>{report.sparsity:.1%}</b> of pruned layers",
                f"nonzero params <b>{nonzero:,}</b> of {total:,}",
                f"{1000 * (time.perf_counter() - start):.0f} ms",
                *map(html.escape, notes),
            ]
        )

    def _on_slide(self, change) -> None:
        if self._syncing:
            return
        try:
            self.update(change["new"])
        except ValueError as error:
            self._set_quietly(self.slider, value=change["old"])
            self._show_error(error)

    def _show_error(self, error: ValueError) -> None:
        self.state["error"] = str(error)
        kept = " · ".join(self.setup.key)
        self.status.value = f"<span style='color:#b00'>⚠ {html.escape(str(error))}</span> (still showing {kept})"
