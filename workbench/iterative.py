"""Post-training iterative pruning (Han et al. 2015): prune a little, fine-tune, repeat, up to a target sparsity.

Each round raises the sparsity along a schedule (exponential by default: every round removes the same
share of the weights still there), prunes with the model's masks kept (a pruned weight never returns),
then retrains with the masks applied. By default each round rewinds the learning rate: it retrains with
a training-like schedule, cosine-decayed from ``lr`` (learning-rate rewinding, Renda et al. 2020);
``lr_rewind=False`` fine-tunes at a small constant rate instead (``lr / 10``, classic fine-tuning as in
Han et al. 2015). The result is a history: sparsity and accuracy before and after each retraining.

Example:
    >>> import workbench as wb
    >>> model, data = wb.pretrained("mlp"), wb.load_dataset("digits")
    >>> history = wb.iterative_prune(model, data, sparsity=0.8, rounds=2, epochs=1, progress=False)
    >>> [round(r.sparsity, 2) for r in history.rounds]
    [0.55, 0.8]
"""

from __future__ import annotations

import time
from copy import deepcopy
from dataclasses import asdict, dataclass, field

from torch import nn
from tqdm.auto import tqdm

from .masks import get_masks
from .pruner import Pruner
from .reports import check_sparsity
from .schedules import schedule as make_schedule
from .train import evaluate, train

TRAIN_OPTIONS = {"batch_size", "weight_decay", "augment", "device", "loss_hook", "step_hook"}


@dataclass
class Round:
    round: int
    sparsity: float  # of the pruned layers, after this round's pruning
    accuracy_pruned: float  # right after pruning, before fine-tuning
    accuracy_tuned: float  # after this round's fine-tuning
    seconds: float


@dataclass
class IterativeHistory:
    """What ``iterative_prune`` did: the dense accuracy and one ``Round`` per round."""

    dense_accuracy: float
    split: str  # where accuracy was measured
    rounds: list[Round] = field(default_factory=list)

    def to_dicts(self) -> list[dict]:
        return [asdict(r) for r in self.rounds]

    def plot(self, ax=None):
        """Accuracy against sparsity: before (pruned) and after (fine-tuned) each round."""
        from .viz.over_time import plot_iterative

        return plot_iterative(self, ax=ax)


def check_train_options(train_options: dict | None, taken: tuple[str, ...] = ()) -> None:
    """Refuse a ``train_options`` key that ``wb.train`` does not take here (``taken``: ones the caller sets itself)."""
    allowed = TRAIN_OPTIONS - set(taken)
    if unknown := sorted(set(train_options or {}) - allowed):
        raise ValueError(f"train_options takes no {unknown[0]!r}; it takes: {', '.join(sorted(allowed))}")


def iterative_prune(
    model: nn.Module,
    data,
    sparsity: float = 0.95,
    *,
    rounds: int = 12,
    schedule: str = "exponential",
    epochs: int = 20,
    lr: float = 3e-3,
    lr_rewind: bool = True,
    criterion: str = "magnitude",
    pattern: str = "unstructured",
    scope: str = "global",
    split: str = "val",
    seed: int = 0,
    progress: bool = True,
    train_options: dict | None = None,
    **prune_options,
) -> IterativeHistory:
    """Prune ``model`` in place to ``sparsity`` in ``rounds`` rounds of prune → fine-tune.

    Args:
        data: a ``DatasetSplits``: fine-tunes on ``.train``, measures on ``split`` ("val" or "test"),
            scores data-driven criteria on ``.train``.
        sparsity: the final fraction of the pruned layers' weights removed.
        rounds, schedule: how the sparsity rises (a kind from ``wb.SCHEDULES``; round r of R reaches
            ``schedule(r)`` with ``start=0, end=R``).
        epochs, lr: retraining per round (AdamW, cosine-decayed from ``lr``).
        lr_rewind: False fine-tunes at a constant ``lr / 10`` instead.
        criterion, pattern, scope, **prune_options: as ``wb.prune`` (``exclude``, ``reduce``, ``normalize``,
            ``criterion_options``).
        progress: one ``tqdm`` bar for the whole run (rounds), none for each fine-tune.
        train_options: more keyword arguments of ``wb.train`` for each retraining (``batch_size``,
            ``weight_decay``, ``augment``, ``device``…), e.g. the model's own training recipe.

    If interrupted (KeyboardInterrupt), the model keeps the masks of the last finished pruning step.
    """
    sparsity = check_sparsity(sparsity)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    if not (hasattr(data, "train") and hasattr(data, split)):
        raise ValueError("data must be a DatasetSplits from wb.load_dataset (train, val and test splits)")
    check_train_options(train_options)
    targets = make_schedule(schedule, 0.0, sparsity, 0, rounds, 1)
    measured = getattr(data, split)
    # The first round's pruner checks every argument before the model is touched.
    first = Pruner(model, criterion, pattern, scope, data=data.train, compose=bool(get_masks(model)), **prune_options)
    history = IterativeHistory(evaluate(model, measured), split)
    bar = tqdm(range(1, rounds + 1), desc="iterative pruning", disable=not progress)
    for index in bar:
        start = time.perf_counter()
        target = targets(index)
        pruner = (
            first
            if index == 1
            else Pruner(model, criterion, pattern, scope, data=data.train, compose=True, **prune_options)
        )
        result = pruner.apply(target)
        pruned = evaluate(model, measured)
        train(
            model,
            data,
            epochs=epochs,
            lr=lr if lr_rewind else lr / 10,
            lr_schedule="cosine" if lr_rewind else "constant",
            seed=seed + index,
            progress=False,
            **(train_options or {}),
        )
        history.rounds.append(
            Round(index, result.sparsity, pruned, evaluate(model, measured), time.perf_counter() - start)
        )
        bar.set_postfix(sparsity=f"{result.sparsity:.1%}", accuracy=f"{history.rounds[-1].accuracy_tuned:.1%}")
    return history


def fine_tune_curve(
    model: nn.Module,
    data,
    sparsities,
    *,
    epochs: int = 5,
    lr: float = 3e-3,
    criterion: str = "magnitude",
    pattern: str = "unstructured",
    scope: str = "local",
    split: str = "test",
    seed: int = 0,
    exclude=(),
) -> list[dict]:
    """Accuracy at each sparsity right after one-shot pruning and after ``epochs`` of fine-tuning (masks kept on).

    Each point prunes a fresh copy of ``model`` (left untouched), so the two curves can be drawn side by side.
    """
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    pruner = Pruner(model, criterion, pattern, scope, data=data.train, exclude=exclude)
    rows = []
    for sparsity in sparsities:
        copy = deepcopy(model)
        tuned = Pruner(copy, criterion, pattern, scope, data=data.train, exclude=exclude, scores=pruner.scores)
        tuned.apply(None if tuned.pattern.fixed_sparsity is not None else sparsity)
        pruned = evaluate(copy, getattr(data, split))
        train(copy, data, epochs=epochs, lr=lr, seed=seed, progress=False)
        rows.append({"sparsity": float(sparsity), "pruned": pruned, "fine_tuned": evaluate(copy, getattr(data, split))})
    return rows
