"""When to prune: at initialization, while training, or after training, side by side on one epoch budget.

Every method gets ``epochs`` epochs of training in all, from the same seeded initialization:

* ``snip at init`` / ``synflow ×100 at init``: prune the untrained model (SNIP on one batch; SynFlow
  data-free in 100 rounds), then train the sparse model for the whole budget;
* ``gradual``: train from scratch while a ``GradualPruner`` raises the sparsity on a cubic schedule over
  the first three quarters of the steps (Zhu & Gupta 2017);
* ``one-shot after training``: train dense for half the budget, prune once, fine-tune for the other half;
* ``iterative after training``: train dense for half, then ``iterative_prune`` spends the other half in rounds.

Example:
    >>> import workbench as wb
    >>> rows = compare_timing("mlp", wb.load_dataset("digits"), sparsity=0.9, epochs=4, methods=("snip at init",))
    >>> rows[0]["method"], round(rows[0]["sparsity"], 2)
    ('snip at init', 0.9)
"""

from __future__ import annotations

import time

import torch

from .gradual import GradualPruner
from .iterative import iterative_prune
from .models import build_model
from .pruning import prune
from .reports import check_sparsity, sparsity_report
from .schedules import schedule
from .train import evaluate, train

METHODS = (
    "snip at init",
    "synflow ×100 at init",
    "gradual",
    "one-shot after training",
    "iterative after training",
)


def _run(method: str, model, data, sparsity: float, epochs: int, lr: float, seed: int) -> None:
    half = max(1, epochs // 2)
    if method == "snip at init":
        prune(model, sparsity, "snip", scope="global", data=data.train)
        train(model, data, epochs=epochs, lr=lr, seed=seed, progress=False)
    elif method == "synflow ×100 at init":
        prune(model, sparsity, "synflow", scope="global", iterations=100)
        train(model, data, epochs=epochs, lr=lr, seed=seed, progress=False)
    elif method == "gradual":
        steps = epochs * -(-len(data.train) // 64)  # wb.train's default batch of 64
        s = schedule("cubic", 0.0, sparsity, 0, int(0.75 * steps), max(1, steps // 40))
        train(model, data, epochs=epochs, lr=lr, seed=seed, progress=False, pruner=GradualPruner(model, s))
    elif method == "one-shot after training":
        train(model, data, epochs=half, lr=lr, seed=seed, progress=False)
        prune(model, sparsity, scope="global")
        train(model, data, epochs=epochs - half, lr=lr, seed=seed + 1, progress=False)
    else:
        train(model, data, epochs=half, lr=lr, seed=seed, progress=False)
        rounds = min(4, epochs - half)
        per_round = max(1, (epochs - half) // rounds)
        iterative_prune(model, data, sparsity, rounds=rounds, epochs=per_round, lr=lr, seed=seed, progress=False)


def compare_timing(
    model_name: str,
    data,
    sparsity: float = 0.9,
    epochs: int = 10,
    lr: float = 3e-3,
    seed: int = 0,
    methods=METHODS,
) -> list[dict]:
    """One row per method: its test accuracy and sparsity after the same ``epochs`` of training, and its time."""
    sparsity = check_sparsity(sparsity)
    if unknown := [m for m in methods if m not in METHODS]:
        raise ValueError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 2:
        raise ValueError(f"epochs must be a whole number >= 2 (the budget is split in halves), got {epochs!r}")
    rows = []
    for method in methods:
        torch.manual_seed(seed)
        model = build_model(model_name, num_classes=data.num_classes)
        start = time.perf_counter()
        _run(method, model, data, sparsity, epochs, lr, seed)
        rows.append(
            {
                "method": method,
                "sparsity": sparsity_report(model).sparsity,
                "accuracy": evaluate(model, data.test),
                "seconds": time.perf_counter() - start,
            }
        )
    return rows
