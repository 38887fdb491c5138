"""Lottery tickets (Frankle & Carbin 2019): iterative magnitude pruning with rewinding, and its two controls.

Train the network from its initialization, prune the smallest-magnitude share of the weights still there, reset
the survivors to their values at iteration 0 (or, rewinding as in Frankle et al. 2020, at optimizer step ``k``)
and train again; repeat. A winning ticket keeps its accuracy where two controls on the same schedule lose it:
the same masks with a random re-initialization, and random masks (same count in every layer) with the ticket's
starting weights (the initialization, or step ``k``'s weights when rewinding). Pruning is per layer by default
(``scope="local"``: every layer loses the same share, as the paper does for LeNet), or global
(``scope="global"``: one ranking, as the paper does for the deeper conv nets).

Simplification: every retraining (ticket and controls) runs the whole recipe again, ``epochs`` with a fresh
AdamW and a cosine schedule from ``lr``, also when rewinding to ``k > 0`` (the paper resumes at step ``k``).

Example:
    >>> import workbench as wb
    >>> data = wb.load_dataset("digits")
    >>> history = wb.lottery_ticket("mlp", data, sparsity=0.36, rounds=2, epochs=1, progress=False)
    >>> [round(r.sparsity, 2) for r in history.rounds], sorted(history.rounds[0].test)
    ([0.2, 0.36], ['random_mask', 'reinit', 'ticket'])
"""

from __future__ import annotations

import math
import time
from copy import deepcopy

import torch
from torch import nn
from tqdm.auto import tqdm

from .iterative import check_train_options
from .lottery_history import LABELS, RUNS, LotteryHistory, LotteryRound
from .masks import apply_masks, get_masks
from .models import build_model, model_spec
from .pruner import Pruner
from .recording import weight_histogram
from .reports import check_choice, check_sparsity, report_from_masks
from .train import evaluate, seed_everything, train

__all__ = ["LABELS", "RUNS", "LotteryHistory", "LotteryRound", "lottery_ticket"]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(name_or_model, data, sparsity, rounds, rewind, epochs, lr, scope, train_options) -> float:
    """Refuse bad arguments before any work; return the share pruned per round."""
    if isinstance(name_or_model, str):
        model_spec(name_or_model)  # unknown names raise here
    elif not isinstance(name_or_model, nn.Module):
        raise ValueError(f"model must be a model name or a torch.nn.Module, got {type(name_or_model).__name__}")
    elif get_masks(name_or_model):
        raise ValueError("the model is already pruned (it has masks); give a dense model at its initialization")
    sparsity = check_sparsity(sparsity)
    if not _is_int(rounds) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
    if not _is_int(epochs) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    check_choice("scope", scope, ("local", "global"))
    if not all(hasattr(data, split) for split in ("train", "val", "test")):
        raise ValueError("data must be a DatasetSplits from wb.load_dataset (train, val and test splits)")
    check_train_options(train_options, taken=("step_hook",))  # the rewind's save is this run's step hook
    batch_size = train_options.get("batch_size", 64)
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    steps = epochs * math.ceil(len(data.train) / batch_size)
    if not _is_int(rewind) or not 0 <= rewind <= steps:
        raise ValueError(f"rewind must be an optimizer step from 0 to {steps} (epochs × batches), got {rewind!r}")
    return 1 - (1 - sparsity) ** (1 / rounds)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}


def rewound(init: nn.Module, state: dict[str, torch.Tensor] | None, masks: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of the dense ``init`` holding ``state`` (its weights at step k; None: as it is), masked by ``masks``."""
    model = deepcopy(init)
    if state is not None:
        model.load_state_dict(state)
    apply_masks(model, masks)
    return model


@torch.no_grad()
def reinitialized(init: nn.Module, seed: int) -> nn.Module:
    """A copy of ``init`` with every module that has ``reset_parameters`` (linear, conv, norm layers) redrawn."""
    model = deepcopy(init)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model


def random_masks(masks: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Masks keeping as many weights in each tensor as ``masks`` do, at positions drawn at random."""
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for name, mask in masks.items():
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[torch.randperm(mask.numel(), generator=generator)[: int(mask.sum())]] = True
        result[name] = flat.view(mask.shape)
    return result


def _histograms(model: nn.Module, names) -> dict:
    """``weight_histogram`` of each weight in ``names`` as the model computes it (masked where pruned)."""
    weights = {}
    for name in names:
        module, _, leaf = name.rpartition(".")
        weights[name] = weight_histogram(getattr(model.get_submodule(module), leaf))
    return weights


def lottery_ticket(
    name_or_model: str | nn.Module,
    data,
    sparsity: float = 0.8,
    *,
    rounds: int = 5,
    rewind: int = 0,
    epochs: int = 10,
    lr: float = 3e-3,
    scope: str = "local",
    seed: int = 0,
    progress: bool = True,
    train_options: dict | None = None,
    **prune_options,
) -> LotteryHistory:
    """Find a winning ticket at ``sparsity`` in ``rounds`` rounds of train → prune → rewind, with its controls.

    Args:
        name_or_model: a name from ``wb.MODELS`` (built afresh after seeding with ``seed``) or a dense model at
            its initialization (copied; the given model is left untouched).
        data: a ``DatasetSplits``: trains on ``.train``, records ``.val`` and ``.test`` accuracies.
        sparsity: the final fraction of the pruned layers' weights removed; each round removes the same share
            ``p = 1 - (1 - sparsity) ** (1 / rounds)`` of the weights still there (round r keeps ``(1 - p) ** r``).
        rounds: pruning rounds (each trains the ticket and both controls once).
        rewind: the optimizer step whose weights the survivors are reset to: 0 (Frankle & Carbin 2019) or a
            small k (Frankle et al. 2020), at most ``epochs`` × batches per epoch.
        epochs, lr: each training (AdamW, cosine-decayed from ``lr``; seeded with ``seed``, round r with
            ``seed + r``; the ticket and its controls of one round see the same data order).
        scope: "local" (each layer loses the same share) or "global" (one magnitude ranking across layers).
        progress: one ``tqdm`` bar over the rounds.
        train_options: more keyword arguments of ``wb.train`` (``batch_size``, ``weight_decay``, ``augment``,
            ``device``, ``loss_hook``).
        **prune_options: more of ``wb.Pruner`` (``exclude``: layers left dense).

    Returns:
        A ``LotteryHistory``: per round the sparsity, the ticket's masks and the val/test accuracies of the ticket,
        the re-initialized control and the random-mask control; ``.plot()`` draws them.
    """
    train_options = dict(train_options or {})
    rate = _check(name_or_model, data, sparsity, rounds, rewind, epochs, lr, scope, train_options)
    if isinstance(name_or_model, str):
        seed_everything(seed)
        init, name = build_model(name_or_model), name_or_model
    else:
        init, name = deepcopy(name_or_model), type(name_or_model).__name__
    pruned = Pruner(init, "magnitude", "unstructured", scope, **prune_options).names  # checks the options up front
    saved = {0: _cpu_state(init)}

    def save_at_rewind(model: nn.Module, step: int) -> None:
        if step == rewind:
            saved[rewind] = _cpu_state(model)

    trained = deepcopy(init)
    dense = train(
        trained, data, epochs=epochs, lr=lr, seed=seed, progress=False, step_hook=save_at_rewind, **train_options
    )
    state = saved[rewind]
    history = LotteryHistory(
        name,
        rate,
        rewind,
        scope,
        evaluate(trained, data.val),
        evaluate(trained, data.test),
        state,
        epochs=epochs,
        lr=lr,
        seed=seed,
        dense_loss=dense.train_loss[-1],
        dense_histograms=_histograms(trained, pruned),
        dataset=getattr(data, "name", ""),
    )
    bar = tqdm(range(1, rounds + 1), desc="lottery ticket", disable=not progress)
    for index in bar:
        start = time.perf_counter()
        target = 1 - (1 - rate) ** index
        pruner = Pruner(trained, "magnitude", "unstructured", scope, compose=True, **prune_options)
        masks = {key: mask.cpu() for key, mask in pruner.masks(target).items()}
        models = {
            "ticket": rewound(init, state, masks),
            "reinit": rewound(reinitialized(init, seed + 10_000 + index), None, masks),
            "random_mask": rewound(init, state, random_masks(masks, seed + 20_000 + index)),
        }
        val, test, losses = {}, {}, {}
        for run, model in models.items():
            losses[run] = train(model, data, epochs=epochs, lr=lr, seed=seed + index, progress=False, **train_options)
            val[run], test[run] = evaluate(model, data.val), evaluate(model, data.test)
        trained = models["ticket"]
        seconds = time.perf_counter() - start
        round_ = LotteryRound(index, report_from_masks(masks).sparsity, masks, val, test, seconds)
        round_.loss, round_.histograms = losses["ticket"].train_loss[-1], _histograms(trained, masks)
        history.rounds.append(round_)
        bar.set_postfix(sparsity=f"{history.rounds[-1].sparsity:.1%}", ticket=f"{test['ticket']:.1%}")
    return history
