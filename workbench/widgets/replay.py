"""The replay app: pick a method and a schedule, press play, watch a run prune while it trains.

Each (method, schedule) choice records one gradual-pruning run of the shipped mlp on digits (``record_gradual``; kept
for a quick return), then the ``Play`` button and the step slider only look frames up and redraw the changing
artists: the layer's mask, its weight histogram and the marker on the timeline. Runs recorded elsewhere (a lottery
ticket's rounds: ``LotteryHistory.recording()``) join the method list through ``recordings``; they have no
schedule to choose.

Example:
    >>> app = ReplayApp(epochs=2)
    >>> app.slider.value = len(app.recording.frames) - 1  # the last frame: what a user's drag does
    >>> round(app.state["sparsity"], 2), app.state["schedule"], app.state["method"]
    (0.9, 'cubic', 'magnitude')
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping

import ipywidgets as widgets

from ..data import load_dataset
from ..recording import Recording, record_gradual
from ..schedules import SCHEDULES, schedule
from ..viz.replay import ReplayFigure
from ..zoo import pretrained
from .app import App, figure_image
from .controller import Controller

KEPT_RUNS = 6  # recorded runs kept for a quick return
# Methods of pruning while training: the criterion the GradualPruner ranks by, its pattern, and whether what a
# pruning step removes fades out until the next one (progressive) or goes at once.
METHODS = {
    "magnitude": {"criterion": "magnitude"},
    "movement": {"criterion": "movement"},
    "snip_momentum": {"criterion": "snip_momentum"},
    "magnitude, neurons": {"criterion": "magnitude", "pattern": "neuron"},
    "magnitude, neurons, progressive": {"criterion": "magnitude", "pattern": "neuron", "progressive": True},
}


class ReplayApp(App):
    """Method and schedule dropdowns, play button and step slider over recorded gradual-pruning runs of the mlp.

    Args:
        final: the sparsity every schedule ends at.
        epochs: training epochs of each recorded run (the schedule ends at three quarters of its steps).
        layer: the weight whose mask and histogram are shown (a recorded run without it shows its first layer).
        recordings: name → a recorded run, offered after the methods (the schedule dropdown is off for them).
        method: the run shown first.
    """

    CHOICES = ("method", "schedule")

    def __init__(
        self,
        final: float = 0.9,
        epochs: int = 4,
        layer: str = "fc1.weight",
        recordings: Mapping[str, Recording] | None = None,
        method: str = "magnitude",
    ):
        self.final, self.epochs, self.layer = final, epochs, layer
        self.recorded = dict(recordings or {})
        if clash := set(self.recorded) & set(METHODS):
            raise ValueError(f"recordings {sorted(clash)} share a name with a method; choose other names")
        if method not in (*METHODS, *self.recorded):
            raise ValueError(f"method {method!r} is neither a method nor a recording: {[*METHODS, *self.recorded]}")
        self.data = load_dataset("digits")
        self.runs: OrderedDict[tuple[str, str], tuple[Recording, ReplayFigure]] = OrderedDict()
        self.method = widgets.Dropdown(
            options=(*METHODS, *self.recorded),
            value=method,
            description="method",
            layout=widgets.Layout(width="max-content", min_width="18em"),  # recorded runs have long names
        )
        self.schedule = widgets.Dropdown(options=tuple(SCHEDULES), value="cubic", description="schedule")
        self.slider = widgets.IntSlider(value=0, min=0, max=1, description="frame", continuous_update=True)
        self.play = widgets.Play(value=0, min=0, max=1, interval=150, description="play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.image = figure_image()
        self.status = widgets.HTML()
        self.update_ms: list[float] = []
        self.state: dict = {}
        controls = {"method": self.method, "schedule": self.schedule, "frame": self.slider}
        self.controller = Controller(controls, show_error=self.show_error)
        self.controller.register(self.show)
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.method, self.schedule]),
                widgets.HBox([self.play, self.slider]),
                self.status,
                self.image,
            ]
        )
        self.controller.refresh()

    def _run(self, method: str, kind: str) -> tuple[Recording, ReplayFigure]:
        key = (method, "recorded" if method in self.recorded else kind)
        if key in self.runs:
            self.runs.move_to_end(key)
            return self.runs[key]
        if method in self.recorded:
            recording = self.recorded[method]
            layer = self.layer if self.layer in recording.layers else recording.layers[0]
            self.runs[key] = (recording, ReplayFigure(recording, layer))
            return self.runs[key]
        steps = self.epochs * -(-len(self.data.train) // 64)  # wb.train's default batch of 64
        every = max(2, steps // 20)
        plan = schedule(kind, 0.0, self.final, 0, int(0.75 * steps), every)
        options = dict(METHODS[method])
        if options.pop("progressive", False):
            options["progressive"] = every - 1
        recording = record_gradual(
            pretrained("mlp"),
            self.data,
            plan,
            epochs=self.epochs,
            frame_every=max(1, steps // 40),
            method=f"{method} · {kind}",
            **options,
        )
        self.runs[key] = (recording, ReplayFigure(recording, self.layer))
        if len(self.runs) > KEPT_RUNS:
            self.runs.popitem(last=False)
        return self.runs[key]

    @property
    def recording(self) -> Recording:
        method = self.controller.params["method"]
        return self.runs[(method, "recorded" if method in self.recorded else self.controller.params["schedule"])][0]

    def show(self, params: dict) -> None:
        """Look the frame up in the chosen run (recording it first if new) and redraw what changed."""
        start = time.perf_counter()
        recording, view = self._run(params["method"], params["schedule"])
        self.schedule.disabled = params["method"] in self.recorded
        last = len(recording.frames) - 1
        if self.slider.max != last:
            self.controller.set_quietly("frame", max=last, value=min(params["frame"], last))
            self.play.max = last
        index = self.controller.params["frame"]
        frame = recording.frames[index]
        view.update(frame)
        self.show_png(view.png())
        elapsed = 1000 * (time.perf_counter() - start)
        self.update_ms.append(elapsed)
        self.state = {
            "method": params["method"],
            "schedule": "recorded" if self.schedule.disabled else params["schedule"],
            "frame": index,
            "step": frame.step,
            "sparsity": frame.sparsity,
            "accuracy": frame.accuracy,
            "error": None,
        }
        trained = "trained while pruning" if recording.unit == "training step" else "after this round's training"
        self.status.value = (
            f"{recording.unit.split()[-1]} <b>{frame.step}</b> · sparsity <b>{frame.sparsity:.1%}</b> · val accuracy "
            f"<b>{frame.accuracy:.1%}</b> ({trained}) · {elapsed:.0f} ms"
        )
