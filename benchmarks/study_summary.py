"""Summarize a study table as Markdown: the seconds a point takes, the best criterion of each model and pattern at
every sparsity, the latency of the pruned models relative to the dense ones, and, given a second table of the same
study (``--compare``), whether both executors computed the same numbers.

The best criterion is the one with the highest test accuracy after fine-tuning, averaged over seeds; the cell
reads "accuracy % criterion". Relative latency is the pruned (shrunk, for filter) model's CPU latency divided by
the dense model's, timed interleaved in the same point; the cell is the median over criteria and seeds.
``--compare`` matches rows by their settings and reports every accuracy, parameter and FLOP count that differs,
and the median ratio of the two tables' latencies.

Run: .venv/bin/python benchmarks/study_summary.py [TABLE.csv | compression] [--compare OTHER.csv]
"""

from __future__ import annotations

import argparse

import pandas as pd

import workbench as wb
from workbench.studies import SETTINGS, best_methods

SAME = ["status", "accuracy_dense", "accuracy_pruned", "accuracy_finetuned", "achieved_sparsity", "params", "flops"]


def best_table(table: pd.DataFrame) -> str:
    best = best_methods(table)
    sparsities = sorted(best["sparsity"].unique())
    lines = [
        "| model | pattern | dense | " + " | ".join(f"{s:.0%}" for s in sparsities) + " |",
        "|---|---|---|" + "---|" * len(sparsities),
    ]
    dense = table.groupby("model", sort=False)["accuracy_dense"].first()
    for (model, pattern), rows in best.groupby(["model", "pattern"], sort=False):
        cells = rows.set_index("sparsity")
        text = [f"{100 * cells.loc[s, 'accuracy_finetuned']:.1f} {cells.loc[s, 'criterion']}" for s in sparsities]
        lines.append(f"| {model} | {pattern} | {100 * dense[model]:.1f} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def seconds_table(table: pd.DataFrame) -> str:
    lines = ["| model | points run | seconds per point (mean) | (median) | not applicable |", "|---|---|---|---|---|"]
    for model, rows in table.groupby("model", sort=False):
        ran = rows.loc[rows["status"] == "ok", "seconds"]
        refused = int((rows["status"] == "not applicable").sum())
        lines.append(f"| {model} | {len(ran)} | {ran.mean():.2f} | {ran.median():.2f} | {refused} |")
    return "\n".join(lines)


def latency_table(table: pd.DataFrame) -> str:
    done = table[table["status"] == "ok"]
    medians = done.groupby(["model", "pattern", "sparsity"], sort=False)["relative_latency"].median().unstack()
    lines = [
        "| model | pattern | " + " | ".join(f"{s:.0%}" for s in medians.columns) + " |",
        "|---|---|" + "---|" * len(medians.columns),
    ]
    for (model, pattern), row in medians.iterrows():
        lines.append(f"| {model} | {pattern} | " + " | ".join(f"{value:.2f}" for value in row) + " |")
    return "\n".join(lines)


def compare(table: pd.DataFrame, other: pd.DataFrame) -> str:
    keys = list(SETTINGS)
    merged = table.merge(other, on=keys, suffixes=("", "_other"), validate="one_to_one")
    if len(merged) != len(table) or len(merged) != len(other):
        return f"the tables hold different points ({len(table)} and {len(other)} rows, {len(merged)} in common)"
    differ = {c: int((merged[c].fillna(-1) != merged[f"{c}_other"].fillna(-1)).sum()) for c in SAME}
    ok = merged["status"] == "ok"
    ratio = (merged.loc[ok, "latency_ms_other"] / merged.loc[ok, "latency_ms"]).median()
    verdict = "identical" if not any(differ.values()) else "DIFFERENT"
    counts = ", ".join(f"{column} {count}" for column, count in differ.items())
    return (
        f"{len(merged)} points matched by settings: {verdict} (values that differ: {counts}); "
        f"median latency ratio other/first {ratio:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", nargs="?", default="compression", help="a study CSV or a shipped study's name")
    parser.add_argument("--compare", default=None, help="a second table of the same study (another executor)")
    args = parser.parse_args()
    table = wb.load_study(args.table)
    counts = table["status"].value_counts().to_dict()
    print(f"{len(table)} points: {counts}; {table['seconds'].sum() / 60:.1f} min of point time in all\n")
    print(seconds_table(table) + "\n")
    print(best_table(table) + "\n")
    print(latency_table(table))
    if args.compare:
        print("\n" + compare(table, wb.load_study(args.compare)))


if __name__ == "__main__":
    main()
