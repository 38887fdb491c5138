"""Model size and cost: nonzero parameters, dense FLOPs, ideal sparse FLOPs, and measured latency.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Linear(4, 2, bias=False)
    >>> mask = torch.tensor([[True, False, False, False], [True, True, False, False]])
    >>> parameter_counts(model, {"weight": mask})
    (8, 3)
    >>> flops(model, torch.ones(1, 4)), effective_flops(model, torch.ones(1, 4), {"weight": mask})
    (16, 6.0)
    >>> latency(model, torch.ones(1, 4), device="cpu", threads=1, min_run_time=0.01).runs > 0
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
import statistics
import timeit
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from .devices import resolve_device
from .inputs import as_inputs
from .layers import prunable_layers
from .masks import qualified


def parameter_counts(model: nn.Module, masks: dict[str, torch.Tensor] | None = None) -> tuple[int, int]:
    """(total, nonzero) over every parameter of ``model`` (weights, biases, norms).

    A masked model counts its masked values; ``masks`` (bool, True = kept, by state_dict name such as
    "fc1.weight") zero further entries on top, so ``parameter_counts(model, pruner.masks(0.5))``
    sizes a choice without applying it.
    """
    masks = masks or {}
    total = nonzero = 0
    for name, _ in model.named_parameters():  # masked weights appear as <module>.parametrizations.<leaf>.original
        plain = re.sub(r"(^|\.)parametrizations\.", r"\1", name).removesuffix(".original")
        module_name, _, leaf = plain.rpartition(".")
        value = getattr(model.get_submodule(module_name), leaf).detach()
        if plain in masks:
            value = value * masks[plain].to(value.device)
        total += value.numel()
        nonzero += int(torch.count_nonzero(value))
    return total, nonzero


@torch.no_grad()
def layer_flops(model: nn.Module, inputs) -> tuple[int, dict[str, int]]:
    """Dense FLOPs of one forward pass on ``inputs`` (a tensor or a tuple of them): the total, and each
    Linear/Conv layer's by module name.

    Counted by ``torch.utils.flop_counter.FlopCounterMode``: 2 FLOPs per multiply-add of matrix
    products and convolutions; elementwise ops, norms and softmax are not counted (nor, on the
    CPU, the products inside ``scaled_dot_product_attention``).
    """
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(*as_inputs(inputs))
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()  # keys: "Global", then "<model class>.<module name>"
    root = type(model).__name__
    per_layer = {
        name: sum(counts.get(f"{root}.{name}" if name else root, {}).values()) for name in prunable_layers(model)
    }
    return counter.get_total_flops(), per_layer


def flops(model: nn.Module, inputs) -> int:
    """Dense FLOPs of one forward pass on ``inputs`` (see ``layer_flops`` for what is counted)."""
    return layer_flops(model, inputs)[0]


def effective_flops(model: nn.Module, inputs, masks: dict[str, torch.Tensor]) -> float:
    """FLOPs an ideal sparse kernel would do: each Linear/Conv's dense FLOPs × its kept-weight fraction.

    This is a best case: it assumes every zero weight's multiply-add is skipped for free (real sparse
    kernels rarely get there below high sparsity), and it does not exploit the zeros a pruned
    neuron or filter propagates into the next layer's inputs. Uncounted or unmasked ops stay dense.
    """
    return sparse_flops(layer_flops(model, inputs), masks)


def sparse_flops(counted: tuple[int, dict[str, int]], masks: dict[str, torch.Tensor]) -> float:
    """``effective_flops`` from a ``layer_flops`` result, so a live view counts once and rescales per move."""
    total, per_layer = counted
    saved = 0.0
    for name, dense in per_layer.items():
        mask = masks.get(qualified(name, "weight"))
        if mask is not None:
            saved += dense * int((~mask).sum()) / mask.numel()
    return total - saved


@dataclass(frozen=True)
class Latency:
    """Measured wall time of one forward pass (``torch.utils.benchmark``), with how it was measured."""

    median_ms: float  # median over timed blocks of the time per forward pass
    iqr_ms: float  # interquartile range of those block times: the noise
    runs: int  # forward passes timed
    threads: int  # torch intra-op threads while timing
    device: str  # where it ran, e.g. "cpu" or "cuda:0"
    batch: int  # leading size of the first input

    def __str__(self) -> str:
        threads = f"{self.threads} thread" + ("s" if self.threads != 1 else "")
        return (
            f"{self.median_ms:.3f} ms (IQR {self.iqr_ms:.3f} ms, {self.runs:,} runs, "
            f"batch {self.batch}, {self.device}, {threads})"
        )


@dataclass(frozen=True)
class Costs:
    """What a model costs: parameters (all and nonzero), dense FLOPs of one forward pass, optionally latency."""

    params: int  # every parameter: weights, biases, norms
    nonzero: int  # parameters that are not zero (masked-out weights count as zero)
    flops: int  # dense FLOPs of one forward pass on the inputs (see layer_flops)
    latency: Latency | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def model_costs(model: nn.Module, example_inputs, *, latency: bool = False, **timing) -> Costs:
    """Parameters, FLOPs and, with ``latency=True``, measured latency (``timing`` goes to ``compare_latency``)."""
    total, nonzero = parameter_counts(model)
    timed = compare_latency({"model": model}, example_inputs, **timing)["model"] if latency else None
    return Costs(total, nonzero, flops(model, example_inputs), timed)


def latency(
    model: nn.Module,
    example_inputs,
    *,
    device: str | torch.device = "auto",
    threads: int | None = None,
    min_run_time: float = 0.2,
) -> Latency:
    """Median time of ``model(*example_inputs)`` in eval mode without autograd, on ``device``.

    Args:
        model: any module; its mode and device are restored afterwards.
        example_inputs: a tensor or a tuple of tensors (moved to ``device`` for timing).
        device: "auto" (CUDA when available), "cpu", "cuda[:n]" or a ``torch.device``.
        threads: torch intra-op threads while timing (default: ``torch.get_num_threads()``).
        min_run_time: seconds of timing, after warm-up (``Timer.blocked_autorange``).
    """
    return compare_latency(
        {"model": model}, example_inputs, device=device, threads=threads, min_run_time=min_run_time, rounds=1
    )["model"]


def compare_latency(
    models: dict[str, nn.Module],
    example_inputs,
    *,
    device: str | torch.device = "auto",
    threads: int | None = None,
    min_run_time: float = 0.2,
    rounds: int = 5,
) -> dict[str, Latency]:
    """``latency`` of several models on the same inputs, timed interleaved so a noisy machine slows all alike.

    Each of ``rounds`` rounds times every model for ``min_run_time / rounds`` seconds, in an order
    rotated per round; each model's median and IQR are over all its timed blocks.
    """
    target = resolve_device(device)
    if target.type == "cuda" and target.index is None:
        target = torch.device("cuda", torch.cuda.current_device())  # name the GPU that is timed and synchronized
    threads = torch.get_num_threads() if threads is None else threads
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    if not min_run_time > 0:
        raise ValueError(f"min_run_time must be > 0 seconds, got {min_run_time!r}")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive int, got {rounds!r}")
    if not models:
        raise ValueError("compare_latency needs at least one model, e.g. {'dense': model}")
    inputs = tuple(x.to(target) for x in as_inputs(example_inputs))
    clock = timeit.default_timer if target.type == "cpu" else _synchronized_clock(target)
    times: dict[str, list[float]] = {name: [] for name in models}
    runs = dict.fromkeys(models, 0)
    with _prepared(models.values(), target), torch.no_grad():
        for name, model in models.items():
            _warm_up(name, model, inputs, target)
        timers = {
            name: benchmark.Timer(
                "model(*inputs)", globals={"model": model, "inputs": inputs}, timer=clock, num_threads=threads
            )
            for name, model in models.items()
        }
        names = list(models)
        for turn in range(rounds):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                measurement = timers[name].blocked_autorange(min_run_time=min_run_time / rounds)
                times[name] += measurement.times
                runs[name] += len(measurement.raw_times) * measurement.number_per_run
    batch = inputs[0].shape[0] if inputs[0].dim() else 1
    return {
        name: Latency(1000 * statistics.median(t), 1000 * _iqr(t), runs[name], threads, str(target), batch)
        for name, t in times.items()
    }


def _iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    low, _, high = statistics.quantiles(values, n=4)
    return high - low


def _synchronized_clock(device: torch.device):
    """A timer that waits for ``device``'s queued kernels first, so CUDA time is not cut short."""

    def clock() -> float:
        torch.cuda.synchronize(device)
        return timeit.default_timer()

    return clock


def _warm_up(name: str, model: nn.Module, inputs: tuple, device: torch.device, calls: int = 3) -> None:
    """A few untimed calls (kernel selection, caches); a ValueError if the inputs do not fit the model."""
    try:
        for _ in range(calls):
            model(*inputs)
    except (RuntimeError, TypeError, ValueError, IndexError, AssertionError) as error:
        shapes = ", ".join("×".join(map(str, x.shape)) for x in inputs)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"inputs of shape {shapes} do not fit {name} ({type(model).__name__}): {first}") from None
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _prepared(models, device: torch.device):
    """Models in eval mode on ``device``; every module's mode and each model's device restored on exit."""
    saved = []
    for model in models:
        first = next(itertools.chain(model.parameters(), model.buffers()), None)
        saved.append((model, first.device if first is not None else None, [(m, m.training) for m in model.modules()]))
    try:
        for model, _, _ in saved:
            model.eval().to(device)
        yield
    finally:
        for model, home, modes in saved:
            if home is not None:
                model.to(home)
            for module, training in modes:
                module.training = training


SPARSE_LAYOUTS = (torch.sparse_csr, torch.sparse_bsr)


def tensor_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer, counting a sparse tensor's indices and values (not its dense size)."""
    total = 0
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.layout in SPARSE_LAYOUTS:
            parts = (tensor.crow_indices(), tensor.col_indices(), tensor.values())
        elif hasattr(tensor, "packed") and tensor.packed is not None:  # 2:4 semi-structured: values + metadata
            parts = (tensor.packed, *(t for t in (getattr(tensor, "meta", None),) if t is not None))
        else:
            parts = (tensor,)
        total += sum(part.numel() * part.element_size() for part in parts)
    return total


def _mode_flops(build, counted: tuple[int, dict[str, int]], scale: float) -> float:
    """FLOPs of a mode's forward: dense for dense/masked; a sparse layer's share of its stored entries otherwise."""
    if build.mode == "shrunk":
        return float("nan")  # counted separately on the shrunk model
    total, per_layer = counted
    for name in build.sparse_layers:
        weight = build.model.get_submodule(name).weight
        stored = weight.values().numel() if weight.layout in SPARSE_LAYOUTS else weight.numel() / 2  # 2:4: half
        total -= per_layer[name] * (1 - stored / (weight.shape[0] * weight.shape[1]))
    return total * scale


def _dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter or buffer (what its inputs must be)."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)


def _resized(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``batch`` rows of ``x``: its first ones, repeated as often as needed."""
    repeats = -(-batch // x.shape[0])
    return x.repeat(repeats, *([1] * (x.dim() - 1)))[:batch]


def compare_modes(
    model: nn.Module,
    inputs,
    modes=None,
    *,
    device: str | torch.device = "auto",
    batch_sizes=(1, 64, 256),
    threads: int | None = None,
    min_run_time: float = 0.2,
    rounds: int = 5,
):
    """Run the pruned ``model`` every way in ``modes`` (default: ``execution.MODES``) and measure each, per batch.

    Returns a pandas DataFrame, one row per mode × batch size: ``available`` and ``note`` (why not, or what stays
    dense), ``latency_ms`` / ``iqr_ms`` (``compare_latency``: interleaved, ``threads`` stated), ``speedup`` over
    "dense", ``max_abs_diff`` of the outputs from "dense" (the masked weights run densely: every mode must compute
    that function), ``params`` / ``nonzero``, ``bytes`` (weights and buffers as stored, sparse indices included),
    ``flops`` (dense FLOPs, less what sparse layers skip by storing fewer entries), and ``peak_mb`` (CUDA only).
    ``inputs`` is one example batch; a batch size takes its first rows, repeated as needed. ``rounds``: how finely
    the modes' timings interleave (``compare_latency``); more rounds spread a burst of load over all of them.
    """
    import pandas as pd

    from .execution import MODES, build_mode

    modes = MODES if modes is None else tuple(modes)
    if unknown := [m for m in modes if m not in MODES]:
        raise ValueError(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    if not batch_sizes or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in batch_sizes):
        raise ValueError(f"batch_sizes must be positive integers, got {batch_sizes!r}")
    example = as_inputs(inputs)
    target = resolve_device(device)
    builds = {mode: build_mode(model, mode, example, device=target) for mode in ("dense", *modes)}
    reference = builds["dense"].model
    counted = layer_flops(reference, tuple(x[:1] for x in example))
    rows = []
    for batch in batch_sizes:
        batch_inputs = tuple(_resized(x, batch) for x in example)
        runnable = {m: b.model for m, b in builds.items() if b.available and m in (*modes, "dense")}
        half = {m: runnable.pop(m) for m in list(runnable) if _dtype(runnable[m]) == torch.float16}
        timing = {"device": target, "threads": threads, "min_run_time": min_run_time, "rounds": rounds}
        timed = compare_latency(runnable, batch_inputs, **timing)
        if half:
            timed |= compare_latency(half, tuple(x.half() for x in batch_inputs), **timing)
        with torch.no_grad(), _prepared([reference], target):
            expected = reference(*(x.to(target) for x in batch_inputs)).float()
        for mode in modes:
            build = builds[mode]
            row = {"mode": mode, "batch": batch, "available": build.available, "device": str(target)}
            row["note"] = build.reason or "; ".join(f"{k} dense: {why}" for k, why in build.dense_layers.items())
            if build.available:
                row.update(_measured(build, reference, batch_inputs, expected, target, timed, counted, batch))
            rows.append(row)
    return pd.DataFrame(rows)


def _measured(build, reference, batch_inputs, expected, target, timed, counted, batch) -> dict:
    """One available mode's row at one batch size (``reference``: the dense model, whose weights the sparse modes
    hold in another layout, so their parameter counts are its)."""
    model = build.model
    dtype = _dtype(model)
    with torch.no_grad(), _prepared([model], target):
        if target.type == "cuda":
            torch.cuda.reset_peak_memory_stats(target)
        output = model(*(x.to(target, dtype) for x in batch_inputs)).float()
        peak = torch.cuda.max_memory_allocated(target) / 2**20 if target.type == "cuda" else float("nan")
    total, nonzero = parameter_counts(model if build.mode == "shrunk" else reference)
    if build.mode == "shrunk":
        flop_count = float(flops(model, tuple(x[:1] for x in batch_inputs))) * batch
    else:
        flop_count = _mode_flops(build, counted, batch)
    latency_of = timed[build.mode]
    return {
        "latency_ms": latency_of.median_ms,
        "iqr_ms": latency_of.iqr_ms,
        "threads": latency_of.threads,
        "speedup": timed["dense"].median_ms / latency_of.median_ms,
        "max_abs_diff": float((output - expected).abs().max()),
        "params": total,
        "nonzero": nonzero,
        "bytes": tensor_bytes(model),
        "flops": flop_count,
        "peak_mb": peak,
    }
