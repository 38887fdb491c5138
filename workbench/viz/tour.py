"""The tour figure: each layer's mask as an image, and accuracy against sparsity with the current point.

Built once; ``update`` only swaps image data, titles and the marker, and ``png`` redraws just those.

Example:
    >>> import numpy as np, torch
    >>> masks = {"fc1.weight": torch.ones(4, 3, dtype=torch.bool)}
    >>> view = TourFigure(masks, np.array([0.0, 0.5]), np.array([0.9, 0.8]))
    >>> view.update(masks, sparsity=0.0, accuracy=0.9)
    >>> view.png()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import rcParams
from matplotlib.figure import Figure

from .colors import CURRENT, CURVE
from .pruning import mask_image, mask_label, pruned_share, show_mask
from .render import DPI, BlitRenderer


class TourFigure:
    """Mask images (one per layer, kept = dark) over an accuracy-vs-sparsity curve."""

    def __init__(self, masks: dict[str, torch.Tensor], sparsities: np.ndarray, accuracies: np.ndarray, dpi: int = DPI):
        self.figure = Figure(figsize=(10, 5.6), dpi=dpi, layout="constrained")
        grid = self.figure.add_gridspec(2, len(masks), height_ratios=(3, 2))
        self.images, self.shares = {}, {}
        for column, (name, mask) in enumerate(masks.items()):
            ax = self.figure.add_subplot(grid[0, column])
            self.images[name] = show_mask(ax, mask)
            # The title's first line is drawn once; its second, the pruned share, is a text of its own on top.
            ax.set_title(f"{mask_label(name, mask)}\n ", fontsize=10)
            self.shares[name] = ax.annotate(
                pruned_share(mask),
                (0.5, 1),
                xycoords="axes fraction",
                xytext=(0, rcParams["axes.titlepad"]),
                textcoords="offset points",
                ha="center",
                va="baseline",
                fontsize=10,
            )
            ax.set_xlabel("input")
            ax.set_ylabel("output" if column == 0 else "")
        self.curve_ax = self.figure.add_subplot(grid[1, :])
        self.curve_ax.plot(100 * sparsities, 100 * accuracies, color=CURVE, marker=".", label="test accuracy")
        (self.marker,) = self.curve_ax.plot([], [], "o", color=CURRENT, markersize=9, label="current")
        self.curve_ax.set_xlabel("sparsity of every layer (%)")
        self.curve_ax.set_ylabel("test accuracy (%)")
        self.curve_ax.set_xlim(0, 100)
        self.curve_ax.set_ylim(0, 102)
        self.curve_ax.grid(alpha=0.3)
        self.curve_ax.legend(loc="lower left")
        self.curve_ax.set_title(" ", fontsize=11)  # placeholder so the layout reserves the title's room
        dynamic = [*self.images.values(), *self.shares.values(), self.marker, self.curve_ax.title]
        self.renderer = BlitRenderer(self.figure, dynamic)

    def update(self, masks: dict[str, torch.Tensor], sparsity: float, accuracy: float) -> None:
        """Show new masks and move the current point; nothing is rebuilt."""
        for name, mask in masks.items():
            self.images[name].set_data(mask_image(mask))
            self.shares[name].set_text(pruned_share(mask))
        self.marker.set_data([100 * sparsity], [100 * accuracy])
        self.curve_ax.set_title(f"sparsity {sparsity:.0%}: accuracy {accuracy:.1%}", fontsize=11)

    def png(self) -> bytes:
        """The current figure as PNG bytes, redrawing only what ``update`` changes."""
        return self.renderer.png()
