"""The sensitivity board's figure: per-layer sensitivity curves with each layer's chosen sparsity marked, and a
meter of the combined choice's size, FLOPs and accuracy as shares of the dense model.

Built once per scan; ``update`` moves only the markers, the tolerance line and the meter bars.

Example:
    >>> import numpy as np
    >>> from workbench.sensitivity import SensitivityResult
    >>> result = SensitivityResult(np.array([0.0, 0.5]), {"fc1": np.array([0.9, 0.8])}, baseline=0.9)
    >>> view = BoardFigure(result, tolerance=0.01)
    >>> view.update({"fc1": 0.5}, tolerance=0.02, shares=(0.6, 0.6, 0.9))
    >>> view.png()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..sensitivity import SensitivityResult
from .colors import BUDGET
from .pruning import draw_sensitivity
from .render import DPI, BlitRenderer, share_bars

METER = ("nonzero params", "effective FLOPs", "accuracy")


class BoardFigure:
    """Sensitivity curves with each layer's chosen sparsity marked, and a meter of size, FLOPs and accuracy vs dense."""

    def __init__(self, result: SensitivityResult, tolerance: float, dpi: int = DPI):
        self.result = result
        self.figure = Figure(figsize=(10, 4.2), dpi=dpi, layout="constrained")
        grid = self.figure.add_gridspec(1, 3)
        curve_ax = self.figure.add_subplot(grid[0, :2])
        lines, self.floor = draw_sensitivity(curve_ax, result, tolerance)
        self.markers = {
            name: curve_ax.plot([], [], line.get_marker(), color=line.get_color(), markersize=9, markeredgecolor="k")[0]
            for name, line in lines.items()
        }
        curve_ax.set_ylim(0, 102)
        curve_ax.legend(fontsize=7, ncols=2, loc="lower left")
        curve_ax.set_title("each layer alone (dots: your choice)", fontsize=10)
        meter_ax = self.figure.add_subplot(grid[0, 2])
        self.meter = share_bars(meter_ax, METER, BUDGET, "budget of the combined choice")
        self.renderer = BlitRenderer(self.figure, [*self.markers.values(), self.floor, *self.meter])

    def update(self, layer_sparsity: dict[str, float], tolerance: float, shares: tuple[float, float, float]) -> None:
        """Move each layer's marker onto its curve, the tolerance line, and the meter bars (fractions of dense)."""
        for name, marker in self.markers.items():
            sparsity = layer_sparsity[name]
            accuracy = np.interp(sparsity, self.result.sparsities, self.result.accuracies[name])
            marker.set_data([100 * sparsity], [100 * accuracy])
        self.floor.set_ydata([100 * (self.result.baseline - tolerance)] * 2)
        for bar, share in zip(self.meter, shares):
            bar.set_width(100 * share)

    def png(self) -> bytes:
        return self.renderer.png()
