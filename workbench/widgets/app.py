"""What every workbench app shares: a ``widget`` that Jupyter displays, and quiet changes from code.

Example:
    >>> import ipywidgets as widgets
    >>> class Echo(App):
    ...     def __init__(self):
    ...         self.slider, self.seen = widgets.IntSlider(), []
    ...         self.slider.observe(lambda change: self._syncing or self.seen.append(change["new"]), names="value")
    ...         self.widget = widgets.VBox([self.slider])
    >>> app = Echo()
    >>> app.slider.value = 2
    >>> app._set_quietly(app.slider, value=3)
    >>> app.seen, app.slider.value
    ([2], 3)
"""

from __future__ import annotations

import ipywidgets as widgets


class App:
    """Base of the apps: subclasses build ``self.widget``; observers skip changes made while ``_syncing``."""

    widget: widgets.Widget
    _syncing = False

    def _set_quietly(self, widget, **values) -> None:
        """Change widgets from code without triggering a rebuild or update."""
        self._syncing = True
        try:
            for key, value in values.items():
                setattr(widget, key, value)
        finally:
            self._syncing = False

    def _on_choice(self, change) -> None:
        """A dropdown changed: rebuild (subclasses define ``build`` and ``_show_error``); a choice that does
        not apply snaps back and the error is shown."""
        if self._syncing:
            return
        try:
            self.build()
        except ValueError as error:
            self._set_quietly(change["owner"], value=change["old"])
            self._show_error(error)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
