"""What each way of running a pruned model buys: ``compare_modes`` on the shipped models, and CSR's crossover.

Prints, per model and pattern, one row per mode and batch size (latency, speedup over dense with the masks baked
in, largest output difference, stored bytes, FLOPs), then the speedup of a CSR Linear over dense per layer size,
batch and sparsity, and the sparsity from which CSR stays faster. ``--device cuda`` times on a GPU (2:4 runs
there); the default "auto" takes the GPU when there is one.

    python benchmarks/modes.py              # the recorded run (BENCHMARKS.md)
    python benchmarks/modes.py --quick      # a smoke run
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

import workbench as wb
from workbench.crossover import crossover_sparsity, csr_crossover
from workbench.devices import resolve_device
from workbench.measure import compare_modes

CASES = (  # model, what wb.prune gets, example input shape
    ("mlp", {"sparsity": 0.9}, (64,)),
    ("mlp", {"sparsity": None, "pattern": "2:4"}, (64,)),
    ("mlp", {"sparsity": 0.75, "pattern": "block4x4", "exclude": ["fc3"]}, (64,)),
    ("mlp", {"sparsity": 0.5, "pattern": "neuron"}, (64,)),
    ("cnn", {"sparsity": 0.5, "pattern": "filter"}, (1, 8, 8)),
    ("transformer", {"sparsity": 0.9}, (1, 8, 8)),
)
COLUMNS = ["mode", "batch", "latency_ms", "speedup", "max_abs_diff", "bytes", "flops", "note"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    run_time = 0.05 if args.quick else 0.5
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 70)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {name}, {args.threads} thread(s)")
    for model_name, options, shape in CASES[:2] if args.quick else CASES:
        model = wb.pretrained(model_name)
        wb.prune(model, **options)
        pattern = options.get("pattern", "unstructured")
        inputs = torch.randn(256, *shape, generator=torch.Generator().manual_seed(0))
        table = compare_modes(
            model, inputs, device=device, threads=args.threads, min_run_time=run_time, batch_sizes=(1, 64, 256)
        )
        print(f"\n## {model_name}, {pattern} at {options['sparsity'] or 0.5:.0%}")
        shown = table[table["available"]][COLUMNS[:-1]].round({"latency_ms": 3, "speedup": 2})
        print(shown.to_string(index=False))
        for mode, note in table.drop_duplicates("mode")[["mode", "note"]].itertuples(index=False):
            if note:
                print(f"  {mode}: {note}")
    sizes = (256,) if args.quick else (256, 1024)
    crossing = csr_crossover(sizes=sizes, batch_sizes=(1, 64), threads=args.threads, min_run_time=run_time)
    print("\n## CSR Linear vs dense on the CPU: speedup (dense / CSR) by sparsity")
    print(crossing.pivot(index=["size", "batch"], columns="sparsity", values="speedup").round(2).to_string())
    for (size, batch), sparsity in crossover_sparsity(crossing).items():
        verdict = f"is faster from {sparsity:.0%} on" if sparsity is not None else "is never faster, up to 99 %"
        print(f"  {size}×{size}, batch {batch}: CSR {verdict}")


if __name__ == "__main__":
    main()
