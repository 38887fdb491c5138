"""Pruning over time: iterative pruning to high sparsity, shrinking the MNIST-1D CNN, and methods at a matched budget.

Parts (``--part``; the default ``all`` runs the first three):

* ``iterative``: LeNet-300-100 (``mlp``) on digits, ``wb.iterative_prune`` with its defaults (12 exponential
  rounds × 20 epochs, learning-rate rewinding, global magnitude) to 91.7 %, 95 % and 98 %: test accuracy vs
  dense, wall time, and whether each target (≤ 0.5 / 1 / 2 pp lost, under a minute) is met.
* ``mnist1d-shrink``: the ``cnn1d`` on MNIST-1D, ``wb.shrink`` removes a fraction of every conv's filters
  (dependency groups), then ``wb.train`` fine-tunes the smaller model. Every tried setting is printed; the
  headline row is the one with the best validation accuracy among those that cut FLOPs ≥ 2×.
* ``methods``: one-shot, one-shot + fine-tune, iterative, gradual, SNIP at init, L1-regularized; ``mlp`` on
  digits and ``mlp1d`` on MNIST-1D, mean ± sample std over seeds, at a matched epoch budget.
* ``l1-strength``: the small validation sweep that chose the L1 strength of the ``methods`` part.

Every training run uses ``wb.train``'s defaults (AdamW, lr 3e-3 cosine-decayed to 0, weight decay 1e-4,
batch 64, no augmentation) — the settings ``wb.iterative_prune`` retrains with — except the shrunk cnn1d
fine-tune (batch 100, as the cnn1d recipe). Test accuracy is on the test split; torch runs on one thread.

Run: .venv/bin/python benchmarks/over_time.py [--part iterative|mnist1d-shrink|methods|l1-strength|all]
     [--epochs E] [--seeds N] [--no-98]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import torch

import workbench as wb
from workbench.measure import model_costs

LR, BATCH = 3e-3, 64  # wb.train's defaults, also what wb.iterative_prune retrains with
DATA: dict[str, wb.DatasetSplits] = {}


def data_for(name: str) -> wb.DatasetSplits:
    if name not in DATA:
        DATA[name] = wb.load_dataset(name)
    return DATA[name]


# ---------------------------------------------------------------- part 1: iterative pruning to high sparsity

ITERATIVE_TARGETS = ((0.917, 0.5), (0.95, 1.0), (0.98, 2.0))  # (sparsity, allowed loss in points)


def part_iterative() -> None:
    data = data_for("digits")
    dense = wb.pretrained("mlp")
    dense_accuracy = wb.evaluate(dense, data.test)
    print(
        "\n### iterative: mlp (LeNet-300-100) on digits, `wb.iterative_prune` defaults "
        "(12 exponential rounds × 20 epochs, lr 3e-3 rewound each round, global magnitude)\n"
    )
    print(f"dense test accuracy {dense_accuracy:.2%} (360 test digits: one digit = 0.28 pp)\n")
    print(
        "| sparsity | compression | test accuracy | loss (pp) | target | met | wall time (s) | under a minute |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for sparsity, allowed in ITERATIVE_TARGETS:
        model = copy.deepcopy(dense)
        start = time.perf_counter()
        wb.iterative_prune(model, data, sparsity=sparsity, progress=False)
        seconds = time.perf_counter() - start
        accuracy = wb.evaluate(model, data.test)
        reached = wb.sparsity_report(model).sparsity
        loss = 100 * (dense_accuracy - accuracy)
        print(
            f"| {reached:.1%} | {1 / (1 - reached):.0f}× | {accuracy:.2%} | {loss:.2f} | ≤ {allowed:g} pp "
            f"| {'yes' if loss <= allowed + 1e-9 else 'no'} | {seconds:.1f} | {'yes' if seconds < 60 else 'no'} |",
            flush=True,
        )


# ---------------------------------------------------------------- part 2: shrink the MNIST-1D CNN

SHRINK_TRIALS = (  # (fraction of each conv's filters removed, criterion, fine-tune epochs, lr)
    (0.3, "l1", 30, 3e-3),
    (0.3, "l1", 60, 3e-3),
    (0.3, "taylor", 30, 3e-3),
    (0.3, "taylor", 60, 3e-3),
    (0.4, "taylor", 60, 3e-3),
)


def part_shrink() -> None:
    data = data_for("mnist1d")
    dense = wb.pretrained("cnn1d")
    x = torch.zeros(1, 1, 40)
    dense_costs = model_costs(dense, x)
    dense_test, dense_val = wb.evaluate(dense, data.test), wb.evaluate(dense, data.val)
    print(
        "\n### mnist1d-shrink: cnn1d on MNIST-1D, `wb.shrink(model, sparsity=s, pattern='filter', criterion=c)` "
        "then `wb.train(small, data, epochs, lr, batch_size=100)`\n"
    )
    print(
        f"dense: {dense_costs.params:,} parameters, {dense_costs.flops:,} FLOPs at batch 1 (input (1, 1, 40)), "
        f"test accuracy {dense_test:.2%}, val {dense_val:.2%} (1,000 test signals: one = 0.1 pp)\n"
    )
    print(
        "| filters removed | criterion | fine-tune | params | FLOPs | FLOPs cut | test acc shrunk "
        "| test acc fine-tuned | val acc fine-tuned | loss (pp) | ≤ 1 pp | fine-tune time (s) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for sparsity, criterion, epochs, lr in SHRINK_TRIALS:
        small = wb.shrink(dense, sparsity=sparsity, pattern="filter", criterion=criterion, data=data.train)
        costs = model_costs(small, x)
        before = wb.evaluate(small, data.test)
        start = time.perf_counter()
        wb.train(small, data, epochs=epochs, lr=lr, batch_size=100, seed=0, progress=False)
        seconds = time.perf_counter() - start
        after, val = wb.evaluate(small, data.test), wb.evaluate(small, data.val)
        cut = dense_costs.flops / costs.flops
        loss = 100 * (dense_test - after)
        rows.append((val, cut, sparsity, criterion, epochs, lr, costs, after, loss))
        print(
            f"| {sparsity:.0%} | {criterion} | {epochs} ep, lr {lr:g} | {costs.params:,} | {costs.flops:,} "
            f"| {cut:.2f}× "
            f"| {before:.2%} | {after:.2%} | {val:.2%} | {loss:.1f} | {'yes' if loss <= 1 + 1e-9 else 'no'} "
            f"| {seconds:.1f} |",
            flush=True,
        )
    val, cut, sparsity, criterion, epochs, lr, costs, after, loss = max(r for r in rows if r[1] >= 2)
    print(
        f"\nheadline (best validation accuracy among FLOPs cut ≥ 2×): {sparsity:.0%} of filters by {criterion}, "
        f"{epochs} epochs: {dense_costs.flops:,} → {costs.flops:,} FLOPs ({cut:.2f}×), "
        f"{dense_costs.params:,} → {costs.params:,} parameters, test {dense_test:.2%} → {after:.2%} "
        f"({loss:.1f} pp; target ≤ 1 pp {'met' if loss <= 1 + 1e-9 else 'missed'})"
    )
    # Control: the headline's shape, freshly initialized, trained as long as the headline was fine-tuned.
    shape = wb.shrink(dense, sparsity=sparsity, pattern="filter", criterion=criterion, data=data.train)
    torch.manual_seed(0)
    scratch = wb.build_model(
        "cnn1d", widths=tuple(m.out_channels for m in shape.features if hasattr(m, "out_channels"))
    )
    assert model_costs(scratch, x).params == costs.params  # the same architecture
    wb.train(scratch, data, epochs=epochs, lr=lr, batch_size=100, seed=0, progress=False)
    print(
        f"control: the same shrunk shape from a fresh init, trained {epochs} epochs the same way: "
        f"test {wb.evaluate(scratch, data.test):.2%}"
    )


# ---------------------------------------------------------------- part 3: methods at a matched epoch budget

METHODS = (
    "one-shot",
    "one-shot + fine-tune",
    "iterative",
    "gradual",
    "prune at init (SNIP)",
    "L1 proximal + cut + fine-tune",
)
L1_STRENGTH = {"digits": 0.01, "mnist1d": 0.1}  # chosen by --part l1-strength (validation accuracy at 90 %)
ITERATIVE_ROUNDS = 4


def run_method(method: str, name: str, data, sparsity: float, seed: int, epochs: int, strength: float | None = None):
    """Prune ``name`` to ``sparsity`` by ``method`` within ``epochs`` epochs of training; return the model."""
    if method == "prune at init (SNIP)":
        torch.manual_seed(seed)
        model = wb.build_model(name)
        wb.prune(model, sparsity, "snip", scope="global", data=data.train)
        wb.train(model, data, epochs=epochs, seed=seed, progress=False)
        return model
    model = wb.pretrained(name)
    if method in ("one-shot", "one-shot + fine-tune"):
        wb.prune(model, sparsity, "magnitude", scope="global")
        if method == "one-shot + fine-tune":
            wb.train(model, data, epochs=epochs, seed=seed, progress=False)
    elif method == "iterative":
        wb.iterative_prune(
            model,
            data,
            sparsity,
            rounds=ITERATIVE_ROUNDS,
            epochs=epochs // ITERATIVE_ROUNDS,
            seed=100 * seed,
            progress=False,
        )
    elif method == "gradual":
        steps_per_epoch = math.ceil(len(data.train) / BATCH)
        end = round(0.75 * epochs) * steps_per_epoch  # prune over the first 3/4 of training, once an epoch
        schedule = wb.schedule("cubic", initial=0.0, final=sparsity, start=0, end=end, every=steps_per_epoch)
        pruner = wb.GradualPruner(model, schedule, "magnitude", scope="global")
        wb.train(model, data, epochs=epochs, seed=seed, pruner=pruner, progress=False)
    elif method == "L1 proximal + cut + fine-tune":
        regularizer = l1_phase(model, data, seed, epochs, L1_STRENGTH[data.name] if strength is None else strength)
        l1_cut_and_tune(model, regularizer, data, sparsity, seed, epochs)
    else:
        raise ValueError(method)
    return model


def l1_phase(model, data, seed: int, epochs: int, strength: float):
    """The first half of the budget: training with L1's proximal (soft-threshold) step after every optimizer step."""
    regularizer = wb.regularizers.l1(model, strength=strength)
    wb.train(model, data, epochs=epochs // 2, seed=seed, step_hook=regularizer.proximal(LR), progress=False)
    return regularizer


def l1_cut_and_tune(model, regularizer, data, sparsity: float, seed: int, epochs: int) -> None:
    """Mask every weight with |w| at or under the global threshold that reaches ``sparsity``, then fine-tune."""
    norms = torch.cat([v.flatten() for v in regularizer.group_norms(model).values()])
    threshold = torch.kthvalue(norms, round(sparsity * norms.numel())).values.item()
    regularizer.cut(model, threshold)
    wb.train(model, data, epochs=epochs - epochs // 2, seed=seed, progress=False)


def describe_budget(epochs: int) -> str:
    return (
        f"budget {epochs} epochs of training per run: one-shot + fine-tune = {epochs} epochs after pruning; "
        f"iterative = {ITERATIVE_ROUNDS} exponential rounds × {epochs // ITERATIVE_ROUNDS} epochs "
        "(`wb.iterative_prune`, lr rewound each round); gradual = `GradualPruner` from the pretrained model, cubic "
        f"schedule 0 → s over the first {round(0.75 * epochs)} epochs (a pruning step every epoch) of {epochs}; "
        f"SNIP = masks at a fresh init (seeded), then {epochs} epochs from scratch; L1 = {epochs // 2} epochs "
        f"with the proximal step from the pretrained model, cut to s by one global threshold, {epochs - epochs // 2} "
        "epochs of fine-tuning. All prune every Linear weight under one global ranking."
    )


def part_methods(epochs: int, seeds: int, with_98: bool) -> None:
    print(f"\n### methods: {describe_budget(epochs)}\n")
    for dataset, name in (("digits", "mlp"), ("mnist1d", "mlp1d")):
        data = data_for(dataset)
        dense = wb.evaluate(wb.pretrained(name), data.test)
        sparsities = (0.9, 0.95, 0.98) if dataset == "digits" and with_98 else (0.9, 0.95)
        print(
            f"\n{name} on {dataset}: dense test accuracy {dense:.2%}; mean ± sample std over seeds "
            f"{', '.join(map(str, range(seeds)))} (training/fine-tuning seed; also the init for SNIP); "
            f"wall time = mean seconds per run\n"
        )
        print("| method | sparsity | test accuracy | loss (pp) | reached sparsity | wall time (s) |")
        print("|---|---|---|---|---|---|")
        for method in METHODS:
            for sparsity in sparsities:
                accuracies, seconds, reached = [], [], []
                for seed in range(seeds):
                    start = time.perf_counter()
                    model = run_method(method, name, data, sparsity, seed, epochs)
                    seconds.append(time.perf_counter() - start)
                    accuracies.append(wb.evaluate(model, data.test))
                    reached.append(wb.sparsity_report(model).sparsity)
                mean = statistics.mean(accuracies)
                spread = statistics.stdev(accuracies) if seeds > 1 else 0.0
                print(
                    f"| {method} | {sparsity:.0%} | {mean:.2%} ± {100 * spread:.2f} | {100 * (dense - mean):.1f} "
                    f"| {statistics.mean(reached):.1%} | {statistics.mean(seconds):.1f} |",
                    flush=True,
                )


def part_l1_strength(epochs: int) -> None:
    print(
        f"\n### l1-strength: L1 proximal + cut + fine-tune at 90 %, seed 0, budget {epochs} epochs; validation "
        "accuracy, and the share of weights the proximal steps set to exactly zero before the cut (above 90 % the "
        "cut, which masks every |w| at or under its threshold, overshoots the target)\n"
    )
    print("| model | strength | val accuracy | zeros before cut | reached sparsity |\n|---|---|---|---|---|")
    for dataset, name in (("digits", "mlp"), ("mnist1d", "mlp1d")):
        data = data_for(dataset)
        results = []
        for strength in (0.01, 0.03, 0.1, 0.3):
            model = wb.pretrained(name)
            regularizer = l1_phase(model, data, 0, epochs, strength)
            norms = torch.cat([v.flatten() for v in regularizer.group_norms(model).values()])
            zeros = (norms == 0).float().mean().item()
            l1_cut_and_tune(model, regularizer, data, 0.9, 0, epochs)
            val, reached = wb.evaluate(model, data.val), wb.sparsity_report(model).sparsity
            results.append((val, strength, reached))
            print(f"| {name} | {strength:g} | {val:.2%} | {zeros:.1%} | {reached:.1%} |", flush=True)
        _, chosen, _ = max((v, -s, r) for v, s, r in results if r < 0.905)
        print(f"| {name} | chosen (best val that reaches 90 % exactly; used by --part methods) | {-chosen:g} | | |")
        if -chosen != L1_STRENGTH[dataset]:
            print(f"(the methods part uses {L1_STRENGTH[dataset]:g} for {dataset}: update L1_STRENGTH)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--part", choices=("iterative", "mnist1d-shrink", "methods", "l1-strength", "all"), default="all"
    )
    parser.add_argument("--epochs", type=int, default=40, help="matched epoch budget of the methods part")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the methods part")
    parser.add_argument("--no-98", action="store_true", help="methods part: skip 98 %% on digits")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, CPU")
    total = time.perf_counter()
    if args.part in ("iterative", "all"):
        part_iterative()
    if args.part in ("mnist1d-shrink", "all"):
        part_shrink()
    if args.part == "l1-strength":
        part_l1_strength(args.epochs)
    if args.part in ("methods", "all"):
        part_methods(args.epochs, args.seeds, not args.no_98)
    print(f"\nwhole run: {time.perf_counter() - total:.0f} s")


if __name__ == "__main__":
    main()
