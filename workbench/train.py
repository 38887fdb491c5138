"""Seeded training, evaluation and fine-tuning with per-step hooks for masks and regularizers.

Example:
    >>> import workbench as wb
    >>> data = wb.load_dataset("moons")
    >>> model = wb.build_model("mlp2d", num_classes=2)
    >>> history = wb.train(model, data, epochs=2, progress=False)
    >>> len(history.train_loss)
    2
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .data import DatasetSplits, batches
from .devices import resolve_device

LossHook = Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (model, loss) -> loss, e.g. + a regularizer
StepHook = Callable[[nn.Module, int], None]  # (model, global step) after optimizer.step(), e.g. re-apply masks


class Stepper(Protocol):
    def step(self) -> object: ...


@dataclass
class History:
    """Per-epoch training record; ``plot()`` draws it."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)  # empty when no validation split was given

    def to_dict(self) -> dict:
        return asdict(self)

    def plot(self, ax=None):
        """Loss and accuracy per epoch; returns the matplotlib Figure."""
        from .viz.training import plot_history

        return plot_history(self, ax=ax)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch Generator for data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _splits(data) -> tuple[Dataset, Dataset | None]:
    """Accept a DatasetSplits (uses .train and .val) or a bare Dataset (train only)."""
    if hasattr(data, "train") and hasattr(data, "val"):
        return data.train, data.val
    if isinstance(data, Dataset):
        return data, None
    raise ValueError(f"data must be a DatasetSplits (from load_dataset) or a torch Dataset, got {type(data).__name__}")


def train(
    model: nn.Module,
    data,
    *,
    epochs: int = 20,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    loss_hook: LossHook | None = None,
    step_hook: StepHook | None = None,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    pruner: Stepper | None = None,
    lr_schedule: str = "cosine",
) -> History:
    """Train with AdamW and a cosine learning-rate schedule; deterministic on CPU for a given seed.

    Args:
        model: any classifier ``nn.Module`` returning logits; it is moved to ``device`` and left there.
        data: a ``DatasetSplits`` (trains on ``.train``, reports ``.val``) or a torch ``Dataset``.
        epochs, lr, weight_decay, batch_size: the usual; ``epochs=0`` leaves the model as it is.
        seed: seeds the initial shuffle order and any randomness inside the loop.
        device: "auto" (CUDA when available), "cpu", "cuda", or a torch.device.
        progress: show a ``tqdm.auto`` bar.
        loss_hook: called as ``loss = loss_hook(model, loss)`` before backward (regularizers).
        step_hook: called as ``step_hook(model, step)`` after every optimizer step (masks).
        augment: ``augment(inputs, generator) -> inputs`` applied to each training batch.
        pruner: a ``GradualPruner`` (anything with ``step()``), stepped after every optimizer step.
        lr_schedule: "cosine" (from ``lr`` down to 0 over the run) or "constant".

    Returns:
        History with per-epoch train loss, train accuracy and validation accuracy.
    """
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 0, batch_size >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    train_set, val_set = _splits(data)
    device = resolve_device(device)
    generator = seed_everything(seed)
    model.to(device)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * len(loader)))
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    history = History()
    step = 0
    for _ in tqdm(range(epochs), desc="train", disable=not progress, leave=False):
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            if augment is not None:
                inputs = augment(inputs, generator)
            logits = model(inputs)
            loss = F.cross_entropy(logits, labels)
            total_loss += loss.item() * len(labels)
            if loss_hook is not None:
                loss = loss_hook(model, loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if pruner is not None:
                pruner.step()
            if step_hook is not None:
                step_hook(model, step)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
        history.train_loss.append(total_loss / seen)
        history.train_accuracy.append(correct / seen)
        if val_set is not None:
            history.val_accuracy.append(evaluate(model, val_set))
    model.eval()
    return history


def fine_tune(model: nn.Module, data, *, epochs: int = 3, lr: float = 5e-4, **kwargs) -> History:
    """Short, gentle training to recover accuracy after pruning (``train`` with small defaults)."""
    return train(model, data, epochs=epochs, lr=lr, **kwargs)


@torch.no_grad()
def predict(model: nn.Module, split, batch_size: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of a split (Dataset, DataLoader or (inputs, labels) tuple), on the CPU."""
    if isinstance(split, DatasetSplits) or not isinstance(split, (tuple, DataLoader, Dataset)):
        raise ValueError(
            "split must be a Dataset, DataLoader or (inputs, labels) tuple (e.g. data.test), got "
            f"{type(split).__name__}"
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        outputs = [(model(x.to(device)).cpu(), y) for x, y in batches(split, batch_size)]
    finally:
        model.train(was_training)
    return torch.cat([o for o, _ in outputs]), torch.cat([y for _, y in outputs])


def evaluate(model: nn.Module, split, batch_size: int = 2048) -> float:
    """Top-1 accuracy in [0, 1] on a split, in eval mode, on the model's device; training mode is restored.

    Example:
        >>> import workbench as wb
        >>> data = wb.load_dataset("digits")
        >>> 0.97 <= wb.evaluate(wb.pretrained("mlp"), data.test) <= 1.0
        True
    """
    logits, labels = predict(model, split, batch_size)
    return (logits.argmax(1) == labels).float().mean().item()
