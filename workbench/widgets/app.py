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


def figure_image() -> widgets.Image:
    """An Image for a live figure's PNG, never wider than the output area."""
    return widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))


class App:
    """Base of the apps: a subclass makes ``controller`` and registers its views on it, and builds ``status``,
    ``state``, ``image`` (a ``figure_image``) and ``widget``. ``CHOICES`` names the controls an error message says
    are still shown."""

    CHOICES: tuple[str, ...] = ()
    controller: Controller
    status: widgets.HTML
    image: widgets.Image
    state: dict
    widget: widgets.Widget

    def show_png(self, png: bytes) -> None:
        """Show a figure's PNG at its own width: stretched to the output area, its text would turn soft."""
        self.image.layout.width = f"{int.from_bytes(png[16:20], 'big')}px"  # the width in the PNG's header
        self.image.value = png

    def show_error(self, error: Exception) -> None:
        """Say in the status line why a change did not apply and what is still shown; ``state["error"]`` holds it.
        A refusal (ValueError) is its message; anything else, such as a stub's NotImplementedError, is named."""
        named = f"{type(error).__name__}: {error}".removesuffix(": ")
        self.state["error"] = str(error) if isinstance(error, ValueError) else named
        shown = " · ".join(str(self.controller.params[name]) for name in self.CHOICES)
        message = html.escape(self.state["error"])
        self.status.value = f"<span style='color:#b00'>⚠ {message}</span> (still showing {shown})"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
