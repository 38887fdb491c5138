"""``wb.study``: run a grid of compression points on any ``concurrent.futures`` executor, cached, into a tidy table.

The parent process checks the grid, reads finished points from the cache, submits the missing ones
(``run_point``), writes each finished row to the cache as it comes back (one JSON file per point,
written atomically), and returns one row per point in grid order. An interrupted study therefore
resumes where it stopped. A failed point is a row with ``status`` "error" and its ``error`` line;
errors are not cached, so a rerun tries them again.

Executors: ``None`` runs the points one after another in this process; any ``concurrent.futures.Executor``
works, e.g. ``ProcessPoolExecutor`` or a Dask cluster's ``distributed.Client(...).get_executor()``.
Each point runs on one torch thread, so the same seeds give the same accuracies on every executor.
When a worker process dies, Dask reschedules its point (``distributed.scheduler.allowed-failures``
times) and then reports ``KilledWorker`` for that point alone; a ``ProcessPoolExecutor`` breaks as a
whole (``BrokenProcessPool``), so every point it had not finished is an error row: rerun to resume.

Example:
    >>> import tempfile, workbench as wb
    >>> grid = {"model": "mlp", "criterion": ["magnitude", "bn_scale"], "sparsity": 0.5, "epochs": 0}
    >>> table = wb.study(grid, cache=tempfile.mkdtemp(), recipe={"latency_seconds": 0.01}, progress=False)
    >>> table["status"].tolist(), float(table["achieved_sparsity"].iloc[0]), table["error"].iloc[1][:35]
    (['ok', 'not applicable'], 0.5, 'bn_scale needs a BatchNorm right af')
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data import DATASETS, DatasetSplits
from ..zoo import checkpoint_info
from .grid import SETTINGS, StudyRecipe, check_grid, expand_grid, point_key
from .point import METRICS, DatasetRef, load_splits, one_line, run_point

DEFAULT_CACHE = "~/.cache/workbench/studies"
COLUMNS = (*SETTINGS, *METRICS)
COUNTS = ("params", "nonzeros", "flops", "bytes", "sparse_bytes", "latency_batch", "threads")
SHIPPED = Path(__file__).parent  # shipped studies: NAME.toml (the config) and NAME.csv (its table)


@dataclass(frozen=True)
class Job:
    key: str  # cache key
    point: dict  # settings, dataset included
    data: DatasetRef | DatasetSplits  # what the worker gets


@dataclass(frozen=True)
class StudyPlan:
    """A checked study: its recipe, the modules workers import, and one job per point in grid order."""

    recipe: StudyRecipe
    imports: tuple[str, ...]
    jobs: list[Job]


def _fingerprint(data: DatasetSplits) -> str:
    digest = hashlib.sha256()
    for split in (data.train, data.val, data.test):
        for tensor in split.tensors:
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]


def _dataset_of(model: str, data) -> tuple[dict, DatasetRef | DatasetSplits]:
    """Which splits a model is measured on (name, seed, fingerprint) and what travels to the worker (a reference
    when the registry has them)."""
    trained_on = checkpoint_info(model)["dataset"]
    if data is None or isinstance(data, str):
        splits = load_splits(trained_on if data is None else data, 0)
        payload = DatasetRef(splits.name)
    elif isinstance(data, DatasetSplits):
        splits = data
        same = data.name in DATASETS and _fingerprint(data) == _fingerprint(load_splits(data.name, data.seed))
        payload = DatasetRef(data.name, data.seed) if same else data
    else:
        raise ValueError(f"data must be None, a dataset name or a DatasetSplits, got {type(data).__name__}")
    if splits.name != trained_on:
        raise ValueError(
            f"model {model!r} was trained on {trained_on}, not {splits.name}; data=None measures each model on its own"
        )
    return {"name": splits.name, "seed": splits.seed, "fingerprint": _fingerprint(splits)}, payload


def plan_study(grid: dict, data=None, recipe: StudyRecipe | dict | None = None, imports=()) -> StudyPlan:
    """Check everything a study needs and key its points, without running any; a one-line ValueError otherwise."""
    imports = (imports,) if isinstance(imports, str) else tuple(imports)
    for module in imports:  # here too, so that names the modules register pass the checks
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"cannot import {module!r} (named in imports): {error}") from None
    axes = check_grid(grid)
    recipe = StudyRecipe.from_dict(recipe)
    versions = {"workbench": _version(), "torch": torch.__version__}
    datasets = {model: _dataset_of(model, data) for model in axes["model"]}
    jobs = []
    for settings in expand_grid(axes):
        identity, payload = datasets[settings["model"]]
        point = {"dataset": identity["name"], **settings}
        jobs.append(Job(point_key(point, recipe, identity, versions), point, payload))
    return StudyPlan(recipe, imports, jobs)


def _version() -> str:
    try:
        return version("workbench")
    except PackageNotFoundError:
        return "unknown"


def study(
    grid: dict,
    data=None,
    *,
    executor: Executor | None = None,
    cache: str | Path | None = DEFAULT_CACHE,
    recipe: StudyRecipe | dict | None = None,
    imports=(),
    progress: bool = True,
) -> pd.DataFrame:
    """Prune, fine-tune, shrink where structured, evaluate and measure every point of ``grid``; one row per point.

    Args:
        grid: axis → values: "model", "criterion", "sparsity" (required), "pattern" (default unstructured),
            "scope" (local), "schedule" ("one-shot" or "iterative"), "epochs" (fine-tuning, 1), "seed" (0).
            One-shot points prune "neuron"/"filter"/"head" patterns as whole dependency groups, then shrink them;
            iterative ones run ``wb.iterative_prune`` (``recipe.rounds`` rounds of per-layer masks, each fine-tuned
            ``epochs``), then shrink as far as per-layer masks allow.
        data: None (each model's own dataset), a dataset name, or a ``DatasetSplits`` the models were trained on.
        executor: where points run: None (here, one after another) or any ``concurrent.futures.Executor``.
        cache: folder of finished points (one JSON file each), or None for no cache.
        recipe: a ``StudyRecipe`` or a dict of its fields (fine-tuning and measuring).
        imports: modules each worker imports before its point (e.g. one that registers a criterion).
        progress: a ``tqdm.auto`` bar over points as they finish.

    Returns:
        A DataFrame with the settings columns (``SETTINGS``), then ``status`` ("ok", "not applicable", "error"),
        ``error`` and the metrics: test accuracy dense, right after pruning and after fine-tuning; sparsity reached;
        whether shrunk; parameters (all, nonzero); FLOPs per sample (dense, and skipping zero weights); bytes
        (dense file, bitmask + nonzeros); CPU latency per batch (``latency_batch`` inputs, ``threads`` threads) of the
        final model and of the dense one timed interleaved with it, and their ratio (``relative_latency``, which a
        busy machine disturbs less than either); seconds the point took. ``table.attrs["computed"]`` counts the
        points run now (the others came from the cache).
    """
    plan = plan_study(grid, data, recipe, imports)
    folder = Path(cache).expanduser() if cache is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    rows = {job.key: _cached_row(folder, job.key) for job in plan.jobs}
    todo = [job for job in plan.jobs if rows[job.key] is None]
    cached = len(plan.jobs) - len(todo)
    bar = tqdm(total=len(plan.jobs), initial=cached, desc="study", unit="point", disable=not progress)

    def finish(job: Job, row: dict) -> None:
        rows[job.key] = row
        if folder is not None and row["status"] != "error":
            _store(folder, job, row)
        bar.update()

    fields = dataclasses.asdict(plan.recipe)
    try:
        if executor is None:
            for job in todo:
                finish(job, run_point(job.point, fields, job.data, plan.imports))
        else:
            futures = {executor.submit(run_point, job.point, fields, job.data, plan.imports): job for job in todo}
            try:
                for future in as_completed(futures):
                    try:
                        row = future.result()
                    except Exception as error:  # the executor lost the point: a dead worker, a broken pool
                        row = {**futures[future].point, **dict.fromkeys(METRICS), "status": "error"}
                        row["error"] = one_line(error)
                    finish(futures[future], row)
            finally:
                for future in futures:
                    future.cancel()
    finally:
        bar.close()
    table = typed(pd.DataFrame([rows[job.key] for job in plan.jobs], columns=list(COLUMNS)))
    table.attrs["computed"] = len(todo)  # points run now, not read from the cache
    return table


def _cached_row(folder: Path | None, key: str) -> dict | None:
    if folder is None:
        return None
    try:
        return json.loads((folder / f"{key}.json").read_text())["row"]
    except (OSError, ValueError, KeyError, TypeError):  # missing, or cut short by a crash: compute it again
        return None


def _store(folder: Path, job: Job, row: dict) -> None:
    """Write the row atomically (a temporary file renamed into place), so a crash never leaves half a file."""
    temporary = folder / f".{job.key}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps({"key": job.key, "point": job.point, "row": row}))
    os.replace(temporary, folder / f"{job.key}.json")


def typed(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its column types fixed (as ``study`` returns it and ``load_study`` reads it back)."""
    table = table.copy()
    table["error"] = ["" if pd.isna(error) else str(error) for error in table["error"]]  # a CSV's empty cells: NaN
    table["shrunk"] = table["shrunk"].astype("boolean")
    for column in COUNTS:
        table[column] = table[column].astype("Int64")  # whole numbers, missing where a point did not run
    return table


def shipped_studies() -> tuple[str, ...]:
    """Names of the studies shipped with the package (``load_study(name)`` reads one)."""
    return tuple(sorted(path.stem for path in SHIPPED.glob("*.csv")))


def load_study(source: str | Path = "compression") -> pd.DataFrame:
    """A study table from a CSV file (``table.to_csv(path, index=False)``) or by a shipped study's name.

    Example:
        >>> table = load_study("compression")
        >>> sorted(table["model"].unique())
        ['cnn', 'cnn1d', 'mlp']
    """
    path = SHIPPED / f"{source}.csv" if str(source) in shipped_studies() else Path(source)
    if not path.is_file():
        raise ValueError(
            f"no study table at {path}; give a CSV file or a shipped study: {', '.join(shipped_studies()) or 'none'}"
        )
    table = pd.read_csv(path)
    if missing := [column for column in COLUMNS if column not in table]:
        raise ValueError(f"{path} is not a study table: it lacks the column(s) {', '.join(missing)}")
    return typed(table)
