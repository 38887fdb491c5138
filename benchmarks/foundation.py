"""Foundation benchmarks: training time per model, checkpoint load time, tour slider update time.

Run: .venv/bin/python benchmarks/foundation.py [--skip-training]
Prints a Markdown table for BENCHMARKS.md. All timings on the CPU, with the thread count stated.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils import benchmark

import workbench as wb
from workbench.widgets.tour import TourApp
from workbench.zoo import train_checkpoint


def training_times() -> list[tuple[str, float, float]]:
    """(model, seconds, test accuracy) for each shipped recipe, trained into a temporary folder."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in wb.MODELS:
            start = time.perf_counter()
            info = train_checkpoint(name, Path(folder), progress=False)
            rows.append((name, time.perf_counter() - start, info["test_accuracy"]))
    return rows


def load_times() -> list[tuple[str, float]]:
    """(model, median seconds) of ``wb.pretrained(name)``."""
    rows = []
    for name in wb.MODELS:
        timer = benchmark.Timer(stmt="wb.pretrained(name)", globals={"wb": wb, "name": name})
        rows.append((name, timer.blocked_autorange(min_run_time=1.0).median))
    return rows


def tour_update_times(moves: int = 40, seed: int = 0) -> dict[str, list[float]]:
    """Milliseconds per slider move, whole update and its parts, over random moves."""
    app = TourApp()
    rng = np.random.default_rng(seed)
    targets = np.round(rng.uniform(0.0, 0.99, moves), 2)
    parts = {"masks": [], "accuracy": [], "figure update": [], "png render": []}
    app.update_ms.clear()
    for sparsity in targets:
        app.slider.value = float(sparsity)
        stamps = [time.perf_counter()]
        masks = app.sweep.masks(sparsity)
        stamps.append(time.perf_counter())
        accuracy = app.sweep.accuracy(sparsity, masks)
        stamps.append(time.perf_counter())
        app.view.update(masks, sparsity, accuracy)
        stamps.append(time.perf_counter())
        app.view.png()
        stamps.append(time.perf_counter())
        for part, begin, end in zip(parts, stamps, stamps[1:]):
            parts[part].append(1000 * (end - begin))
    full = []
    for _ in range(10):  # the same PNG from a full redraw (what a figure without blitting costs per move)
        start = time.perf_counter()
        app.view.renderer.invalidate()
        app.view.png()
        full.append(1000 * (time.perf_counter() - start))
    return {"whole slider move": list(app.update_ms), **parts, "png render, full redraw (for comparison)": full}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-training", action="store_true", help="skip retraining every shipped model")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU\n")
    if not args.skip_training:
        print("| model | training time (s) | test accuracy |\n|---|---|---|")
        for name, seconds, accuracy in training_times():
            print(f"| {name} | {seconds:.1f} | {accuracy:.2%} |")
        print()
    print("| model | `wb.pretrained` load (ms) |\n|---|---|")
    for name, seconds in load_times():
        print(f"| {name} | {1000 * seconds:.1f} |")
    print()
    times = tour_update_times()
    whole = statistics.median(times["whole slider move"])
    print("| tour slider step | median (ms) | p90 (ms) | share of 100 ms budget |\n|---|---|---|---|")
    for part, values in times.items():
        median, p90 = statistics.median(values), float(np.percentile(values, 90))
        print(f"| {part} | {median:.1f} | {p90:.1f} | {median / 100:.0%} |")
    print(f"\nwhole move = {whole:.1f} ms median over {len(times['whole slider move'])} moves")


if __name__ == "__main__":
    main()
