"""The trade-off table the dashboard and notebook 10 show: accuracy, latency and file size of the shipped mlp and
cnn pruned unstructured (50–95 %), 2:4 and per-layer filter (neuron) 50–95 %, magnitude criterion, each fine-tuned
3 epochs, run dense, masked, CSR, 2:4 semi-structured (CUDA only) and shrunk, timed with one thread at batch 64.

Prints, per model and device, each pattern × mode's latency relative to the dense model timed beside it and its
file as a share of the dense file, at every sparsity; ``--out`` writes the tidy table (``wb.tradeoff``'s columns).

Run: .venv/bin/python benchmarks/tradeoff.py [--min-run-time S] [--out workbench/recorded/tradeoff.csv]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from workbench.tradeoff import tradeoff

EXCLUDE = {"cnn": ("stem.0",)}  # the cnn's 1-channel stem has no groups of 4 inputs for 2:4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds of timing per mode and point")
    parser.add_argument("--out", help="write the table as CSV here")
    args = parser.parse_args()
    tables = []
    for name in args.models:
        start = time.perf_counter()
        table = tradeoff(name, exclude=EXCLUDE.get(name, ()), min_run_time=args.min_run_time)
        print(f"{name}: {len(table)} rows in {time.perf_counter() - start:.0f} s")
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    shown = table[table["available"]].assign(
        accuracy=lambda t: (100 * t["accuracy"]).round(1),
        latency=lambda t: t["relative_latency"].round(2),
        file=lambda t: t["file_share"].round(3),
    )
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        for (name, device), rows in shown.groupby(["model", "device"], sort=False):
            print(f"\n{name} on {device} (threads {int(rows['threads'].iloc[0])}, batch {int(rows['batch'].iloc[0])})")
            print("accuracy % (fine-tuned) by pattern and sparsity:")
            print(rows.pivot_table(index="sparsity", columns="pattern", values="accuracy", aggfunc="first"))
            print("latency ÷ dense (timed side by side):")
            print(rows.pivot_table(index=["pattern", "sparsity"], columns="mode", values="latency", aggfunc="first"))
            print("file ÷ dense file:")
            print(rows.pivot_table(index=["pattern", "sparsity"], columns="mode", values="file", aggfunc="first"))
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
