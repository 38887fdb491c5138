"""Slider-move time of every live view (tour, explorer, sensitivity board, shrink lab, replay, trade-off view),
dropdown-change time of the explorer, and the cnn sensitivity scan.

Run: .venv/bin/python benchmarks/slider_updates.py [--moves 40] [--threads N]
Prints Markdown tables for BENCHMARKS.md. All timings on the CPU, with the thread count stated.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import workbench as wb
from workbench.sensitivity import sensitivity
from workbench.widgets.explorer import Explorer
from workbench.widgets.replay import ReplayApp
from workbench.widgets.sensitivity_board import SensitivityBoard
from workbench.widgets.shrink_lab import ShrinkLab
from workbench.widgets.tour import TourApp
from workbench.widgets.tradeoff import TradeoffView


def random_moves(slider, update_ms: list[float], moves: int, rng) -> list[float]:
    """Milliseconds of ``moves`` random slider moves (each to a new value on the slider's grid)."""
    update_ms.clear()
    while len(update_ms) < moves:
        value = round(float(rng.uniform(slider.min, slider.max)) / slider.step) * slider.step
        slider.value = round(value, 4)
    return list(update_ms)


def frame_moves(app: ReplayApp, moves: int, rng) -> list[float]:
    """Random moves of the replay's frame slider."""
    app.update_ms.clear()
    while len(app.update_ms) < moves:
        app.slider.value = int(rng.integers(app.slider.max + 1))
    return list(app.update_ms)


def option_moves(app: TradeoffView, moves: int, rng) -> list[float]:
    """Random moves of a selection slider (a new option each time)."""
    app.update_ms.clear()
    while len(app.update_ms) < moves:
        app.slider.index = int((app.slider.index + rng.integers(1, len(app.slider.options))) % len(app.slider.options))
    return list(app.update_ms)


def board_moves(board: SensitivityBoard, moves: int, rng) -> list[float]:
    """Random moves of a random layer's slider."""
    board.update_ms.clear()
    sliders = list(board.sliders.values())
    while len(board.update_ms) < moves:
        slider = sliders[rng.integers(len(sliders))]
        slider.value = round(float(rng.uniform(0, slider.max)), 2)
    return list(board.update_ms)


def explorer_builds(app: Explorer) -> list[tuple[str, float]]:
    """(choice, ms) of dropdown changes that score a new choice (nothing cached)."""
    rows = []
    for criterion in ("taylor", "snip", "obd", "apoz", "synflow", "fpgm"):
        app.criterion.value = criterion
        rows.append((f"{app.model.value} · {criterion}", app.build_ms[-1]))
    for pattern in ("2:4", "block4x4", "channel"):  # channel: a layer's input columns
        app.pattern.value = pattern
        rows.append((f"{app.model.value} · {app.criterion.value} · {pattern}", app.build_ms[-1]))
    return rows


def row(name: str, values: list[float]) -> str:
    return f"| {name} | {len(values)} | {statistics.median(values):.1f} | {np.percentile(values, 90):.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moves", type=int, default=40, help="random slider moves per view (>= 30)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU\n")
    print("| view (slider move) | moves | median (ms) | p90 (ms) |\n|---|---|---|---|")
    tour = TourApp()
    print(row("tour (mlp)", random_moves(tour.slider, tour.update_ms, args.moves, rng)))
    explorers = {}
    for name in ("mlp", "cnn"):
        explorers[name] = Explorer(name)
        print(
            row(
                f"explorer ({name}, magnitude, unstructured, local)",
                random_moves(explorers[name].slider, explorers[name].update_ms, args.moves, rng),
            )
        )
    start = time.perf_counter()
    board = SensitivityBoard("cnn")
    board_s = time.perf_counter() - start
    print(row("sensitivity board (cnn)", board_moves(board, args.moves, rng)))
    start = time.perf_counter()
    lab = ShrinkLab("cnn", "l1", "filter", progress=False)
    lab_s = time.perf_counter() - start
    print(
        row("shrink lab (cnn, l1, filter; precomputed grid)", random_moves(lab.slider, lab.update_ms, args.moves, rng))
    )
    start = time.perf_counter()
    replay = ReplayApp()
    replay_s = time.perf_counter() - start
    print(row("replay (mlp, cubic; recorded run)", frame_moves(replay, args.moves, rng)))
    start = time.perf_counter()
    tradeoff = TradeoffView(model="cnn")
    tradeoff_s = time.perf_counter() - start
    print(row("trade-off view (cnn; shipped table)", option_moves(tradeoff, args.moves, rng)))
    print(f"\nReplayApp() start-up (records one gradual-pruning run of 4 epochs): {replay_s:.1f} s")
    print(
        "\nShrinkLab('cnn') start-up (10 shrunk models: shrink, accuracy, FLOPs, interleaved latency at batch "
        f"256): {lab_s:.1f} s"
    )

    print(f"\nTradeoffView(model='cnn') start-up (reads the shipped table, draws the figure): {tradeoff_s:.1f} s")

    data, cnn = wb.load_dataset("digits"), wb.pretrained("cnn")
    pruner = wb.Pruner(cnn)
    masks = pruner.masks(0.5)
    accuracy_ms = [1000 * timed(lambda: pruner.accuracy(masks, data.test)) for _ in range(20)]
    print(
        "\nof which `Pruner.accuracy` alone on the cnn (360 test images): median "
        f"{statistics.median(accuracy_ms):.1f} ms\n"
    )

    print("| explorer dropdown change (scores a new choice) | ms |\n|---|---|")
    for choice, ms in explorer_builds(explorers["cnn"]):
        print(f"| {choice} | {ms:.0f} |")

    scans = [timed(lambda: sensitivity(cnn, data.test)) for _ in range(3)]
    layers = len(pruner.targets)
    print(
        f"\ncnn sensitivity scan ({layers} layers × 10 sparsities + baseline = {10 * layers + 1} evaluations on 360 "
        "test images): "
        f"median {statistics.median(scans):.2f} s of 3 runs; SensitivityBoard('cnn') start-up {board_s:.1f} s"
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
