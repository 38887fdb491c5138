"""Sparsity schedules: how sparse a model should be at training step t, one registry.

A schedule rises from ``initial`` to ``final`` between ``start`` and ``end``, pruning every ``every``
steps (the pruning steps are start, start + every, …, and ``end``); between pruning steps it holds its
value, before ``start`` it is ``initial`` and after ``end`` it is ``final``. The shape is a function of
the progress p ∈ [0, 1] of the last pruning step: one-shot, linear, exponential (density falls
geometrically), cubic (Zhu & Gupta 2017: s = s_f + (s_i − s_f)(1 − p)³) and cosine. ``register_schedule``
adds a shape to every place that offers schedules.

Example:
    >>> s = schedule("cubic", initial=0.0, final=0.9, start=0, end=1000, every=100)
    >>> [round(s(t), 4) for t in (0, 99, 100, 500, 1000, 5000)]
    [0.0, 0.0, 0.2439, 0.7875, 0.9, 0.9]
    >>> s.pruning_steps()[:3]
    [0, 100, 200]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

Shape = Callable[[float, float, float], float]  # (progress p, initial, final) -> sparsity


@dataclass(frozen=True)
class ScheduleKind:
    name: str
    shape: Shape
    description: str


SCHEDULES: dict[str, ScheduleKind] = {}


def register_schedule(name: str, description: str):
    """Decorator adding ``shape(p, initial, final) -> sparsity`` (p in [0, 1]) to ``SCHEDULES``."""

    def wrap(shape: Shape) -> Shape:
        SCHEDULES[name] = ScheduleKind(name, shape, description)
        return shape

    return wrap


@register_schedule("one_shot", "all at once at the first pruning step")
def _one_shot(p: float, initial: float, final: float) -> float:
    return final


@register_schedule("linear", "equal steps from initial to final")
def _linear(p: float, initial: float, final: float) -> float:
    return initial + (final - initial) * p


@register_schedule("exponential", "the kept fraction shrinks by the same factor at every pruning step")
def _exponential(p: float, initial: float, final: float) -> float:
    return 1 - (1 - initial) * ((1 - final) / (1 - initial)) ** p


@register_schedule("cubic", "Zhu & Gupta 2017: fast at first, gentle near the end")
def _cubic(p: float, initial: float, final: float) -> float:
    return final + (initial - final) * (1 - p) ** 3


@register_schedule("cosine", "slow, fast, slow: half a cosine wave")
def _cosine(p: float, initial: float, final: float) -> float:
    return initial + (final - initial) * (1 - math.cos(math.pi * p)) / 2


def _fraction(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{what} must be a number in [0, 1) (a fraction of weights pruned), got {value!r}")
    return float(value)


def _step(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{what} must be a whole step number >= 0, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Schedule:
    """``s(step) -> sparsity``; build it with ``schedule(kind, ...)``, which checks the arguments."""

    kind: str
    initial: float
    final: float
    start: int
    end: int
    every: int

    def progress(self, step: int) -> float | None:
        """Progress in [0, 1] of the last pruning step at or before ``step`` (None before ``start``)."""
        if step < self.start:
            return None
        if step >= self.end or self.end == self.start:
            return 1.0
        last = self.start + (step - self.start) // self.every * self.every
        return (last - self.start) / (self.end - self.start)

    def __call__(self, step: int) -> float:
        p = self.progress(_step(step, "step"))
        if p is None:
            return self.initial
        return SCHEDULES[self.kind].shape(p, self.initial, self.final)

    def pruning_steps(self) -> list[int]:
        """The steps at which the target sparsity changes: start, start + every, …, end."""
        steps = list(range(self.start, self.end + 1, self.every))
        return steps if steps[-1] == self.end else [*steps, self.end]

    def is_pruning_step(self, step: int) -> bool:
        return step == self.end or (self.start <= step < self.end and (step - self.start) % self.every == 0)

    def plot(self, ax=None, steps: int | None = None):
        """The schedule as a step curve with its pruning steps marked; returns the matplotlib Figure."""
        from .viz.schedules import plot_schedules

        return plot_schedules({self.kind: self}, ax=ax, steps=steps)


def schedule(
    kind: str = "cubic", initial: float = 0.0, final: float = 0.9, start: int = 0, end: int = 1000, every: int = 100
) -> Schedule:
    """A sparsity schedule: ``kind`` from ``SCHEDULES``; ValueError (naming what is allowed) on bad arguments."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
    initial, final = _fraction(initial, "initial"), _fraction(final, "final")
    start, end, every = _step(start, "start"), _step(end, "end"), _step(every, "every")
    if end < start:
        raise ValueError(f"end ({end}) must not come before start ({start})")
    if every == 0:
        raise ValueError("every must be at least 1 (prune every that many steps)")
    if final < initial:
        raise ValueError(f"final ({final}) must be at least initial ({initial}): pruning never revives weights")
    return Schedule(kind, initial, final, start, end, every)
