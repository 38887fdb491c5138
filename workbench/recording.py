"""Recorded runs: masks, weight histograms and metrics at regular training steps, for replaying pruning over time.

``record_gradual`` trains a model with a ``GradualPruner`` and keeps a ``Frame`` every few steps (and at every
pruning step): the sparsity, the recent training loss, the validation accuracy, the masks of the recorded
layers and a histogram of each layer's kept weights. A replay view then only looks frames up.

Example:
    >>> import workbench as wb
    >>> data = wb.load_dataset("digits")
    >>> s = wb.schedule("cubic", final=0.9, start=0, end=60, every=20)
    >>> run = record_gradual(wb.pretrained("mlp"), data, s, epochs=4, frame_every=20)
    >>> [f.step for f in run.frames][:4], round(run.frames[-1].sparsity, 2)
    ([0, 20, 40, 60], 0.9)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .gradual import GradualPruner
from .masks import get_masks
from .schedules import Schedule
from .train import evaluate, train

BINS = np.concatenate([[0.0], np.logspace(-4, 1, 41)])  # |w| bins: exact zeros apart, then log-spaced to 10


def weight_histogram(weight: torch.Tensor) -> np.ndarray:
    """Counts of ``|weight|`` per ``BINS`` interval (the last one open-ended); pruned weights fall in the first."""
    values = weight.detach().abs().flatten().cpu().numpy()
    return np.histogram(values, bins=np.append(BINS, np.inf))[0]


@dataclass
class Frame:
    step: int
    sparsity: float  # of the pruned layers
    loss: float  # mean training loss over the steps since the previous frame
    accuracy: float  # on the validation split
    masks: dict[str, torch.Tensor]  # bool masks of the recorded layers (True = kept)
    histograms: dict[str, np.ndarray]  # counts of |w| per BINS interval, pruned weights in the first bin


@dataclass
class Recording:
    """A run's frames in step order, and what produced them."""

    method: str
    schedule: Schedule
    layers: list[str]
    frames: list[Frame] = field(default_factory=list)
    bins: np.ndarray = field(default_factory=lambda: BINS.copy())
    unit: str = "training step"  # what a frame's ``step`` counts (a lottery ticket's frames count rounds)

    @property
    def steps(self) -> list[int]:
        return [frame.step for frame in self.frames]

    def at(self, step: int) -> Frame:
        """The last frame at or before ``step``."""
        index = int(np.searchsorted(self.steps, step, side="right")) - 1
        return self.frames[max(index, 0)]


class _Recorder:
    """Steps the pruner and keeps frames; ``loss_hook`` sees each step's loss."""

    def __init__(self, model, pruner: GradualPruner, split, layers, frame_every: int, recording: Recording):
        self.model, self.pruner, self.split, self.layers = model, pruner, split, layers
        self.frame_every, self.recording, self.losses = frame_every, recording, []

    def loss_hook(self, model, loss):
        self.losses.append(float(loss.detach()))
        return loss

    def step(self):
        step = self.pruner.step_count
        result = self.pruner.step()
        if result is not None or step % self.frame_every == 0:
            self.record(step)
        return result

    def _dense(self, name: str) -> torch.Tensor:
        module, _, leaf = name.rpartition(".")
        return torch.ones(getattr(self.model.get_submodule(module), leaf).shape, dtype=torch.bool)

    @torch.no_grad()
    def record(self, step: int) -> None:
        masks = get_masks(self.model)
        histograms = {}
        for name in self.layers:
            module, _, leaf = name.rpartition(".")
            histograms[name] = weight_histogram(getattr(self.model.get_submodule(module), leaf))
        loss = float(np.mean(self.losses)) if self.losses else float("nan")
        self.losses = []
        frame = Frame(
            step,
            self.pruner.sparsity(),
            loss,
            evaluate(self.model, self.split),
            {name: masks[name].cpu().clone() if name in masks else self._dense(name) for name in self.layers},
            histograms,
        )
        self.recording.frames.append(frame)


def record_gradual(
    model: nn.Module,
    data,
    schedule: Schedule,
    *,
    epochs: int = 4,
    lr: float = 1e-3,
    criterion: str = "magnitude",
    pattern: str = "unstructured",
    scope: str = "global",
    progressive: int = 0,
    frame_every: int = 10,
    layers: list[str] | None = None,
    seed: int = 0,
    method: str | None = None,
) -> Recording:
    """Train ``model`` (in place) for ``epochs`` with a ``GradualPruner`` on ``schedule``, recording frames.

    Args:
        data: a ``DatasetSplits``; trains on ``.train``, measures accuracy on ``.val``.
        frame_every: a frame every that many steps, and at every pruning step.
        layers: the weights whose masks and histograms are kept (default: every pruned weight).
    """
    if isinstance(frame_every, bool) or not isinstance(frame_every, int) or frame_every < 1:
        raise ValueError(f"frame_every must be a whole number of steps >= 1, got {frame_every!r}")
    pruner = GradualPruner(model, schedule, criterion, pattern, scope, data=data.train, progressive=progressive)
    layers = list(pruner.names if layers is None else layers)
    if unknown := [name for name in layers if name not in pruner.names]:
        raise ValueError(f"layers {unknown} are not pruned here; choose from {pruner.names}")
    recording = Recording(method or f"{criterion} × {pattern} × {scope}", schedule, layers)
    recorder = _Recorder(model, pruner, data.val, layers, frame_every, recording)
    train(model, data, epochs=epochs, lr=lr, seed=seed, progress=False, pruner=recorder, loss_hook=recorder.loss_hook)
    return recording
