"""The trade-off view: slide along sparsity and the chosen points move on every panel (accuracy, latency, file size),
with a table of what each pattern × mode buys there.

It shows a ``wb.tradeoff`` table (default: the one shipped with the package, measured by ``benchmarks/tradeoff.py``);
nothing is measured while it runs. A model or device choice builds that figure once (kept); a slider move rings the
points of the nearest measured sparsity and redraws only the rings.

Example:
    >>> view = TradeoffView()
    >>> view.slider.value = 0.9  # what a user's drag does
    >>> point = view.state["points"][("filter", "shrunk")]
    >>> view.state["sparsity"], point["relative_latency"] < 1, point["file_share"] < 0.2
    (0.9, True, True)
"""

from __future__ import annotations

import html
import time
from functools import lru_cache

import ipywidgets as widgets
import pandas as pd

from ..tradeoff import pareto_points, recorded_tradeoff
from ..viz.render import DPI
from ..viz.tradeoff import TradeoffFigure
from .app import App, figure_image
from .controller import Controller


def _percent(value: float) -> str:
    return f"{value:.0%}"


def points_table(shown: pd.DataFrame, front: set[tuple[str, str]]) -> str:
    """HTML table of the points at one sparsity: pattern, mode, accuracy, latency and file ÷ dense (Pareto rows
    marked)."""
    header = "".join(
        f"<th style='padding:2px 10px'>{name}</th>"
        for name in ("pattern", "mode", "accuracy", "latency ÷ dense", "file ÷ dense", "Pareto front")
    )
    rows = []
    for _, point in shown.sort_values(["pattern", "relative_latency"]).iterrows():
        best = (point["pattern"], point["mode"]) in front
        cells = (
            html.escape(point["pattern"]),
            html.escape(point["mode"].replace("_", " ")),
            f"{point['accuracy']:.1%}",
            f"{point['relative_latency']:.2f}×",
            f"{point['file_share']:.3f}×",
            "✓" if best else "",
        )
        style = " style='font-weight:bold'" if best else ""
        rows.append(f"<tr{style}>" + "".join(f"<td style='padding:2px 10px'>{cell}</td>" for cell in cells) + "</tr>")
    return f"<table style='border-collapse:collapse'><tr>{header}</tr>{''.join(rows)}</table>"


class TradeoffView(App):
    """Model and device dropdowns and a sparsity slider over a trade-off ``table`` (default: the shipped one).

    ``state`` holds what is shown: the sparsity, and per (pattern, mode) its accuracy, relative latency, file share
    and whether it is on a Pareto front; ``update_ms`` the time of each slider move, ``build_ms`` of each figure.
    """

    CHOICES = ("model", "device")

    def __init__(self, table: pd.DataFrame | None = None, model: str | None = None, *, dpi: int = DPI):
        self.table = recorded_tradeoff() if table is None else table
        models = list(dict.fromkeys(self.table["model"]))
        devices = list(dict.fromkeys(self.table["device"]))
        self.dpi = dpi
        self._figure = lru_cache(maxsize=None)(self._build_figure)
        self.model = widgets.Dropdown(options=models, value=model or models[0], description="model")
        self.device = widgets.Dropdown(options=devices, value=devices[0], description="device")
        sparsities = sorted(set(self.table["sparsity"]))
        self.slider = widgets.SelectionSlider(
            options=[(_percent(s), s) for s in sparsities],
            value=sparsities[len(sparsities) // 2],
            description="sparsity",
            continuous_update=True,
            layout=widgets.Layout(width="50%"),
        )
        self.image = figure_image()
        self.status = widgets.HTML()
        self.points = widgets.HTML()
        self.update_ms: list[float] = []
        self.build_ms: list[float] = []
        self.state: dict = {}
        self.shown: tuple[str, str] | None = None
        self.controller = Controller(
            {"model": self.model, "device": self.device, "sparsity": self.slider}, show_error=self.show_error
        )
        self.controller.register(self.show)
        self.widget = widgets.VBox(
            [widgets.HBox([self.model, self.device, self.slider]), self.status, self.image, self.points]
        )
        self.controller.refresh()

    def _build_figure(self, model: str, device: str) -> tuple[TradeoffFigure, dict]:
        """The figure of one model and device, and per measured sparsity what the status, table and state show."""
        figure = TradeoffFigure(self.table, model, device, self.dpi)
        on_front = {
            (row["pattern"], row["mode"], row["sparsity"])
            for cost in ("relative_latency", "file_share")
            for _, row in pareto_points(figure.rows, cost).iterrows()
        }
        return figure, {sparsity: self._describe(figure, sparsity, on_front) for sparsity in figure.sparsities}

    @staticmethod
    def _describe(figure: TradeoffFigure, sparsity: float, on_front: set) -> dict:
        """The table, status notes and state of the points at ``sparsity``."""
        shown = figure.points_at(sparsity)
        front = {(pattern, mode) for pattern, mode, at in on_front if abs(at - sparsity) < 1e-9}
        points = {
            (row["pattern"], row["mode"]): {
                "accuracy": row["accuracy"],
                "relative_latency": row["relative_latency"],
                "file_share": row["file_share"],
                "pareto": (row["pattern"], row["mode"]) in front,
            }
            for _, row in shown.iterrows()
        }
        fastest = shown.loc[shown["relative_latency"].idxmin()]
        smallest = shown.loc[shown["file_share"].idxmin()]
        notes = [
            f"at <b>{sparsity:.0%}</b>: fastest <b>{html.escape(fastest['pattern'])} · "
            f"{html.escape(fastest['mode'])}</b> ({fastest['relative_latency']:.2f}× dense latency)",
            f"smallest <b>{html.escape(smallest['pattern'])} · {html.escape(smallest['mode'])}</b> "
            f"({smallest['file_share']:.3f}× the dense file)",
        ]
        if missing := sorted(set(figure.patterns) - set(shown["pattern"])):
            notes.append(f"not measured here: {html.escape(', '.join(missing))} (N:M fixes its sparsity)")
        return {"table": points_table(shown, front), "notes": notes, "points": points}

    def show(self, params: dict) -> None:
        """Ring the points at ``params["sparsity"]`` on the chosen model's and device's figure."""
        start = time.perf_counter()
        choice = (params["model"], params["device"])
        built = choice != self.shown
        figure, described = self._figure(*choice)
        figure.update(params["sparsity"])
        self.shown = choice
        self.show_png(figure.png())
        sparsity = figure.nearest(params["sparsity"])
        here = described[sparsity]
        self.points.value = here["table"]
        self.state = {
            "model": choice[0],
            "device": choice[1],
            "sparsity": sparsity,
            "points": here["points"],
            "error": None,
        }
        self.status.value = " · ".join([*here["notes"], f"{1000 * (time.perf_counter() - start):.0f} ms"])
        (self.build_ms if built else self.update_ms).append(1000 * (time.perf_counter() - start))
