"""Latency-aware vs uniform allocation at equal parameter count, timed side by side on this machine.

For each shipped model, ``latency_allocation`` chooses every dependency group's share from measured latency; the
uniform allocation removes the same share of every group. Both shrunk models (and the dense one) are then timed
interleaved, and fine-tuned the same way (3 epochs) to show what each costs in accuracy.

    python benchmarks/latency_allocation.py            # the recorded run (BENCHMARKS.md)
    python benchmarks/latency_allocation.py --quick
"""

from __future__ import annotations

import argparse
import time

import torch

import workbench as wb
from workbench.latency_allocation import latency_allocation
from workbench.measure import compare_latency
from workbench.structure.shrink import default_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn", "cnn1d"])
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run_time = 0.3 if args.quick else 3.0
    print(f"torch {torch.__version__}, CPU, 1 thread, batch {args.batch}, uniform sparsity {args.sparsity:g}")
    for name in args.models:
        start = time.perf_counter()
        model = wb.pretrained(name)
        plan = latency_allocation(model, args.sparsity, pattern=None, batch=args.batch, steps=4 if args.quick else 8)
        chosen = time.perf_counter() - start
        models = {"dense": plan.pruner.plain, "uniform": plan.shrunk(uniform=True), "latency-aware": plan.shrunk()}
        timed = compare_latency(models, default_inputs(model, args.batch), threads=1, min_run_time=run_time, rounds=10)
        data = wb.load_dataset(wb.checkpoint_info(name)["dataset"])
        print(f"\n## {name}: allocation chosen in {chosen:.0f} s")
        print(
            f"{'':<14} {'params':>8} {'ms (median)':>12} {'IQR':>7} {'acc pruned':>11} {'acc fine-tuned':>15}  shares"
        )
        for label, small in models.items():
            pruned = wb.evaluate(small, data.test)
            if label != "dense":
                wb.fine_tune(small, data, epochs=1 if args.quick else 3, seed=0, progress=False)
            shares = "" if label == "dense" else plan.uniform_fractions if label == "uniform" else plan.fractions
            shares = " ".join(f"{gid}:{share:.2f}" for gid, share in dict(shares).items())
            latency = timed[label]
            print(
                f"{label:<14} {sum(p.numel() for p in small.parameters()):>8,} {latency.median_ms:>12.3f} "
                f"{latency.iqr_ms:>7.3f} {pruned:>11.1%} {wb.evaluate(small, data.test):>15.1%}  {shares}"
            )
        ratio = timed["uniform"].median_ms / timed["latency-aware"].median_ms
        print(f"latency-aware is {ratio:.2f}× as fast as uniform at {plan.params:,} vs {plan.uniform_params:,} params")


if __name__ == "__main__":
    main()
