"""Does shrinking pay? FLOPs and CPU latency of dense vs masked vs shrunk models, and what a shrink costs.

For the cnn (filters) and the transformer (heads and MLP neurons) at 25/50/75 % of each dependency
group's units, the same units are masked (``wb.prune(..., coupled=True)``) and removed
(``wb.shrink``); the three models are timed interleaved in one run (``measure.compare_latency``).
Speedup efficiency = latency speedup ÷ FLOPs reduction (1.0: time fell as much as FLOPs did).
Then the time ``wb.shrink_with_report`` takes on each shipped model: cold (first call in a fresh
interpreter) and warm (after one call has warmed ``torch.export`` up).

Run: .venv/bin/python benchmarks/shrink_speedup.py [--threads N] [--min-run-time S] [--profile]
(--profile: only where the time goes, per op, dense vs shrunk at batch 256 and 50 %)
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time

import torch

import workbench as wb
from workbench.measure import compare_latency, flops
from workbench.structure.shrink import default_inputs

CASES = (("cnn", "filter"), ("transformer", None))  # None: every prunable group (heads and MLP neurons)
SHRINK_PATTERNS = {"mlp": "neuron", "cnn": "filter", "transformer": None}
COLD = """
import json, sys, time, workbench as wb
model = wb.pretrained(sys.argv[1])
start = time.perf_counter()
_, report = wb.shrink_with_report(model, sparsity=0.5, pattern=json.loads(sys.argv[2]))
wall = time.perf_counter() - start
timings = {"trace": report.graph.trace_seconds, "group": report.graph.group_seconds, "shrink": report.seconds["shrink"]}
print(json.dumps({"wall": wall, **timings}))
"""


def speed_rows(threads: int, min_run_time: float, rounds: int, sparsities, batches):
    """One row per (model, sparsity, batch): sizes, FLOPs reduction, interleaved latencies, speedup, efficiency."""
    for name, pattern in CASES:
        dense = wb.pretrained(name)
        for sparsity in sparsities:
            masked = copy.deepcopy(dense)
            wb.prune(masked, sparsity=sparsity, criterion="magnitude", pattern=pattern, coupled=True)
            small = wb.shrink(masked)
            for batch in batches:
                inputs = default_inputs(dense, batch)
                with torch.no_grad():
                    error = (small(*inputs) - masked(*inputs)).abs().max().item()
                reduction = flops(dense, inputs) / flops(small, inputs)
                timed = compare_latency(
                    {"dense": dense, "masked": masked, "shrunk": small},
                    inputs,
                    device="cpu",
                    threads=threads,
                    min_run_time=min_run_time,
                    rounds=rounds,
                )
                speedup = timed["dense"].median_ms / timed["shrunk"].median_ms
                yield (
                    name,
                    pattern or "heads+neurons",
                    sparsity,
                    batch,
                    wb.count_parameters(dense),
                    wb.count_parameters(small),
                    reduction,
                    timed,
                    speedup,
                    speedup / reduction,
                    error,
                )


def shrink_times(warm_calls: int = 3):
    """(model, cold seconds dict, warm seconds dicts) for every shipped model."""
    for name, pattern in SHRINK_PATTERNS.items():
        cold = subprocess.run(
            [sys.executable, "-c", COLD, name, json.dumps(pattern)], capture_output=True, text=True, check=True
        )
        model = wb.pretrained(name)
        wb.shrink_with_report(model, sparsity=0.5, pattern=pattern)  # warm-up: torch.export's first call
        warm = []
        for _ in range(warm_calls):
            start = time.perf_counter()
            _, report = wb.shrink_with_report(model, sparsity=0.5, pattern=pattern)
            warm.append(
                {
                    "wall": time.perf_counter() - start,
                    "trace": report.graph.trace_seconds,
                    "group": report.graph.group_seconds,
                    "shrink": report.seconds["shrink"],
                }
            )
        yield name, pattern or "all groups", json.loads(cold.stdout), warm


def profile(threads: int, calls: int = 20, top: int = 8) -> None:
    """Self CPU ms per call of the costliest ops, dense vs shrunk, at batch 256 and 50 %."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    torch.set_num_threads(threads)
    for name, pattern in CASES:
        dense = wb.pretrained(name)
        models = {"dense": dense, "shrunk": wb.shrink(dense, sparsity=0.5, pattern=pattern, criterion="magnitude")}
        inputs = default_inputs(dense, 256)
        ms = {}
        for label, model in models.items():
            with torch.no_grad():
                for _ in range(5):
                    model(*inputs)
                with profiler(activities=[ProfilerActivity.CPU]) as prof:
                    for _ in range(calls):
                        model(*inputs)
            ms[label] = {e.key: e.self_cpu_time_total / calls / 1000 for e in prof.key_averages()}
        print(
            f"\n{name}, {threads} threads, batch 256, 50 %: self CPU ms per call\n\n| op | dense | shrunk | ratio "
            "|\n|---|---|---|---|"
        )
        print(
            f"| all | {sum(ms['dense'].values()):.2f} | {sum(ms['shrunk'].values()):.2f} | "
            f"{sum(ms['dense'].values()) / sum(ms['shrunk'].values()):.2f}× |"
        )
        for op in sorted(ms["dense"], key=ms["dense"].get, reverse=True)[:top]:
            after = ms["shrunk"].get(op, 0.0)
            print(
                f"| {op} | {ms['dense'][op]:.2f} | {after:.2f} | "
                f"{ms['dense'][op] / after if after else float('inf'):.2f}× |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads while timing")
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds of timing per model and setting")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds per setting")
    parser.add_argument("--profile", action="store_true", help="only print where the time goes, per op")
    args = parser.parse_args()
    if args.profile:
        return profile(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, CPU; {args.min_run_time:g} s per model in "
        f"{args.rounds} interleaved rounds; latency = median ms of one forward pass\n"
    )
    print(
        "| model | pruned | units removed | batch | params dense → shrunk | FLOPs reduction | dense ms (IQR) | "
        "masked ms (IQR) "
        "| shrunk ms (IQR) | speedup | efficiency | max \\|shrunk − masked\\| |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, pattern, s, batch, before, after, reduction, timed, speedup, efficiency, error in speed_rows(
        args.threads, args.min_run_time, args.rounds, (0.25, 0.5, 0.75), (1, 256)
    ):
        d, m, sh = (f"{timed[k].median_ms:.3g} ({timed[k].iqr_ms:.2g})" for k in ("dense", "masked", "shrunk"))
        print(
            f"| {name} | {pattern} | {s:.0%} | {batch} | {before:,} → {after:,} | {reduction:.2f}× | {d} | {m} | {sh} "
            f"| {speedup:.2f}× | {efficiency:.2f} | {error:.1e} |"
        )
    print(
        "\nshrink time at 50 % (wb.shrink_with_report: wall = all of it, including scoring the units; trace, group "
        "and shrink "
        "are its parts; cold = first call in a fresh interpreter, warm = median of 3 calls after one warm-up)\n"
    )
    print("| model | pattern | | wall (s) | trace (s) | group (s) | shrink (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, pattern, cold, warm in shrink_times():
        med = {key: statistics.median(w[key] for w in warm) for key in cold}
        for label, row in (("cold", cold), ("warm", med)):
            print(
                f"| {name} | {pattern} | {label} | {row['wall']:.2f} | {row['trace']:.3f} | {row['group']:.4f} | "
                f"{row['shrink']:.3f} |"
            )


if __name__ == "__main__":
    main()
