"""Shrink a model at every sparsity of a grid once: shapes, parameters, FLOPs, accuracy and measured latency.

A ``ShrinkSweep`` scores the dependency groups once (``GroupPruner``), then at each grid sparsity shrinks
a copy, evaluates it and times it against the dense model (interleaved, on the CPU, a stated batch and
thread count). A live view then only looks up the nearest grid point. ``shrink_sweep`` runs the sweep of a
shipped model on digits; whoever keeps sweeps around (the shrink lab) decides how many.

Example:
    >>> sweep = shrink_sweep("mlp", "l1", "neuron", sparsities=(0.0, 0.5), progress=False)
    >>> sweep.at(0.5).shapes["fc1"], sweep.at(0.5).params < sweep.at(0.0).params
    ('150×64', True)
    >>> default_layer(sweep), canonical_pattern("neuron") == canonical_pattern("filter")
    ('fc2', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from .attention import attention_layouts
from .cuts import LayerCut, layer_cuts, shape_text
from .data import load_dataset
from .devices import resolve_device
from .layers import prunable_layers
from .measure import Latency, compare_latency, flops
from .patterns import coupled_patterns, parse_pattern
from .structure.group_prune import GroupPruner
from .structure.shrink import ShrinkReport, shrink_masked
from .train import evaluate
from .zoo import pretrained

GRID = tuple(round(0.1 * step, 1) for step in range(10))  # 0, 0.1, …, 0.9


def sweep_patterns() -> tuple[str, ...]:
    """What a sweep shrinks: each pattern that removes whole units, or "all" (every prunable group)."""
    return (*coupled_patterns(), "all")


@dataclass
class ShrinkPoint:
    """The shrunk model at one grid sparsity and what it costs."""

    sparsity: float
    model: nn.Module  # the shrunk plain model
    report: ShrinkReport
    shapes: dict[str, str]  # every Linear/Conv weight shape ("150×64") and attention head count ("2 heads") by module
    params: int
    flops: int  # dense FLOPs of one inference (one sample)
    accuracy: float
    max_difference: float  # max |masked − shrunk| / max |masked| of the logits on the split
    removed: dict[int, list[int]] = field(default_factory=dict)  # group id → removed units
    latency: Latency | None = None  # the shrunk model on the timing batch, timed interleaved with the dense one


def model_shapes(model: nn.Module) -> dict[str, str]:
    """Weight shape of every Linear/Conv module and head count of every attention module, by module name."""
    shapes = {name: shape_text(layer.weight.shape) for name, layer in prunable_layers(model).items()}
    for name, layout in attention_layouts(model).items():
        shapes[name] = f"{layout.num_heads} head" + ("s" if layout.num_heads != 1 else "")
    return shapes


class ShrinkSweep:
    """Shrunk models of ``model`` on a sparsity grid, with accuracy on ``split`` and CPU latency on ``timing_inputs``.

    Args:
        model: a plain model (not modified).
        criterion: unit score, as ``GroupPruner`` takes it ("l1", "l2", "fpgm", "taylor", …).
        pattern: "neuron" or "filter" (coupled channel groups), "head", or "all" (every prunable group).
        split: (inputs, labels) or a TensorDataset to measure accuracy and masked-vs-shrunk equality on.
        example_inputs: a small batch to trace with.
        timing_inputs: the batch latency is measured on (its size is the stated batch).
        sparsities: the grid, fractions of each group's units removed (local scope).
        threads, min_run_time, rounds: torch threads while timing, seconds of timing per model, and rounds of
            ``compare_latency`` (the dense model and every shrunk one are timed interleaved in one call).
        device: where the latency is timed: "auto" (CUDA when available), "cpu" or "cuda".
        data: what data-driven criteria score on.
    """

    def __init__(
        self,
        model: nn.Module,
        criterion: str = "l1",
        pattern: str = "filter",
        *,
        split,
        example_inputs,
        timing_inputs,
        sparsities=GRID,
        threads: int = 1,
        min_run_time: float = 0.2,
        rounds: int = 4,
        data=None,
        progress: bool = True,
        device: str | torch.device = "auto",
    ):
        if pattern not in sweep_patterns():
            raise ValueError(f"pattern {pattern!r} is not structured; choose one of {', '.join(sweep_patterns())}")
        self.model, self.criterion, self.pattern = model, criterion, pattern
        self.split, self.example_inputs, self.timing_inputs = split, example_inputs, timing_inputs
        self.sparsities = tuple(float(s) for s in sparsities)
        if (
            not self.sparsities
            or sorted(set(self.sparsities)) != list(self.sparsities)
            or not 0 <= self.sparsities[0] <= self.sparsities[-1] < 1
        ):
            raise ValueError(f"sparsities must be increasing values in [0, 1), got {sparsities!r}")
        self.threads, self.min_run_time, self.rounds, self.data, self.progress = (
            threads,
            min_run_time,
            rounds,
            data,
            progress,
        )
        self.device = resolve_device(device)

    def run(self) -> ShrinkSweep:
        """Score once; shrink and evaluate at every grid sparsity; then time all of them and the dense model,
        interleaved."""
        self.pruner_ = GroupPruner(
            self.model,
            self.criterion,
            self.example_inputs,
            pattern=None if self.pattern == "all" else self.pattern,
            data=self.data,
        )
        dense = self.pruner_.plain
        self.weights_ = {name: tensor.detach().clone() for name, tensor in dense.state_dict().items()}
        self.dense_shapes_ = model_shapes(dense)
        self.layers_ = list(prunable_layers(dense))  # what ``cut`` draws
        self.dense_params_ = sum(p.numel() for p in dense.parameters())
        self.dense_flops_ = flops(dense, self._inputs()[:1])
        self.dense_accuracy_ = evaluate(dense, self.split)
        self.points_ = []
        with tqdm(total=len(self.sparsities) + 1, desc="shrinking", disable=not self.progress, leave=False) as bar:
            for sparsity in self.sparsities:
                self.points_.append(self._point(sparsity, dense))
                bar.update()
            bar.set_description(f"timing (batch {len(self.timing_inputs)}, {self.threads} thread, {self.device})")
            # one timing per architecture: grid points of equal shapes (and the dense shapes) are the same computation
            models = {_architecture(self.dense_shapes_): dense}
            for point in self.points_:
                models.setdefault(_architecture(point.shapes), point.model)
            timed = compare_latency(
                models,
                self.timing_inputs,
                device=self.device,
                threads=self.threads,
                min_run_time=self.min_run_time,
                rounds=self.rounds,
            )
            bar.update()
        self.dense_latency_ = timed[_architecture(self.dense_shapes_)]
        for point in self.points_:
            point.latency = timed[_architecture(point.shapes)]
        return self

    def _inputs(self) -> torch.Tensor:
        return self.split[0] if isinstance(self.split, tuple) else self.split.tensors[0]

    def _point(self, sparsity: float, dense: nn.Module) -> ShrinkPoint:
        masks = self.pruner_.masks(sparsity)
        small, report = shrink_masked(dense, masks, self.example_inputs, graph=self.pruner_.graph)
        small.eval()
        inputs = self._inputs()
        with torch.no_grad():
            masked = {name: p * masks[name] if name in masks else p for name, p in dense.named_parameters()}
            expected = functional_call(dense, masked, (inputs,))
            difference = float((small(inputs) - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
        return ShrinkPoint(
            sparsity,
            small,
            report,
            model_shapes(small),
            sum(p.numel() for p in small.parameters()),
            flops(small, inputs[:1]),
            evaluate(small, self.split),
            difference,
            dict(report.removed),
        )

    def index(self, sparsity: float) -> int:
        """Index of the grid point nearest ``sparsity``."""
        return int(np.argmin(np.abs(np.asarray(self.sparsities) - sparsity)))

    def at(self, sparsity: float) -> ShrinkPoint:
        """The grid point nearest ``sparsity`` (a lookup: nothing is computed)."""
        return self.points_[self.index(sparsity)]

    def cut(self, sparsity: float, layer: str) -> LayerCut:
        """Layer ``layer``'s dense weight with the rows and columns removed at ``sparsity``."""
        name = f"{layer}.weight"
        if name not in self.weights_:
            raise ValueError(
                f"{layer!r} is not a Linear/Conv layer of the model; choose one of {', '.join(self.layers_)}"
            )
        point = self.at(sparsity)
        return layer_cuts({name: self.weights_[name]}, point.report.graph, point.removed)[layer]

    def curve(self, what: str) -> np.ndarray:
        """A field over the grid: "params", "flops", "accuracy", "latency_ms" or "max_difference"."""
        fields = {"latency_ms": lambda p: p.latency.median_ms}
        if what not in ("params", "flops", "accuracy", "max_difference", *fields):
            raise ValueError(f"unknown curve {what!r}; choose params, flops, accuracy, max_difference or latency_ms")
        get = fields.get(what, lambda p: getattr(p, what))
        return np.array([get(p) for p in self.points_], dtype=float)


def _architecture(shapes: dict[str, str]) -> str:
    return "; ".join(f"{name} {shape}" for name, shape in sorted(shapes.items()))


def default_layer(sweep: ShrinkSweep) -> str:
    """The first layer that loses both rows and columns at the sweep's top sparsity, else the first that loses any."""
    top = sweep.sparsities[-1]
    cuts = [sweep.cut(top, layer) for layer in sweep.layers_]
    for wanted in (lambda c: c.rows.size and c.columns.size, lambda c: c.rows.size or c.columns.size):
        chosen = [c.name for c in cuts if wanted(c)]
        if chosen:
            return chosen[0]
    return sweep.layers_[0]


def canonical_pattern(pattern: str) -> str:
    """The pattern a sweep runs for ``pattern``: names of one registry entry ("neuron", "filter") remove the same
    coupled groups, so they share one sweep."""
    return pattern if pattern == "all" else parse_pattern(pattern).spec.names[0]


def shrink_sweep(
    model_name: str,
    criterion: str = "l1",
    pattern: str = "filter",
    *,
    split: str = "val",
    batch: int = 256,
    sparsities=GRID,
    threads: int = 1,
    min_run_time: float = 0.2,
    progress: bool = True,
    device: str | torch.device = "auto",
) -> ShrinkSweep:
    """The sweep of a shipped model on digits (run now): accuracy on ``split``, latency on ``batch`` training images
    timed on ``device`` ("auto": CUDA when available).

    Data-driven criteria score on the training split.
    """
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    digits = load_dataset("digits")
    images = digits.train.tensors[0]
    if not 1 <= batch <= len(images):
        raise ValueError(f"batch must be in 1..{len(images)} (training images), got {batch}")
    return ShrinkSweep(
        pretrained(model_name),
        criterion,
        pattern,
        split=getattr(digits, split),
        example_inputs=images[:8],
        timing_inputs=images[:batch],
        sparsities=sparsities,
        threads=threads,
        min_run_time=min_run_time,
        data=digits.train,
        progress=progress,
        device=device,
    ).run()
