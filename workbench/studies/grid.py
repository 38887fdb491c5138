"""A study's grid and recipe: checked against the registries before any work, expanded into points, keyed for the cache.

Example:
    >>> points = expand_grid(check_grid({"model": "mlp", "criterion": ["magnitude", "random"], "sparsity": [0.5, 0.9]}))
    >>> len(points), points[0]["pattern"], points[0]["epochs"], [p["sparsity"] for p in points]
    (4, 'unstructured', 1, [0.5, 0.9, 0.5, 0.9])
    >>> check_grid({"model": ["mlp"], "criterion": ["magnitud"], "sparsity": [0.5]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown criterion 'magnitud'; choose one of magnitude, l1, l2, random, ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path

from ..criteria import get_criterion
from ..patterns import parse_pattern
from ..reports import SCOPES, check_choice, check_sparsity
from ..zoo import checkpoint_info

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

SCHEDULES = ("one-shot", "iterative")  # prune once then fine-tune; or wb.iterative_prune's rounds of both
# Every axis in the order points are expanded (the last varies fastest); None: the axis must be given.
AXES: dict[str, tuple | None] = {
    "model": None,
    "criterion": None,
    "pattern": ("unstructured",),
    "scope": ("local",),
    "schedule": ("one-shot",),
    "epochs": (1,),  # fine-tuning epochs (per round when iterative)
    "sparsity": None,
    "seed": (0,),
}
SETTINGS = ("model", "dataset", *(axis for axis in AXES if axis != "model"))  # a table's settings columns


@dataclass(frozen=True)
class StudyRecipe:
    """How every point fine-tunes and measures (the same for all points; part of each point's cache key)."""

    lr: float = 5e-4  # fine-tuning learning rate (AdamW, cosine-decayed), as wb.fine_tune
    batch_size: int = 64  # fine-tuning batch size
    weight_decay: float = 1e-4
    rounds: int = 3  # prune → fine-tune rounds of the "iterative" schedule
    latency_batch: int = 32  # test inputs per timed forward pass
    latency_seconds: float = 0.1  # seconds of timing per model (torch.utils.benchmark, one thread): the pruned
    # model and, interleaved with it, the dense one

    @classmethod
    def from_dict(cls, values: dict | StudyRecipe | None) -> StudyRecipe:
        """A checked recipe from a dict of its fields (None: the defaults)."""
        if isinstance(values, StudyRecipe) or values is None:
            values = dataclasses.asdict(values or cls())
        if not isinstance(values, dict):
            raise ValueError(f"recipe must be a StudyRecipe or a dict of its fields, got {type(values).__name__}")
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        if unknown := sorted(set(values) - set(fields)):
            raise ValueError(f"recipe takes no {unknown[0]!r}; its fields are: {', '.join(fields)}")
        for name, value in values.items():
            wanted = int if fields[name] == "int" else numbers.Real
            if isinstance(value, bool) or not isinstance(value, wanted) or not value > 0:
                raise ValueError(f"recipe {name} must be a positive {fields[name]}, got {value!r}")
        return cls(**values)


def _values(name: str, given) -> tuple:
    values = tuple(given) if isinstance(given, (list, tuple)) else (given,)
    if not values:
        raise ValueError(f"grid axis {name!r} is empty; give at least one value")
    return values


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"grid axis {name!r} takes integers >= 0, got {value!r}")
    return int(value)


def _check_model(name: str) -> str:
    checkpoint_info(name)  # a known model with a shipped checkpoint
    return name


def _check_pattern(pattern: str) -> str:
    parse_pattern(pattern)
    return pattern.strip().lower()


def _check_schedule(schedule: str) -> str:
    check_choice("schedule", schedule, SCHEDULES)
    return schedule


CHECKS = {
    "model": _check_model,
    "criterion": lambda name: get_criterion(name).name,
    "pattern": _check_pattern,
    "scope": lambda scope: check_choice("scope", scope, SCOPES) or scope,
    "schedule": _check_schedule,
    "epochs": lambda epochs: _check_count("epochs", epochs),
    "sparsity": check_sparsity,
    "seed": lambda seed: _check_count("seed", seed),
}


def check_grid(grid: dict) -> dict[str, tuple]:
    """Every axis's checked values (defaults filled in); a one-line ValueError for an unknown axis or name, an empty
    axis, a repeated value or a sparsity outside [0, 1). A single value may stand for a one-value axis."""
    if not isinstance(grid, dict):
        raise ValueError(f"grid must be a dict of axis → values, e.g. {{'model': ['mlp'], ...}}, got {grid!r}")
    if unknown := sorted(set(grid) - set(AXES)):
        raise ValueError(f"unknown grid axis {unknown[0]!r}; the axes are: {', '.join(AXES)}")
    axes = {}
    for name, default in AXES.items():
        if name not in grid and default is None:
            raise ValueError(f"grid needs the axis {name!r}; required: model, criterion, sparsity")
        values = tuple(CHECKS[name](value) for value in _values(name, grid.get(name, default)))
        if len(set(values)) < len(values):
            repeated = next(value for value in values if values.count(value) > 1)
            raise ValueError(f"grid axis {name!r} repeats {repeated!r}; give each value once")
        axes[name] = values
    return axes


def expand_grid(axes: dict[str, tuple]) -> list[dict]:
    """One settings dict per point of the checked grid, in axis order (the last axis varies fastest)."""
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def point_key(point: dict, recipe: StudyRecipe, data: dict, versions: dict) -> str:
    """The cache key of a point: a hash of its settings, the recipe, the dataset and the library versions."""
    text = json.dumps(
        {"point": point, "recipe": dataclasses.asdict(recipe), "data": data, "versions": versions}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class StudyConfig:
    """A study as a config file states it (``read_config``)."""

    grid: dict
    recipe: StudyRecipe
    data: str | None = None  # one dataset name for every model (None: each model's own)
    imports: tuple[str, ...] = ()  # modules every worker imports first (e.g. ones that register criteria)


def read_config(path) -> StudyConfig:
    """A study config from a TOML or JSON file: a ``[grid]`` table; optionally ``[recipe]``, ``data``, ``imports``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read study config {path}: {error.strerror or error}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ValueError(f"study config {path} is not valid {kind}: {error}") from None
    if not isinstance(raw, dict) or "grid" not in raw:
        raise ValueError(f"study config {path} needs a [grid] table, e.g. model = ['mlp']")
    if unknown := sorted(set(raw) - {"grid", "recipe", "data", "imports"}):
        raise ValueError(f"study config {path} has no section {unknown[0]!r}; it takes: grid, recipe, data, imports")
    data, imports = raw.get("data"), raw.get("imports", [])
    if data is not None and not isinstance(data, str):
        raise ValueError(f"study config {path}: data is one dataset name, got {data!r}")
    if not isinstance(imports, list) or not all(isinstance(name, str) for name in imports):
        raise ValueError(f"study config {path}: imports is a list of module names, got {imports!r}")
    return StudyConfig(raw["grid"], StudyRecipe.from_dict(raw.get("recipe")), data, tuple(imports))
