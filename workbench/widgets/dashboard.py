"""The dashboard: the workbench's apps in tabs, each built the first time its tab is selected (``workbench app``).

Only the first tab's app is built when the dashboard is made, so the page appears fast; selecting another tab shows
a "building…" note in it, builds its app (a few seconds: scoring, a sweep, or a recorded training run) and puts the
app in its place. Each tab opens with one line saying what it teaches. An app that fails to build shows its error in
its tab, one line, and the other tabs keep working (``errors`` holds it).

Example:
    >>> class Echo(App):
    ...     def __init__(self):
    ...         self.slider, self.status = widgets.IntSlider(), widgets.HTML()
    ...         self.slider.observe(lambda change: setattr(self.status, "value", str(change["new"])), names="value")
    ...         self.widget = widgets.VBox([self.slider, self.status])
    >>> dashboard = Dashboard([TabSpec("one", "the first", Echo), TabSpec("two", "the second", Echo)])
    >>> list(dashboard.apps)  # only the first tab is built
    ['one']
    >>> dashboard.tab.selected_index = 1  # what a click on the second tab does
    >>> dashboard.app.slider.value = 4  # what a user's drag does
    >>> list(dashboard.apps), dashboard.app.status.value
    (['one', 'two'], '4')
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets

from .app import App


@dataclass(frozen=True)
class TabSpec:
    """A tab: its title, what it teaches (one line), and how to build its app."""

    title: str
    teaches: str
    build: Callable[[], App]


def _tour() -> App:
    from .tour import TourApp

    return TourApp()


def _explorer() -> App:
    from .explorer import Explorer

    return Explorer("mlp")


def _sensitivity() -> App:
    from .sensitivity_board import SensitivityBoard

    return SensitivityBoard("cnn")


def _shrink_lab() -> App:
    from .shrink_lab import ShrinkLab

    return ShrinkLab("cnn", "l1", "filter", progress=False)


def _tradeoff() -> App:
    from .tradeoff import TradeoffView

    return TradeoffView()


def _replay() -> App:
    from ..lottery_history import recorded_lottery
    from .replay import ReplayApp

    tickets = {"lottery ticket · digits": "mlp", "lottery ticket · MNIST-1D": "mlp1d"}
    return ReplayApp(recordings={label: recorded_lottery(model).recording() for label, model in tickets.items()})


TABS = (
    TabSpec(
        "tour",
        "What sparsity costs: drag the slider and the MLP loses its smallest weights, layer by layer, and accuracy "
        "follows the curve.",
        _tour,
    ),
    TabSpec(
        "explorer",
        "How the choice of criterion, pattern and scope decides which weights go, and what each costs in accuracy.",
        _explorer,
    ),
    TabSpec(
        "sensitivity",
        "Some layers take pruning far better than others: give each layer of the CNN its own sparsity within a "
        "tolerance.",
        _sensitivity,
    ),
    TabSpec(
        "shrink lab",
        "Removing whole filters makes the matrices really smaller: parameters, FLOPs and CPU latency fall, "
        "and accuracy with them.",
        _shrink_lab,
    ),
    TabSpec(
        "what it buys",
        "What pruning buys: accuracy against measured latency and file size for every way to run and store the "
        "pruned model.",
        _tradeoff,
    ),
    TabSpec(
        "over time",
        "Pruning while training: press play and watch the sparsity rise as the network recovers, or a lottery ticket's "
        "rounds.",
        _replay,
    ),
)


class Dashboard:
    """Tabs over the apps of ``tabs`` (default: tour, explorer, sensitivity board, shrink lab, trade-off view,
    over-time replay).

    ``tab`` is the ipywidgets Tab, ``widget`` what is displayed; ``apps`` holds the apps built so far by title,
    ``build_s`` the seconds each took, ``errors`` why one could not be built.
    """

    def __init__(self, tabs=TABS, selected: int = 0):
        self.specs = tuple(tabs)
        self.apps: dict[str, App] = {}
        self.build_s: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.boxes = [
            widgets.VBox(
                [widgets.HTML(f"<b>{html.escape(spec.teaches)}</b>"), widgets.HTML("<i>building… (a few seconds)</i>")],
                layout=widgets.Layout(width="100%"),
            )
            for spec in self.specs
        ]
        self.tab = widgets.Tab(children=self.boxes, titles=[spec.title for spec in self.specs], selected_index=selected)
        self.tab.observe(lambda change: self.build(change["new"]), names="selected_index")
        self.widget = self.tab
        self.build(selected)

    @property
    def app(self) -> App | None:
        """The selected tab's app (None while it is not built, or if it failed)."""
        return self.apps.get(self.specs[self.tab.selected_index].title)

    def build(self, index: int | None) -> App | None:
        """Build tab ``index``'s app unless it is built already, and show it in its tab; returns it."""
        if index is None:
            return None
        spec, box = self.specs[index], self.boxes[index]
        if spec.title in self.apps or spec.title in self.errors:
            return self.apps.get(spec.title)
        start = time.perf_counter()
        try:
            app = spec.build()
        except Exception as error:  # a broken tab says why and leaves the others working
            self.errors[spec.title] = f"{type(error).__name__}: {error}"
            message = html.escape(" ".join(self.errors[spec.title].split()))
            box.children = [
                box.children[0],
                widgets.HTML(f"<span style='color:#b00'>⚠ could not build: {message}</span>"),
            ]
            return None
        self.build_s[spec.title] = time.perf_counter() - start
        self.apps[spec.title] = app
        box.children = [box.children[0], app.widget]
        return app

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
