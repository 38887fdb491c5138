"""Lottery tickets on digits (mlp) and mnist1d (mlp1d): ticket vs controls over seeds, and the first layer's masks.

Prints, per dataset, the test accuracy (mean ± std over seeds) of the winning ticket, the same masks with a random
re-initialization, and random masks, at every round's sparsity; then how the ticket's first layer keeps weights per
input position: the Spearman correlation of the share kept per input with the mutual information between that input
and the label, against random masks of the same size. ``--save DIR`` writes every history
(``lottery_<model>_seed<n>.pt``); the first seed's ship as ``workbench/recorded/lottery_<model>.pt``.

    python benchmarks/lottery.py                      # the recorded run (BENCHMARKS.md)
    python benchmarks/lottery.py --quick              # a smoke run
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

import workbench as wb
from workbench.data import label_information
from workbench.lottery import RUNS
from workbench.zoo import shift_augment

# Each dataset's recipe: the shipped checkpoint's optimizer settings with fewer epochs per training, since every
# round trains three networks.
SETUPS = {
    "digits": {"model": "mlp", "sparsity": 1 - 0.8**12, "rounds": 12, "epochs": 10, "lr": 3e-3, "train_options": {}},
    "mnist1d": {
        "model": "mlp1d",
        "sparsity": 1 - 0.7**8,
        "rounds": 8,
        "epochs": 30,
        "lr": 5e-3,
        "train_options": {"weight_decay": 1e-2, "augment": shift_augment(3)},
    },
}


def run(dataset: str, seeds: list[int], quick: bool) -> list[wb.LotteryHistory]:
    setup = dict(SETUPS[dataset])
    model = setup.pop("model")
    if quick:
        setup.update(rounds=2, epochs=1, sparsity=0.5)
    data = wb.load_dataset(dataset)
    histories = []
    for seed in seeds:
        start = time.perf_counter()
        history = wb.lottery_ticket(model, data, seed=seed, progress=False, **setup)
        print(f"{dataset} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
        histories.append(history)
    return histories


def accuracy_table(histories: list[wb.LotteryHistory]) -> pd.DataFrame:
    rows = []
    for seed, history in enumerate(histories):
        for run_name, (sparsities, accuracies) in history.curves("test").items():
            rows += [
                {"seed": seed, "run": run_name, "kept %": round(100 * (1 - s), 1), "acc": 100 * a}
                for s, a in zip(sparsities, accuracies)
            ]
    table = pd.DataFrame(rows).groupby(["kept %", "run"])["acc"].agg(["mean", "std"]).unstack("run")
    cells = {
        run: [f"{m:.1f} ± {s:.1f}" for m, s in zip(table["mean"][run], table["std"][run].fillna(0))] for run in RUNS
    }
    return pd.DataFrame(cells, index=table.index).sort_index(ascending=False)


def input_structure(histories: list[wb.LotteryHistory], dataset: str, shuffles: int = 100) -> str:
    """Spearman ρ between the share of fc1's weights kept per input and the input's information about the label:
    for the tickets' last round, and for random masks of the same size (the random-mask control's kind)."""
    information = label_information(wb.load_dataset(dataset))
    tickets = [spearmanr(h.kept_per_input("fc1.weight")[-1], information).statistic for h in histories]
    generator = torch.Generator().manual_seed(0)
    mask = histories[0].rounds[-1].masks["fc1.weight"]
    controls = []
    for _ in range(shuffles):
        shuffled = mask.flatten()[torch.randperm(mask.numel(), generator=generator)].reshape(mask.shape)
        controls.append(spearmanr(shuffled.float().mean(0).numpy(), information).statistic)
    kept = histories[0].kept_per_input("fc1.weight")[-1]
    return (
        f"fc1 kept per input vs the input's mutual information with the label: Spearman ρ = {np.mean(tickets):.2f} "
        f"± {np.std(tickets):.2f} over {len(tickets)} seeds; random masks of the same size: {np.mean(controls):.2f} "
        f"± {np.std(controls):.2f} over {shuffles} draws; the last round keeps {100 * kept.min():.1f}–"
        f"{100 * kept.max():.1f} % per input (mean {100 * kept.mean():.1f} %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 epoch, 2 seeds")
    parser.add_argument("--save", type=Path, help="directory for each dataset's first-seed history")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(2 if args.quick else args.seeds))
    pd.set_option("display.width", 160)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, seeds {seeds}")
    for dataset in args.datasets:
        setup = SETUPS[dataset]
        histories = run(dataset, seeds, args.quick)
        epochs = 1 if args.quick else setup["epochs"]
        print(
            f"\n## {dataset} {setup['model']}: {len(histories[0].rounds)} rounds of {histories[0].rate:.0%}, "
            f"{epochs} epochs per training, test accuracy (%), mean ± std over {len(seeds)} seeds"
        )
        print(accuracy_table(histories).to_string())
        print(input_structure(histories, dataset))
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for seed, history in zip(seeds, histories):
                history.save(args.save / f"lottery_{setup['model']}_seed{seed}.pt")


if __name__ == "__main__":
    main()
