"""The explorer's figure: mask images, |w| histogram with its cut, per-layer sparsity bars, accuracy curve.

Built once per choice; ``update`` changes only data, and ``png`` redraws only those artists.

Example:
    >>> import numpy as np, torch
    >>> masks = {"fc1.weight": torch.ones(4, 3, dtype=torch.bool), "fc2.weight": torch.ones(2, 4, dtype=torch.bool)}
    >>> view = ExplorerFigure(masks, torch.randn(4, 3), "fc1.weight", np.array([0.0]), np.array([0.9]), 0.9)
    >>> view.png()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from ..reports import SparsityReport, report_from_masks
from .colors import CURRENT, CURVE, REFERENCE
from .pruning import bin_index, draw_layer_sparsity, draw_mask, draw_weight_histogram, mask_image
from .render import DPI, BlitRenderer

SHOWN_MASKS = 4


class ExplorerFigure:
    """Up to four mask images; |w| histogram of the largest layer (all vs kept); per-layer sparsity; accuracy curve."""

    def __init__(
        self,
        masks: dict[str, torch.Tensor],
        weights: torch.Tensor,
        hist_name: str,
        curve_x: np.ndarray,
        curve_y: np.ndarray,
        baseline: float,
        dpi: int = DPI,
        split_name: str = "val",
    ):
        names = list(masks)
        shown = [
            names[i]
            for i in dict.fromkeys(np.linspace(0, len(names) - 1, min(len(names), SHOWN_MASKS)).round().astype(int))
        ]
        self.figure = Figure(
            figsize=(10, 5.8), dpi=dpi
        )  # fixed margins: a constrained layout would double the build time
        grid = self.figure.add_gridspec(
            2, 12, height_ratios=(1, 1.15), left=0.08, right=0.97, top=0.95, bottom=0.2, hspace=0.5, wspace=3.2
        )
        span = 12 // len(shown)
        self.images, self.kernel_lines = {}, []
        for column, name in enumerate(shown):
            ax = self.figure.add_subplot(grid[0, column * span : (column + 1) * span])
            mask = masks[name]
            image, *lines = draw_mask(ax, mask, f"{name.removesuffix('.weight')}  {mask.shape[0]}×{mask[0].numel()}")
            self.images[name] = image
            self.kernel_lines += lines
        hist_ax = self.figure.add_subplot(grid[1, :4])
        self.hist_name = hist_name
        self.kept_stairs, (self.threshold,), edges = draw_weight_histogram(hist_ax, weights, [0.0], masks[hist_name])
        hist_ax.set_title(f"|w| of {hist_name.removesuffix('.weight')}", fontsize=10)
        self.magnitudes = weights.abs().flatten().cpu().numpy()
        self.bins, self.bin_count = bin_index(self.magnitudes, edges), len(edges) - 1
        bar_ax = self.figure.add_subplot(grid[1, 4:8])
        self.bars = list(draw_layer_sparsity(bar_ax, {"": report_from_masks(masks)})[""])
        self.overall = bar_ax.axhline(0, color=CURRENT, linewidth=1.2)
        bar_ax.set_title("sparsity per layer (red: all)", fontsize=10)
        curve_ax = self.figure.add_subplot(grid[1, 8:])
        curve_ax.plot(100 * curve_x, 100 * curve_y, color=CURVE, marker=".")
        curve_ax.axhline(100 * baseline, color=REFERENCE, linestyle=":", linewidth=1)
        (self.marker,) = curve_ax.plot([], [], "o", color=CURRENT, markersize=8)
        curve_ax.set(xlim=(0, 100), ylim=(0, 102), xlabel="sparsity (%)", ylabel=f"{split_name} accuracy (%)")
        curve_ax.set_title("accuracy (dotted: dense)", fontsize=10)
        curve_ax.grid(alpha=0.3)
        dynamic = [
            *self.images.values(),
            *self.kernel_lines,
            self.kept_stairs,
            self.threshold,
            *self.bars,
            self.overall,
            self.marker,
        ]
        self.renderer = BlitRenderer(self.figure, dynamic)

    def update(self, masks: dict[str, torch.Tensor], report: SparsityReport, sparsity: float, accuracy: float) -> None:
        """Show new masks, kept weights, per-layer sparsity and the current point."""
        for name, image in self.images.items():
            image.set_data(mask_image(masks[name]))
        keep = masks[self.hist_name].flatten().cpu().numpy()
        self.kept_stairs.set_data(np.bincount(self.bins[keep], minlength=self.bin_count))
        kept, pruned = self.magnitudes[keep], self.magnitudes[~keep]
        # The line separates pruned from kept |w| only when the criterion ranks by |w| (magnitude, unstructured).
        separable = not (kept.size and pruned.size) or pruned.max() <= kept.min()
        cut = kept.min() if kept.size else self.magnitudes.max()
        self.threshold.set_xdata([cut, cut])
        self.threshold.set_visible(bool(separable))
        for bar, layer in zip(self.bars, report.layers):
            bar.set_height(100 * layer.sparsity)
        self.overall.set_ydata([100 * report.sparsity] * 2)
        self.marker.set_data([100 * sparsity], [100 * accuracy])

    def png(self) -> bytes:
        return self.renderer.png()
