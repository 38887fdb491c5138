"""Figures of a study table (``wb.study``, ``wb.load_study``): accuracy against sparsity per method, with the spread
over seeds, and the Pareto front of accuracy against latency or size.

Each criterion keeps one colour and marker (``series_style``), each pattern one line style, in every figure.

Example:
    >>> import workbench as wb
    >>> table = wb.load_study("compression")
    >>> fig = plot_accuracy_vs_sparsity(table, model="mlp", criteria=["magnitude", "random"])
    >>> sorted(line.get_label() for line in fig.axes[0].lines)
    ['dense', 'magnitude · filter', 'magnitude · unstructured', 'random · filter', 'random · unstructured']
    >>> fig = plot_pareto(table, x="latency_ms", model="cnn")
    >>> fig.axes[0].get_xlabel()
    'CPU latency (ms per batch of 32)'
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ..studies.summary import ACCURACY, METHOD, finished, pareto_front, seed_means
from .colors import ALL_WEIGHTS, PARETO, REFERENCE, series_style
from .render import axes_for

LINESTYLES = ("-", "--", ":", "-.")
LABELS = {
    "accuracy_finetuned": "test accuracy after fine-tuning (%)",
    "accuracy_pruned": "test accuracy right after pruning (%)",
    "relative_latency": "CPU latency ÷ the dense model's (timed interleaved, batch of {batch})",
    "latency_ms": "CPU latency (ms per batch of {batch})",
    "bytes": "file size, dense (bytes)",
    "sparse_bytes": "size stored as bitmask + nonzeros (bytes)",
    "params": "parameters",
    "nonzeros": "nonzero parameters",
    "flops": "FLOPs per sample",
    "effective_flops": "FLOPs per sample, skipping zero weights",
}


def _select(table: pd.DataFrame, single: str, **chosen) -> pd.DataFrame:
    """Rows with the chosen values (one, a list of them, or None: all); column ``single`` must end with one value."""
    for column, value in chosen.items():
        if value is not None:
            values = [value] if isinstance(value, str) else list(value)
            if unknown := sorted(set(values) - set(table[column])):
                present = ", ".join(map(str, table[column].unique()))
                raise ValueError(f"the table has no {column} {unknown[0]!r}; it has: {present}")
            table = table[table[column].isin(values)]
    if table[single].nunique() > 1:
        present = ", ".join(table[single].unique())
        raise ValueError(f"the table holds several of {single}: choose one with {single}= ({present})")
    return table


def _method_label(row, varying: list[str]) -> str:
    return " · ".join(str(row[column]) for column in varying)


def plot_accuracy_vs_sparsity(
    table: pd.DataFrame, *, model: str | None = None, criteria=None, patterns=None, metric: str = ACCURACY, ax=None
) -> Figure:
    """Mean ``metric`` over seeds against the requested sparsity, one line per method (criterion × pattern, and scope,
    schedule or epochs where they vary), the band between the seeds' lowest and highest; the dense model dotted.

    Args:
        table: a study table; only finished points (``status`` "ok") are drawn.
        model: the model to draw (needed when the table holds several).
        criteria, patterns: the ones to draw (default: all in the table).
        metric: "accuracy_finetuned" or "accuracy_pruned".
    """
    rows = _select(finished(table), "model", model=model, criterion=criteria, pattern=patterns)
    means = seed_means(rows, (metric,)).sort_values("sparsity")
    varying = ["criterion", "pattern"] + [c for c in METHOD[2:] if means[c].nunique() > 1]
    fig, ax = axes_for(ax, (7.5, 4.2))
    criteria_order = list(dict.fromkeys(rows["criterion"]))
    patterns_order = list(dict.fromkeys(rows["pattern"]))
    curves = [curve for _, curve in means.groupby(varying, sort=False)]
    curves.sort(
        key=lambda c: (criteria_order.index(c["criterion"].iloc[0]), patterns_order.index(c["pattern"].iloc[0]))
    )
    for curve in curves:
        first = curve.iloc[0]
        style = series_style(criteria_order.index(first["criterion"]))
        linestyle = LINESTYLES[patterns_order.index(first["pattern"]) % len(LINESTYLES)]
        x = 100 * curve["sparsity"]
        ax.plot(x, 100 * curve[metric], linestyle=linestyle, label=_method_label(first, varying), **style)
        ax.fill_between(x, 100 * curve[f"{metric}_min"], 100 * curve[f"{metric}_max"], color=style["color"], alpha=0.15)
    ax.axhline(100 * rows["accuracy_dense"].mean(), color=REFERENCE, linestyle=":", linewidth=1, label="dense")
    seeds = int(means["seeds"].max())
    ax.set(
        xlabel="sparsity (% of the pruned layers' weights, requested)",
        ylabel=LABELS[metric],
        title=f"{rows['model'].iloc[0]} on {rows['dataset'].iloc[0]}",
    )
    ax.legend(
        title=f"mean of {seeds} seed(s); band: their range",
        title_fontsize="x-small",
        fontsize="x-small",
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        ncols=1 + len(ax.lines) // 16,
    )
    ax.grid(alpha=0.3)
    return fig


def plot_pareto(
    table: pd.DataFrame, *, x: str = "relative_latency", y: str = ACCURACY, model=None, dataset=None, ax=None
) -> Figure:
    """Every finished setting (mean over seeds) as a dot of cost ``x`` against ``y``; the Pareto front (no point is
    cheaper and more accurate) as a line, its points labelled by method and sparsity.

    Args:
        x: a cost column: "relative_latency" (each model's latency ÷ its dense model's, timed interleaved, so a busy
            machine disturbs it less), "latency_ms" (to compare different models), "bytes", "sparse_bytes",
            "params", "nonzeros", "flops", "effective_flops".
        model, dataset: the models (one, a list, or None: all) and the dataset (needed when the table holds several).
    """
    if x not in LABELS or y not in ("accuracy_finetuned", "accuracy_pruned"):
        raise ValueError(f"x must be a cost column ({', '.join(list(LABELS)[2:])}) and y an accuracy, got {x!r}, {y!r}")
    rows = _select(finished(table), "dataset", model=model, dataset=dataset)
    points = seed_means(rows, (x, y))
    front = pareto_front(rows, x, y)
    fig, ax = axes_for(ax, (6.5, 4.2))
    ax.scatter(points[x], 100 * points[y], s=12, color=ALL_WEIGHTS, label="a setting (mean over seeds)")
    ax.plot(front[x], 100 * front[y], "o-", drawstyle="steps-post", color=PARETO, label="Pareto front")
    several = rows["model"].nunique() > 1
    for _, point in front.iterrows():
        method = f"{point['criterion']} · {point['pattern']} {point['sparsity']:g}"
        text = f"{point['model']} {method}" if several else method
        ax.annotate(text, (point[x], 100 * point[y]), fontsize="xx-small", xytext=(4, -8), textcoords="offset points")
    batch = rows["latency_batch"].dropna()
    ax.set(
        xlabel=LABELS[x].format(batch=int(batch.iloc[0]) if len(batch) else "?"),
        ylabel=LABELS[y],
        title=f"{', '.join(rows['model'].unique())} on {rows['dataset'].iloc[0]}",
    )
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3)
    return fig
