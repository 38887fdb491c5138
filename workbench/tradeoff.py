"""What pruning buys, point by point: accuracy, measured latency and file size across sparsity, per pattern × mode.

``tradeoff`` prunes a fresh copy of the model for every pattern and sparsity, fine-tunes it (the accuracy says
whether it was), runs it every way ``modes`` asks on every device (``measure.compare_modes``: each mode timed
interleaved with the dense model, so ``relative_latency`` stays comparable between points measured at different
moments) and sizes the file each mode ships as:

* ``"dense"``: ``torch.save`` of the plain weights, zeros stored;
* ``"masked"``: ``torch.save`` of the masked model's state_dict (the dense originals and the masks);
* ``"csr"`` / ``"bsr"`` / ``"semi_structured"``: the compact file of ``wb.save_sparse`` (the sparse layouts are
  built from it when the model is loaded);
* ``"shrunk"``: ``torch.save`` of the shrunk, smaller dense model.

The table is tidy (one row per model × pattern × sparsity × mode × device), ready for ``viz.tradeoff`` and pandas.
``pareto_points`` marks the points no other point beats on both cost and accuracy.

Example:
    >>> table = tradeoff("mlp", patterns=("unstructured",), sparsities=(0.0, 0.9), modes=("dense", "csr"),
    ...                  fine_tune_epochs=0, min_run_time=0.01)
    >>> table[["sparsity", "mode", "available"]].values.tolist()  # no pruned layer to store sparse at 0
    [[0.0, 'dense', True], [0.0, 'csr', False], [0.9, 'dense', True], [0.9, 'csr', True]]
    >>> files = table.set_index(["sparsity", "mode"])["file_share"]
    >>> float(files[0.0, "dense"]), bool(files[0.9, "csr"] < 0.15)  # the sparse file at 90 % sparsity
    (1.0, True)
"""

from __future__ import annotations

import copy
from importlib import resources

import pandas as pd
import torch
from torch import nn

from .data import load_dataset
from .devices import resolve_device
from .execution import MODES, build_mode
from .masks import bake
from .measure import compare_modes
from .patterns import parse_pattern
from .pruning import prune
from .reports import sparsity_report
from .storage import encode_model, file_bytes
from .storage_report import saved_size
from .structure.saving import registry_name
from .studies.summary import pareto_front
from .train import evaluate, fine_tune, seed_everything
from .zoo import checkpoint_info, pretrained

PATTERNS = ("unstructured", "2:4", "filter")
SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
TRADEOFF_MODES = ("dense", "masked", "csr", "semi_structured", "shrunk")
FILES = {
    "dense": "torch.save dense",
    "masked": "torch.save masked",
    "csr": "sparse file",
    "bsr": "sparse file",
    "semi_structured": "sparse file",
    "shrunk": "torch.save shrunk",
}
COLUMNS = (
    "model",
    "pattern",
    "sparsity",
    "mode",
    "device",
    "available",
    "note",
    "achieved_sparsity",
    "accuracy",
    "accuracy_pruned",
    "fine_tune_epochs",
    "latency_ms",
    "latency_dense_ms",
    "relative_latency",
    "batch",
    "threads",
    "file",
    "file_bytes",
    "file_share",
    "memory_bytes",
    "max_abs_diff",
)


def _devices(devices) -> tuple[str, ...]:
    """``"auto"``: the CPU, and the GPU when there is one; otherwise the devices named."""
    if devices == "auto":
        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    named = (devices,) if isinstance(devices, str) else tuple(devices)
    for device in named:
        resolve_device(device)  # a bad name or a missing GPU is refused here, before any work
    return named


def _file_sizes(model: nn.Module, modes, inputs) -> dict[str, int | None]:
    """Bytes of the file each mode ships as (None where the mode has no file here, e.g. shrunk of unstructured)."""
    plain = copy.deepcopy(model)
    bake(plain)
    sizes = {"dense": saved_size(plain.state_dict()), "masked": saved_size(model.state_dict())}
    if any(FILES[mode] == "sparse file" for mode in modes):
        sparse = len(file_bytes(model, encode_model(model, "auto"), "auto", "exact")[0])
        sizes |= {mode: sparse for mode in ("csr", "bsr", "semi_structured")}
    if "shrunk" in modes:
        built = build_mode(model, "shrunk", inputs)
        sizes["shrunk"] = saved_size(built.model.state_dict()) if built.available else None
    return sizes


def _points(patterns, sparsities) -> list[tuple[str, float]]:
    """(pattern, sparsity) pairs: N:M patterns fix their sparsity, so they get 0 and that one only."""
    points = []
    for pattern in patterns:
        fixed = parse_pattern(pattern).fixed_sparsity
        grid = (0.0, fixed) if fixed is not None else sparsities
        points += [(pattern, float(sparsity)) for sparsity in grid]
    return points


def tradeoff(
    model: str | nn.Module = "mlp",
    data=None,
    *,
    patterns=PATTERNS,
    sparsities=SPARSITIES,
    modes=TRADEOFF_MODES,
    criterion: str = "magnitude",
    exclude=(),
    fine_tune_epochs: int = 3,
    fine_tune_lr: float = 2e-3,
    devices="auto",
    batch: int = 64,
    min_run_time: float = 0.1,
    rounds: int = 20,
    threads: int | None = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy, latency and file size of ``model`` pruned to each of ``sparsities`` with each of ``patterns``.

    Args:
        model: a shipped model's name, or a trained ``nn.Module`` (never modified: each point prunes a copy).
        data: the dataset (``DatasetSplits``); default: the shipped model's. Fine-tuning uses its train split,
            accuracy its test split.
        patterns: each a pattern name; an N:M pattern fixes its sparsity and is measured at 0 and that only.
        sparsities: the grid, each in [0, 1); 0 is the dense model.
        modes: ways to run each point (``execution.MODES``); one that cannot run here is a row with
            ``available`` False and the reason in ``note``.
        criterion, exclude: as in ``wb.prune`` (exclude the layers a pattern cannot cut, e.g. a 1-channel stem
            for 2:4).
        fine_tune_epochs, fine_tune_lr: ``wb.fine_tune`` after pruning (0 epochs: ``accuracy`` is without
            fine-tuning; ``accuracy_pruned`` is always before it).
        devices: "auto" (CPU, and CUDA when present), or device names.
        batch, min_run_time, rounds, threads: how latency is timed (``compare_modes``): finely interleaved with
            the dense model, one thread by default, so points timed at different moments compare.
    """
    if unknown := [mode for mode in modes if mode not in MODES]:
        raise ValueError(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    if not isinstance(fine_tune_epochs, int) or fine_tune_epochs < 0:
        raise ValueError(f"fine_tune_epochs must be a whole number ≥ 0, got {fine_tune_epochs!r}")
    for sparsity in sparsities:
        if not 0 <= sparsity < 1:
            raise ValueError(f"each sparsity must be in [0, 1), got {sparsity!r}")
    points = _points(patterns, sparsities)  # a bad pattern name is refused here
    device_names = _devices(devices)
    name = model if isinstance(model, str) else registry_name(model) or type(model).__name__
    base = pretrained(model) if isinstance(model, str) else model
    if data is None:
        if not isinstance(model, str):
            raise ValueError("pass data=<the model's DatasetSplits> for a model of your own")
        data = load_dataset(checkpoint_info(model)["dataset"])
    inputs = data.test.tensors[0][:batch]
    rows = []
    for pattern, sparsity in points:
        seed_everything(seed)
        pruned = copy.deepcopy(base).eval()
        if sparsity > 0:
            prune(pruned, sparsity=sparsity, criterion=criterion, pattern=pattern, data=data, exclude=exclude)
        accuracy_pruned = evaluate(pruned, data.test)
        epochs = fine_tune_epochs if sparsity > 0 else 0
        if epochs:
            fine_tune(pruned, data, epochs=epochs, lr=fine_tune_lr, seed=seed, progress=False, device="cpu")
            pruned.eval()
        accuracy = evaluate(pruned, data.test)
        files = _file_sizes(pruned, modes, inputs)
        achieved = sparsity_report(pruned).sparsity
        for device in device_names:
            measured = compare_modes(
                pruned,
                inputs,
                modes,
                device=device,
                batch_sizes=(batch,),
                threads=threads,
                min_run_time=min_run_time,
                rounds=rounds,
            )
            for row in measured.to_dict("records"):
                mode = row["mode"]
                available = bool(row["available"]) and files.get(mode) is not None
                rows.append(
                    {
                        "model": name,
                        "pattern": pattern,
                        "sparsity": sparsity,
                        "mode": mode,
                        "device": row["device"],
                        "available": available,
                        "note": row["note"],
                        "achieved_sparsity": achieved,
                        "accuracy": accuracy,
                        "accuracy_pruned": accuracy_pruned,
                        "fine_tune_epochs": epochs,
                        "latency_ms": row.get("latency_ms", float("nan")) if available else float("nan"),
                        "latency_dense_ms": _dense_ms(row),
                        "relative_latency": 1 / row["speedup"] if available else float("nan"),
                        "batch": batch,
                        "threads": row.get("threads"),
                        "file": FILES[mode],
                        "file_bytes": files.get(mode) if available else None,
                        "file_share": files[mode] / files["dense"] if available else float("nan"),
                        "memory_bytes": row.get("bytes") if available else None,
                        "max_abs_diff": row.get("max_abs_diff", float("nan")) if available else float("nan"),
                    }
                )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _dense_ms(row: dict) -> float:
    """The dense model's latency timed beside this mode (latency × speedup)."""
    if not row["available"]:
        return float("nan")
    return row["latency_ms"] * row["speedup"]


def pareto_points(table: pd.DataFrame, x: str = "relative_latency", y: str = "accuracy") -> pd.DataFrame:
    """The available points no other point beats on both smaller ``x`` (a cost) and larger ``y``, sorted by ``x``,
    with their settings; per model and device when the table holds several."""
    rows = table[table["available"].astype(bool)]
    fronts = [pareto_front(group, x, y, by=()) for _, group in rows.groupby(["model", "device"], sort=False)]
    return pd.concat(fronts, ignore_index=True) if fronts else rows.iloc[:0]


def recorded_tradeoff() -> pd.DataFrame:
    """The trade-off table shipped with the package (mlp and cnn on digits, one CPU thread, fine-tuned 3 epochs),
    measured by ``python benchmarks/tradeoff.py --out workbench/recorded/tradeoff.csv``."""
    path = resources.files("workbench") / "recorded" / "tradeoff.csv"
    with resources.as_file(path) as file:
        table = pd.read_csv(file, keep_default_na=False, na_values=[""])
    return table.assign(available=table["available"].astype(bool), note=table["note"].fillna(""))
