"""Re-pruning at a new sparsity: workbench's cached Pruner vs torch.nn.utils.prune.global_unstructured.

Both prune all Linear/Conv weights by global L1 magnitude. torch.nn.utils.prune ranks all weights
again on every call; a workbench Pruner ranked them once, so a new sparsity is a threshold compare.
Each timed call starts from an unpruned copy (copy made in the untimed setup).

Run: .venv/bin/python benchmarks/reprune.py
"""

from __future__ import annotations

import statistics

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune
from torch.utils import benchmark

import workbench as wb

SPARSITIES = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)


def big_mlp() -> nn.Module:
    """About 10.5M weights: 1024 → 2048 → 2048 → 2048 → 10."""
    return wb.build_model("mlp", in_features=1024, hidden=(2048, 2048, 2048), num_classes=10)


def layer_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def time_once(stmt: str, setup: str, env: dict) -> float:
    return benchmark.Timer(stmt=stmt, setup=setup, globals=env).timeit(number=1).median


def compare(name: str, model: nn.Module) -> tuple[str, int, float, float, float]:
    env = {"copy": __import__("copy"), "base": model, "torch_prune": torch_prune, "layer_weights": layer_weights}
    torch_times = [
        time_once(
            f"torch_prune.global_unstructured(params, pruning_method=torch_prune.L1Unstructured, amount={s})",
            "m = copy.deepcopy(base); params = layer_weights(m)",
            env,
        )
        for s in SPARSITIES
    ]
    ours = wb.Pruner(__import__("copy").deepcopy(model), "magnitude", "unstructured", "global")
    env["pruner"] = ours
    apply_times = [time_once(f"pruner.apply({s})", "", env) for s in SPARSITIES]
    mask_times = [time_once(f"pruner.masks({s})", "", env) for s in SPARSITIES]
    weights = sum(m.weight.numel() for m, _ in layer_weights(model))
    return name, weights, statistics.median(torch_times), statistics.median(apply_times), statistics.median(mask_times)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; median over sparsities {SPARSITIES}\n")
    print(
        "| model | weights | torch global_unstructured (ms) | Pruner.apply (ms) | Pruner.masks (ms) | speedup apply "
        "| speedup masks |"
    )
    print("|---|---|---|---|---|---|---|")
    models = {name: wb.pretrained(name) for name in ("mlp", "cnn", "transformer")}
    models["mlp 10M"] = big_mlp()
    for name, model in models.items():
        _, weights, torch_s, apply_s, mask_s = compare(name, model)
        print(
            f"| {name} | {weights:,} | {1000 * torch_s:.2f} | {1000 * apply_s:.2f} | {1000 * mask_s:.2f} "
            f"| {torch_s / apply_s:.1f}× | {torch_s / mask_s:.1f}× |"
        )


if __name__ == "__main__":
    main()
