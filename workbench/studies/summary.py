"""Read a study table: means over seeds, the best criterion at each sparsity, the Pareto front of accuracy vs cost.

Example:
    >>> import pandas as pd

from .grid import SETTINGS
    >>> table = pd.DataFrame({"latency_ms": [1.0, 2.0, 3.0, 1.5], "accuracy_finetuned": [0.5, 0.9, 0.8, 0.4]})
    >>> pareto_front(table, x="latency_ms", by=()).to_dict("list")
    {'latency_ms': [1.0, 2.0], 'accuracy_finetuned': [0.5, 0.9]}
"""

from __future__ import annotations

import pandas as pd

from .grid import SETTINGS

METHOD = ("criterion", "pattern", "scope", "schedule", "epochs")  # what a method is, beyond the model and sparsity
ACCURACY = "accuracy_finetuned"


def finished(table: pd.DataFrame) -> pd.DataFrame:
    """The rows whose point ran (``status`` "ok"); a ValueError when there are none."""
    done = table[table["status"] == "ok"] if "status" in table else table
    if done.empty:
        raise ValueError("the study table has no finished points (status 'ok') to summarize")
    return done


def seed_means(table: pd.DataFrame, metrics=(ACCURACY,)) -> pd.DataFrame:
    """One row per setting of the finished points, metrics averaged over seeds, with ``<metric>_min``/``_max`` and
    the number of ``seeds``."""
    done = finished(table)
    by = [column for column in SETTINGS if column in done and column != "seed"]
    grouped = done.groupby(by, sort=False, dropna=False)
    means = grouped[list(metrics)].mean()
    for metric in metrics:
        means[f"{metric}_min"] = grouped[metric].min()
        means[f"{metric}_max"] = grouped[metric].max()
    means["seeds"] = grouped.size()
    return means.reset_index()


def best_methods(table: pd.DataFrame, metric: str = ACCURACY) -> pd.DataFrame:
    """The criterion with the best seed-mean ``metric`` for each model, pattern (scope, schedule, epochs) and
    sparsity: one row each, with that mean and the criterion's name."""
    means = seed_means(table, (metric,))
    by = [column for column in SETTINGS if column in means and column not in ("criterion", "seed")]
    best = means.loc[means.groupby(by, sort=False, dropna=False)[metric].idxmax()]
    return best[[*by, "criterion", metric]].reset_index(drop=True)


def pareto_front(table: pd.DataFrame, x: str = "latency_ms", y: str = ACCURACY, by=SETTINGS) -> pd.DataFrame:
    """Points no other point beats on both smaller ``x`` and larger ``y``, sorted by ``x``.

    ``by``: the setting columns to average over seeds first (each setting one point); ``()`` takes rows as they are,
    every column kept.
    """
    columns = [c for c in by if c in table]
    points = seed_means(table, (x, y))[[*[c for c in columns if c != "seed"], x, y]] if columns else table
    points = points.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False], kind="stable")
    keep, best = [], float("-inf")
    for value in points[y]:
        keep.append(value > best)
        best = max(best, value)
    return points[keep].reset_index(drop=True)
