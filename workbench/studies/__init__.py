"""Compression studies: grids of prune → fine-tune → shrink → measure points on any executor, as tidy tables.

``study`` (``wb.study``) runs a grid and returns a pandas DataFrame, one row per point; ``load_study``
(``wb.load_study``) reads a saved or shipped table (``compression``: every criterion × unstructured/filter
× 6 sparsities × 2 seeds on the digits MLP and CNN and the MNIST-1D CNN, from ``compression.toml``);
``best_methods``, ``seed_means`` and ``pareto_front`` read a table; ``workbench.viz.study`` draws one.

Example:
    >>> table = load_study("compression")
    >>> set(table["pattern"]) == {"unstructured", "filter"}
    True
"""

from .grid import AXES, SCHEDULES, SETTINGS, StudyConfig, StudyRecipe, check_grid, expand_grid, read_config
from .point import METRICS, DatasetRef, run_point
from .run import DEFAULT_CACHE, StudyPlan, load_study, plan_study, shipped_studies, study
from .summary import best_methods, pareto_front, seed_means

__all__ = [
    "AXES",
    "DEFAULT_CACHE",
    "METRICS",
    "SCHEDULES",
    "SETTINGS",
    "DatasetRef",
    "StudyConfig",
    "StudyPlan",
    "StudyRecipe",
    "best_methods",
    "check_grid",
    "expand_grid",
    "load_study",
    "pareto_front",
    "plan_study",
    "read_config",
    "run_point",
    "seed_means",
    "shipped_studies",
    "study",
]
