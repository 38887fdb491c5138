"""One point of a study, as a worker runs it: prune a shipped model, fine-tune, shrink where structured, measure.

``run_point`` is a top-level function of plain arguments, so any ``concurrent.futures`` executor can
ship it (a process pool or a Dask cluster pickles it by name). The dataset travels as a ``DatasetRef``
(name and split seed), loaded once per worker process.

Example:
    >>> point = {"model": "mlp", "criterion": "magnitude", "pattern": "unstructured", "scope": "local",
    ...          "schedule": "one-shot", "epochs": 0, "sparsity": 0.5, "seed": 0}
    >>> row = run_point(point, {"latency_seconds": 0.01}, DatasetRef("digits"))
    >>> row["status"], row["achieved_sparsity"], row["params"], row["nonzeros"], row["threads"]
    ('ok', 0.5, 50610, 25510, 1)
"""

from __future__ import annotations

import copy
import functools
import importlib
import io
import math
import time
from dataclasses import dataclass

import torch

from ..criteria import get_criterion
from ..data import DatasetSplits, load_dataset
from ..iterative import iterative_prune
from ..masks import bake, get_masks
from ..measure import compare_latency, effective_flops, flops, parameter_counts
from ..patterns import coupled_patterns
from ..pruning import prune
from ..reports import sparsity_report
from ..shrinking import shrink_with_report
from ..train import evaluate, fine_tune, seed_everything
from ..zoo import pretrained
from .grid import StudyRecipe

# What a point measures, in table order (the settings come first); ``study`` (run.py) says what each means.
METRICS = (
    "status",
    "error",
    "accuracy_dense",
    "accuracy_pruned",
    "accuracy_finetuned",
    "achieved_sparsity",
    "shrunk",
    "params",
    "nonzeros",
    "flops",
    "effective_flops",
    "bytes",
    "sparse_bytes",
    "latency_ms",
    "latency_dense_ms",
    "relative_latency",
    "latency_batch",
    "threads",
    "seconds",
)
THREADS = 1  # torch threads inside a point: bit-for-bit training on every executor, latency comparable across them


class NotApplicable(Exception):
    """The library refuses this combination (e.g. bn_scale on a model without BatchNorm): a row, not a failure."""


@dataclass(frozen=True)
class DatasetRef:
    """A registry dataset by name and split seed: cheap to pickle, loaded once per process by ``load``."""

    name: str
    seed: int = 0

    def load(self) -> DatasetSplits:
        return load_splits(self.name, self.seed)


@functools.lru_cache(maxsize=4)
def load_splits(name: str, seed: int = 0) -> DatasetSplits:
    """``load_dataset(name, seed)``, loaded once per process (points only read it)."""
    return load_dataset(name, seed=seed)


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_point(point: dict, recipe: dict, data: DatasetRef | DatasetSplits, imports: tuple[str, ...] = ()) -> dict:
    """The point's row: its settings and ``METRICS``; an exception becomes ``status`` "error" with its ``error`` line.

    Args:
        point: one settings dict of ``expand_grid``.
        recipe: the fields of a ``StudyRecipe``.
        data: a ``DatasetRef`` or the ``DatasetSplits`` itself.
        imports: modules to import first (e.g. ones that register a criterion the point uses).
    """
    start = time.perf_counter()
    row = {**point, **dict.fromkeys(METRICS), "status": "ok", "error": "", "threads": THREADS}
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        for module in imports:
            importlib.import_module(module)
        splits = data.load() if isinstance(data, DatasetRef) else data
        row.update(_measure(point, StudyRecipe.from_dict(recipe), splits))
    except NotApplicable as reason:
        row.update(status="not applicable", error=str(reason))
    except Exception as error:
        row.update(status="error", error=one_line(error))
    finally:
        torch.set_num_threads(threads)
    row["seconds"] = time.perf_counter() - start
    return row


def _prune(model, point: dict, recipe: StudyRecipe, data: DatasetSplits) -> tuple[float, float]:
    """Prune and fine-tune ``model`` in place as the point says; (accuracy right after pruning, sparsity reached)."""
    criterion = get_criterion(point["criterion"])
    options = {"criterion_options": {"seed": point["seed"]}} if "seed" in criterion.options else {}
    train_options = {"batch_size": recipe.batch_size, "weight_decay": recipe.weight_decay, "device": "cpu"}
    what = {"criterion": point["criterion"], "pattern": point["pattern"], "scope": point["scope"], **options}
    try:  # the library refuses combinations it cannot do before it changes the model
        if point["schedule"] == "iterative":
            history = iterative_prune(
                model,
                data,
                point["sparsity"],
                rounds=recipe.rounds,
                epochs=point["epochs"],
                lr=recipe.lr,
                split="test",
                seed=point["seed"],
                progress=False,
                train_options=train_options,
                **what,
            )
            return history.rounds[-1].accuracy_pruned, sparsity_report(model).sparsity
        coupled = point["pattern"] in coupled_patterns()  # whole dependency groups, so the shrink removes them all
        result = prune(model, point["sparsity"], data=data, coupled=coupled, **what)
    except ValueError as error:
        raise NotApplicable(one_line(error).removeprefix("ValueError: ")) from None
    pruned = evaluate(model, data.test)
    fine_tune(model, data, epochs=point["epochs"], lr=recipe.lr, seed=point["seed"], progress=False, **train_options)
    return pruned, result.sparsity


def _measure(point: dict, recipe: StudyRecipe, data: DatasetSplits) -> dict:
    dense_model = pretrained(point["model"])
    model = copy.deepcopy(dense_model)
    dense = evaluate(dense_model, data.test)
    seed_everything(point["seed"])
    pruned, achieved = _prune(model, point, recipe, data)
    tuned = evaluate(model, data.test)
    masks = get_masks(model)
    shrunk = False
    if point["pattern"] in coupled_patterns():
        final, report = shrink_with_report(model)
        shrunk = report.params_after < report.params_before
        masks = {}  # the small model is dense
    else:
        final = copy.deepcopy(model)
        bake(final)  # zeros in plain dense weights: what dense kernels compute and a plain file stores
    inputs = data.test.tensors[0]
    params, nonzeros = parameter_counts(final)
    timed = compare_latency(  # interleaved with the dense model, so their ratio holds on a busy machine
        {"final": final, "dense": dense_model},
        inputs[: recipe.latency_batch],
        device="cpu",
        threads=THREADS,
        min_run_time=recipe.latency_seconds,
    )
    return {
        "accuracy_dense": dense,
        "accuracy_pruned": pruned,
        "accuracy_finetuned": tuned,
        "achieved_sparsity": achieved,
        "shrunk": shrunk,
        "params": params,
        "nonzeros": nonzeros,
        "flops": flops(final, inputs[:1]),
        "effective_flops": effective_flops(final, inputs[:1], masks),
        **_storage(final.state_dict()),
        "latency_ms": timed["final"].median_ms,
        "latency_dense_ms": timed["dense"].median_ms,
        "relative_latency": timed["final"].median_ms / timed["dense"].median_ms,
        "latency_batch": timed["final"].batch,
    }


def _storage(state: dict[str, torch.Tensor]) -> dict:
    """Bytes of the state_dict saved densely (``torch.save``), and stored as a bitmask plus the nonzero values."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    sparse = sum(
        int(torch.count_nonzero(t)) * t.element_size() + math.ceil(t.numel() / 8) for t in state.values() if t.numel()
    )
    return {"bytes": buffer.getbuffer().nbytes, "sparse_bytes": sparse}
