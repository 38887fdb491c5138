"""The pruning explorer: model, criterion, pattern and scope dropdowns and a sparsity slider, all live.

Each (model, criterion, pattern, scope) choice scores once (one ``Pruner`` in a ``Sweep``) and builds its figure;
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
from functools import lru_cache

import ipywidgets as widgets
import numpy as np

from ..criteria import get_criterion
from ..data import load_dataset
from ..layer_fit import unfit_layers
from ..measure import parameter_counts
from ..pruner import Pruner
from ..reports import SCOPES, report_from_masks
from ..sweep import Sweep
from ..viz.explorer import ExplorerFigure
from ..viz.render import DPI
from ..zoo import pretrained
from .app import App, figure_image
from .choices import MODELS, explorer_criteria, explorer_patterns
from .controller import Controller
from .sliders import fraction_slider

CURVE_SPARSITIES = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
# Small budgets keep a data-driven dropdown change near a second; each criterion gets the options it takes.
FAST_CRITERION_OPTIONS = {"max_batches": 2, "max_samples": 64}
KEPT_CHOICES = 16  # scored choices kept for a quick return (each a Pruner: scores and ranks of one model)


@dataclass
class Setup:
    """One scored choice: its Sweep (the Pruner on the split), the layers left dense, and its accuracy curve."""

    key: tuple[str, str, str, str]  # model, criterion, pattern, scope
    sweep: Sweep
    excluded: dict[str, str]
    curve_x: np.ndarray
    curve_y: np.ndarray
    baseline: float

    @property
    def pruner(self) -> Pruner:
        return self.sweep.pruner


class Explorer(App):
    """Dropdowns (model, criterion, pattern, scope) and a sparsity slider over a live pruning figure.

    Accuracy is measured on the digits validation split (``split="val"``, the split for exploring and
    tuning; "test" is allowed); data-driven criteria score on its train split with ``FAST_CRITERION_OPTIONS``.
    ``state`` holds what is shown; ``update_ms`` the time of each slider update, ``build_ms`` of each dropdown
    change.
    """

    CHOICES = ("model", "criterion", "pattern", "scope")

    def __init__(self, model_name: str = "mlp", dpi: int = DPI, split: str = "val"):
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        self.data = load_dataset("digits")
        self.split_name = split
        self.split = getattr(self.data, split)
        self.dpi = dpi
        self._pretrained = lru_cache(maxsize=len(MODELS))(pretrained)
        self._setup = lru_cache(maxsize=KEPT_CHOICES)(self._score)
        self.model = widgets.Dropdown(options=MODELS, value=model_name, description="model")
        self.criterion = widgets.Dropdown(options=explorer_criteria(), value="magnitude", description="criterion")
        self.pattern = widgets.Dropdown(options=explorer_patterns(), value="unstructured", description="pattern")
        self.scope = widgets.Dropdown(options=SCOPES, value="local", description="scope")
        self.slider = fraction_slider("sparsity", layout=widgets.Layout(width="60%"))
        self.image = figure_image()
        self.status = widgets.HTML()
        self.update_ms: list[float] = []
        self.build_ms: list[float] = []
        self.state: dict = {}
        self.setup: Setup | None = None
        self.view: ExplorerFigure | None = None
        controls = {"model": self.model, "criterion": self.criterion, "pattern": self.pattern, "scope": self.scope}
        self.controller = Controller({**controls, "sparsity": self.slider}, show_error=self.show_error)
        self.controller.register(self.show)
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.model, self.criterion]),
                widgets.HBox([self.pattern, self.scope]),
                widgets.HBox([self.slider]),
                self.status,
                self.image,
            ]
        )
        self.controller.refresh()

    def show(self, params: dict) -> None:
        """Show ``params``: a new choice is scored (once) and gets its figure; a new sparsity only re-thresholds."""
        key = tuple(params[name] for name in self.CHOICES)
        if self.setup is not None and key == self.setup.key:
            self.update(params["sparsity"])
        else:
            self.build(key, params["sparsity"])

    def _score(self, key: tuple[str, str, str, str]) -> Setup:
        model_name, criterion, pattern, scope = key
        model = self._pretrained(model_name)
        excluded = unfit_layers(model, criterion, pattern)
        pruner = Pruner(
            model,
            criterion,
            pattern,
            scope,
            data=self.data.train,
            exclude=list(excluded),
            criterion_options=get_criterion(criterion).accepted(FAST_CRITERION_OPTIONS),
        )
        sweep = Sweep(pruner, self.split)
        return Setup(key, sweep, excluded, *sweep.reachable_curve(CURVE_SPARSITIES), pruner.accuracy({}, self.split))

    def build(self, key: tuple[str, str, str, str], sparsity: float) -> None:
        """Score the choice ``key`` (once; cached), build its figure and show it at ``sparsity`` (or at the
        sparsity its pattern fixes, which the slider then shows, disabled)."""
        start = time.perf_counter()
        setup = self._setup(key)
        fixed = setup.pruner.pattern.fixed_sparsity
        sparsity = fixed if fixed is not None else sparsity
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
        self.controller.set_quietly("sparsity", disabled=fixed is not None, value=sparsity)
        self._show(sparsity, *shown, start)
        self.build_ms.append(1000 * (time.perf_counter() - start))

    def update(self, sparsity: float) -> None:
        """Re-threshold the cached ranks at ``sparsity``, evaluate and redraw; records the time taken."""
        start = time.perf_counter()
        self._show(sparsity, *self._evaluate(self.setup, sparsity), start)
        self.update_ms.append(1000 * (time.perf_counter() - start))

    def _evaluate(self, setup: Setup, sparsity: float):
        masks = setup.sweep.masks(sparsity)
        return masks, setup.sweep.accuracy(sparsity, masks), report_from_masks(masks)

    def _show(self, sparsity, masks, accuracy, report, start) -> None:
        total, nonzero = parameter_counts(self.setup.pruner.model, masks)
        self.view.update(masks, report, sparsity, accuracy)
        self.show_png(self.view.png())
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
