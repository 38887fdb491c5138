"""What sparse execution buys, drawn: CSR's speedup over dense against sparsity, one line per layer size and batch.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"size": [256] * 3, "batch": [64] * 3, "sparsity": [0.5, 0.9, 0.99],
    ...                       "speedup": [0.5, 2.0, 9.0]})
    >>> fig = plot_crossover(table)
    >>> line = fig.axes[0].lines[0]
    >>> line.get_label(), line.get_xdata().tolist()
    ('256×256, batch 64', [50.0, 90.0, 99.0])
"""

from __future__ import annotations

from matplotlib.figure import Figure

from .colors import CURRENT, REFERENCE, series_style
from .render import axes_for, ratio_ticks


def plot_crossover(table, ax=None, *, marker_sparsity: float | None = None) -> Figure:
    """Speedup of CSR over dense (log scale; above 1 CSR is faster) against sparsity, from ``csr_crossover``.

    ``marker_sparsity`` draws a vertical line there (the sparsity a view is showing).
    """
    if len(table) == 0:
        raise ValueError("the crossover table is empty")
    fig, ax = axes_for(ax, (5.8, 3.4))
    for index, ((size, batch), group) in enumerate(table.groupby(["size", "batch"])):
        group = group.sort_values("sparsity")
        ax.plot(100 * group["sparsity"], group["speedup"], label=f"{size}×{size}, batch {batch}", **series_style(index))
    ax.axhline(1, color=REFERENCE, linestyle=":", linewidth=1, label="as fast as dense")
    if marker_sparsity is not None:
        ax.axvline(100 * marker_sparsity, color=CURRENT, linewidth=1)
    ax.set_yscale("log")
    ratio_ticks(ax.yaxis, min(table["speedup"].min(), 1), max(table["speedup"].max(), 1))
    ax.set(xlabel="sparsity (%)", ylabel="CSR speedup over dense (×)", title="When sparse kernels pay (CPU)")
    ax.legend(fontsize="small", loc="upper left")
    ax.grid(alpha=0.3, which="both")
    return fig
