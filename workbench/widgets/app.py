"""What every workbench app shares: controls run by a ``Controller``, a status line, and a ``widget`` to display.

Example:
    >>> import ipywidgets as widgets
    >>> class Doubler(App):
    ...     CHOICES = ("n",)
    ...     def __init__(self):
    ...         self.slider, self.status, self.state = widgets.IntSlider(value=1), widgets.HTML(), {}
    ...         self.controller = Controller({"n": self.slider}, show_error=self.show_error)
    ...         self.controller.register(self.show)
    ...         self.widget = widgets.VBox([self.slider, self.status])
    ...         self.controller.refresh()
    ...     def show(self, params):
    ...         if params["n"] > 50:
    ...             raise ValueError("too large")
    ...         self.state = {"double": 2 * params["n"], "error": None}
    >>> app = Doubler()
    >>> app.slider.value = 60
    >>> app.state, app.slider.value
    ({'double': 2, 'error': 'too large'}, 1)
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from .controller import Controller


class App:
    """Base of the apps: a subclass makes ``controller`` and registers its views on it, and builds ``status``,
    ``state`` and ``widget``. ``CHOICES`` names the controls an error message says are still shown."""

    CHOICES: tuple[str, ...] = ()
    controller: Controller
    status: widgets.HTML
    state: dict
    widget: widgets.Widget

    def show_error(self, error: ValueError) -> None:
        """Say in the status line why a change did not apply and what is still shown; ``state["error"]`` holds it."""
        self.state["error"] = str(error)
        shown = " · ".join(str(self.controller.params[name]) for name in self.CHOICES)
        self.status.value = f"<span style='color:#b00'>⚠ {html.escape(str(error))}</span> (still showing {shown})"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
