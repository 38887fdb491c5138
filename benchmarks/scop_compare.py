"""SCOP vs l1, bn_scale, fpgm (and random filters): filter pruning at equal FLOPs, then the same fine-tuning.

For each model ("cnn" on digits, "cnn1d" on MNIST-1D), criterion and seed, a ``GroupPruner`` scores the
filters' dependency groups once (timed; the time includes tracing the model, the same for every criterion)
and removes the same fraction of every group's filters (local scope). Every criterion therefore yields the
same shapes, hence the same FLOPs and parameters, which the script checks and prints. ``shrink_masked``
builds the smaller model; it is evaluated on the test split, fine-tuned (``wb.fine_tune``: AdamW, constant
lr, batch 64, the seed's shuffle) and evaluated again. The seed also seeds SCOP's minibatches and knockoffs
and the random filters; l1, bn_scale and fpgm are deterministic, so their spread is the fine-tuning's alone.
Mean ± sample std over seeds; torch runs on one thread.

Run: .venv/bin/python benchmarks/scop_compare.py [--quick] [--seeds N] [--epochs E] [--lr LR]
     [--sparsities S ...]
"""

from __future__ import annotations

import argparse
import inspect
import platform
import statistics
import time

import pandas as pd
import torch

import workbench as wb
from workbench.criteria import CRITERIA as CRITERION_REGISTRY
from workbench.measure import flops
from workbench.structure import GroupPruner, shrink_masked

CRITERIA = ("scop", "l1", "bn_scale", "fpgm", "random")  # random: the control any criterion should beat
MODELS = (("cnn", "digits"), ("cnn1d", "mnist1d"))


def run_one(model_name, data, criterion, seed, sparsities, epochs, lr) -> list[dict]:
    """Score once, then for each sparsity: shrink, evaluate, fine-tune, evaluate."""
    dense = wb.pretrained(model_name)
    options = {"seed": seed} if criterion in ("scop", "random") else None
    start = time.perf_counter()
    pruner = GroupPruner(dense, criterion, pattern="filter", data=data, criterion_options=options)
    scoring = time.perf_counter() - start
    rows = []
    for sparsity in sparsities:
        removed, _ = pruner.plan(sparsity)
        small, _ = shrink_masked(dense, pruner.masks_for(removed), pruner.inputs, graph=pruner.graph)
        shrunk_accuracy = wb.evaluate(small, data.test)
        start = time.perf_counter()
        wb.fine_tune(small, data, epochs=epochs, lr=lr, seed=seed, progress=False, lr_schedule="constant")
        rows.append(
            {
                "model": model_name,
                "sparsity": sparsity,
                "criterion": criterion,
                "seed": seed,
                "flops": flops(small, data.test.tensors[0][:1]),
                "params": wb.count_parameters(small),
                "shrunk": shrunk_accuracy,
                "fine-tuned": wb.evaluate(small, data.test),
                "score s": scoring,
                "fine-tune s": time.perf_counter() - start,
            }
        )
    return rows


def scop_defaults() -> dict:
    scop = CRITERION_REGISTRY["scop"]
    parameters = inspect.signature(scop.fn).parameters
    return {name: parameters[name].default for name in scop.options if name != "seed"}


def mean_std(values) -> str:
    values = [100 * v for v in values]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {spread:.2f}"


def table(rows: pd.DataFrame) -> str:
    """One markdown row per (model, sparsity, criterion); FLOPs must agree across criteria."""
    lines = [
        "| model | filters removed | criterion | FLOPs (batch 1) | params | test acc shrunk (%) "
        "| test acc fine-tuned (%) | scoring (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (model, sparsity), block in rows.groupby(["model", "sparsity"], sort=False):
        if block["flops"].nunique() != 1 or block["params"].nunique() != 1:
            raise AssertionError(f"{model} at {sparsity}: criteria differ in FLOPs or parameters")
        for criterion, group in block.groupby("criterion", sort=False):
            lines.append(
                f"| {model} | {sparsity:.0%} | {criterion} | {group['flops'].iloc[0]:,} | {group['params'].iloc[0]:,} "
                f"| {mean_std(group['shrunk'])} | {mean_std(group['fine-tuned'])} | {group['score s'].mean():.2f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed, sparsity 0.5, one fine-tuning epoch")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate (constant)")
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.7])
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.sparsities = 1, 1, [0.5]
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {platform.processor() or platform.machine()}")
    print(
        f"fine-tuning: {args.epochs} epochs, AdamW lr {args.lr:g} constant, batch 64; seeds 0..{args.seeds - 1}; "
        f"SCOP options {scop_defaults()} (seed: the run's)\n"
    )
    rows = []
    started = time.perf_counter()
    for model_name, dataset in MODELS:
        data = wb.load_dataset(dataset)
        dense = wb.pretrained(model_name)
        print(
            f"{model_name} on {dataset}: dense test accuracy {wb.evaluate(dense, data.test):.2%}, "
            f"{flops(dense, data.test.tensors[0][:1]):,} FLOPs, {wb.count_parameters(dense):,} parameters"
        )
        for seed in range(args.seeds):
            for criterion in CRITERIA:
                rows += run_one(model_name, data, criterion, seed, args.sparsities, args.epochs, args.lr)
    print()
    print(table(pd.DataFrame(rows)))
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
