"""The controller the apps are built on: it owns the controls and the parameters they set; views register
``update(params)`` callbacks.

A change of a control (a user's drag or pick, or ``control.value = ...`` from code) gives new parameters, and
the controller calls every view with them, in the order they registered. A view that cannot show the new
parameters raises ValueError before it changes anything (a choice that does not apply, a sparsity a pattern cannot
reach); the controller then keeps the old parameters, snaps the control back without calling the views again,
and hands the error to ``show_error``, or, for an app with nowhere to show it, raises it to whoever made the change.
A NotImplementedError is handled the same way: a learner's criterion whose body is still a stub.

Changes are applied one at a time: JupyterLab may deliver a user's drag on a kernel thread of its own while a
cell sets a control on the main thread, so a lock serializes them, and each change draws the controls' values as
they are when its turn comes (a later change never ends up drawn under an earlier one).

Example:
    >>> import ipywidgets as widgets
    >>> def view(params):
    ...     if params["n"] > 5:
    ...         raise ValueError("n must be at most 5")
    ...     shown.append(params["n"])
    >>> shown, errors = [], []
    >>> controller = Controller({"n": widgets.IntSlider(value=1)}, show_error=errors.append)
    >>> controller.register(view)
    >>> controller.controls["n"].value = 2  # what a user's drag does
    >>> controller.controls["n"].value = 9
    >>> shown, controller.params, controller.controls["n"].value, str(errors[0])
    ([2], {'n': 2}, 2, 'n must be at most 5')
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from threading import RLock

import ipywidgets as widgets


class Controller:
    """Owns ``controls`` (name → value widget) and ``params`` (name → the value shown); calls the views on change."""

    def __init__(
        self, controls: dict[str, widgets.ValueWidget], show_error: Callable[[ValueError], None] | None = None
    ):
        self.controls = dict(controls)
        self.params = {name: control.value for name, control in self.controls.items()}
        self.views: list[Callable[[dict], None]] = []
        self.show_error = show_error
        self._quiet = False
        self._lock = RLock()
        for name, control in self.controls.items():
            control.observe(partial(self._on_change, name), names="value")

    def register(self, view: Callable[[dict], None]) -> None:
        """Call ``view(params)`` on every change of a control (and on ``refresh``)."""
        self.views.append(view)

    def refresh(self) -> None:
        """Call the views with the current parameters: an app's first drawing."""
        for view in self.views:
            view(self.params)

    def set(self, values: dict) -> None:
        """Set several controls from code, then call the views once with all the new values."""
        with self._lock:
            old = {name: self.params[name] for name in values}
            self._set_controls(values)
            self._apply({name: self.controls[name].value for name in values}, old)

    def set_quietly(self, name: str, **attributes) -> None:
        """Change a control's attributes (value, options, disabled, …) without calling the views; ``params``
        follows its value."""
        with self._lock, self._quietly():
            for key, value in attributes.items():
                setattr(self.controls[name], key, value)
            self.params[name] = self.controls[name].value

    def _set_controls(self, values: dict) -> None:
        """Set control values without calling the views or touching ``params``."""
        with self._quietly():
            for name, value in values.items():
                self.controls[name].value = value

    @contextmanager
    def _quietly(self):
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _on_change(self, name: str, change) -> None:
        with self._lock:  # re-entrant: the quiet sets of this thread's own change come back here, and stop
            if self._quiet:
                return
            now = self.controls[name].value  # a change made while an earlier one was drawn is drawn as it is now
            if now != self.params[name]:
                self._apply({name: now}, {name: self.params[name]})

    def _apply(self, new: dict, old: dict) -> None:
        previous = self.params
        self.params = {**previous, **new}
        try:
            for view in self.views:
                view(self.params)
        except (ValueError, NotImplementedError) as error:
            self._set_controls(old)
            self.params = previous
            if self.show_error is None:
                raise
            self.show_error(error)
