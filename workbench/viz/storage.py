"""Where a model's bytes go: one stacked bar per file (values, indices, metadata) as a share of the dense
``torch.save`` file, and the entropy bound as a dashed line (``workbench.storage_report``).

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> _ = wb.prune(model, sparsity=0.9)
    >>> figure = plot_storage(wb.storage_report(model))
    >>> [label.get_text() for label in figure.axes[0].get_xticklabels()][:3]
    ['torch.save\\ndense', 'torch.save\\nmasked', 'sparse\\nauto']
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..storage_report import BOUND, PARTS, StorageReport
from .colors import REFERENCE, STORAGE_PARTS
from .render import axes_for


def plot_storage(report: StorageReport, ax=None, title: str | None = None) -> Figure:
    """Stacked bars of each file's values, indices and metadata (% of the dense file); the entropy bound dashed.
    A sparse encoding that does not fit the model (``nm`` on an unstructured mask) is marked "does not fit"."""
    figure, ax = axes_for(ax, (7.5, 3.6))
    files = [(name, sizes) for name, sizes in report.files.items() if name != BOUND]
    dense = report.files["torch.save dense"]["total"]
    x = np.arange(len(files))
    bottom = np.zeros(len(files))
    for part in PARTS:
        heights = np.array([100 * sizes[part] / dense if sizes else 0.0 for _, sizes in files])
        ax.bar(x, heights, bottom=bottom, color=STORAGE_PARTS[part], label=part, width=0.7)
        bottom += heights
    for position, (name, sizes) in zip(x, files):
        text = f"{report.ratio(name):.1%}" if sizes else "does not fit"
        ax.annotate(text, (position, bottom[position]), xytext=(0, 2), textcoords="offset points", ha="center")
    bound = 100 * report.ratio(BOUND)
    ax.axhline(bound, color=REFERENCE, linestyle="--", linewidth=1, label=f"entropy bound ({bound:.1f}%)")
    ax.set_xticks(x, [name.replace(" ", "\n", 1) for name, _ in files])
    ax.set(ylabel="% of the dense torch.save file", ylim=(0, 1.12 * max(bottom.max(), bound)))
    ax.legend(fontsize="small", loc="upper right")
    if title:
        ax.set_title(title)
    return figure
