"""Code exercises for the notebooks: ``check(name, attempt)`` gives a verdict and a hint, never the answer.

Example:
    >>> import workbench.exercises as ex
    >>> ex.check("cubic_schedule", lambda t, s_i, s_f, t0, n, dt: None).passed
    False
"""

# each topic module registers its exercises in checker.EXERCISES on import
from . import basics, groups, layouts, lottery, norms, over_time, scoring, storage  # isort: split

from .checker import EXERCISES, STRICT_VARIABLE, Verdict, Wrong, check, exercise, hints
from .notebooks import exercise_cells, parse_solutions, solutions_path, solve, write_solved

__all__ = [
    "EXERCISES",
    "STRICT_VARIABLE",
    "Verdict",
    "Wrong",
    "basics",
    "check",
    "exercise",
    "exercise_cells",
    "groups",
    "hints",
    "layouts",
    "lottery",
    "norms",
    "over_time",
    "parse_solutions",
    "scoring",
    "solutions_path",
    "solve",
    "storage",
    "write_solved",
]
