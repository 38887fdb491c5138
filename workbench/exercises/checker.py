"""The exercise checker: a registry of exercises, ``check(name, attempt)`` and the verdict it returns.

An exercise is a function ``(attempt, **context) -> str`` that runs the learner's attempt on its own cases,
compares with a reference it computes itself (with the library), and either returns what was shown (a
passing message) or raises ``Wrong`` saying what is wrong, never what the answer is. ``check`` turns any
exception of the attempt into a "not yet" verdict, so a notebook never stops at a check cell; with the
environment variable ``WORKBENCH_EXERCISES=strict`` a failed verdict raises ``AssertionError`` instead (tests).

Example:
    >>> @exercise("double", hints=("multiply by 2",))
    ... def _check_double(attempt):
    ...     if call(attempt, 3, case="case 1 (x = 3)") != 6:
    ...         raise Wrong("in case 1 (x = 3) your function does not return twice its input")
    ...     return "doubles its input"
    >>> check("double", lambda x: 2 * x)
    ✓ double: doubles its input
    >>> check("double", lambda x: x + 2).passed
    False
    >>> del EXERCISES["double"]
"""

from __future__ import annotations

import html
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

STRICT_VARIABLE = "WORKBENCH_EXERCISES"  # = "strict": a failed verdict raises AssertionError


class Wrong(Exception):
    """What is wrong with an attempt (shown to the learner): a message, and optionally a hint for this mistake."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


class NotImplementedYet(Wrong):
    """The attempt is still the stub (it raises NotImplementedError or the answer is None)."""


@dataclass(frozen=True)
class Exercise:
    name: str
    check: Callable[..., str]  # (attempt, **context) -> passing message; raises Wrong
    hints: tuple[str, ...]


EXERCISES: dict[str, Exercise] = {}


def exercise(name: str, hints: tuple[str, ...]):
    """Decorator registering ``fn(attempt, **context) -> message`` as the check of exercise ``name``."""
    if not hints:
        raise ValueError(f"exercise {name!r} needs at least one hint")

    def wrap(fn):
        EXERCISES[name] = Exercise(name, fn, tuple(hints))
        return fn

    return wrap


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``passed``, a ``message`` and (when not passed) a ``hint``."""

    name: str
    passed: bool
    message: str
    hint: str = ""
    more_hints: bool = False  # hints(name) has others

    def _more(self) -> str:
        return f" (more: workbench.exercises.hints({self.name!r}))" if self.more_hints else ""

    def __repr__(self) -> str:
        if self.passed:
            return f"✓ {self.name}: {self.message}"
        return f"✗ {self.name}, not yet: {self.message}\n  hint: {self.hint}{self._more()}"

    def _repr_html_(self) -> str:
        color, mark, title = ("#1a7f37", "✓", "correct") if self.passed else ("#9a6700", "✗", "not yet")
        hint = f"<b>hint:</b> {html.escape(self.hint)}<i>{html.escape(self._more())}</i>" if self.hint else ""
        hint = f"<div style='margin-top:4px'>{hint}</div>" if hint else ""
        return (
            f"<div style='border-left:4px solid {color};padding:4px 10px;margin:4px 0'>"
            f"<b style='color:{color}'>{mark} {html.escape(self.name)}: {title}</b>"
            f"<div>{html.escape(self.message)}</div>{hint}</div>"
        )


def strict() -> bool:
    return os.environ.get(STRICT_VARIABLE, "") == "strict"


def check(name: str, attempt, **context) -> Verdict:
    """Run exercise ``name`` on ``attempt``; a Verdict (in strict mode, AssertionError when it fails)."""
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; the exercises are: {', '.join(sorted(EXERCISES))}")
    entry = EXERCISES[name]
    try:
        if attempt is None:
            raise NotImplementedYet("no answer yet: replace None in the exercise cell and run it again")
        verdict = Verdict(name, True, entry.check(attempt, **context))
    except Wrong as wrong:
        hint = wrong.hint or entry.hints[0]
        verdict = Verdict(name, False, wrong.message, hint, more_hints=any(h != hint for h in entry.hints))
    if strict() and not verdict.passed:
        raise AssertionError(repr(verdict))
    return verdict


def hints(name: str) -> tuple[str, ...]:
    """All hints of exercise ``name``, from the gentlest."""
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; the exercises are: {', '.join(sorted(EXERCISES))}")
    return EXERCISES[name].hints


def call(attempt, *args, case: str, **kwargs):
    """``attempt(*args, **kwargs)``, with any exception it raises turned into a ``Wrong`` naming the case."""
    if not callable(attempt):
        raise Wrong(f"expected a function, got {type(attempt).__name__}: pass the function itself, without ()")
    try:
        return attempt(*args, **kwargs)
    except NotImplementedError:
        raise NotImplementedYet("the function still raises NotImplementedError: write its body") from None
    except Exception as error:
        raise Wrong(f"in {case} your function raised {type(error).__name__}: {error}") from None


def as_bool_mask(value, shape: tuple[int, ...], case: str) -> torch.Tensor:
    """``value`` if it is a bool tensor of ``shape``; otherwise a ``Wrong`` saying what it is instead."""
    if not isinstance(value, torch.Tensor):
        raise Wrong(f"in {case} your function returned a {type(value).__name__}, not a torch.Tensor")
    if value.dtype != torch.bool:
        raise Wrong(
            f"in {case} your mask has dtype {value.dtype}, not torch.bool",
            hint="a comparison such as scores > threshold gives a bool tensor",
        )
    if tuple(value.shape) != tuple(shape):
        shape_text = "×".join(map(str, shape))
        raise Wrong(f"in {case} your mask has shape {tuple(value.shape)}; a mask has the weight's shape ({shape_text})")
    return value


def as_number(value, what: str) -> float:
    """``value`` as a float if it is a real number (not a bool); otherwise a ``Wrong``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise Wrong(f"{what} should be a number, got {type(value).__name__} {value!r}")
    return float(value)
