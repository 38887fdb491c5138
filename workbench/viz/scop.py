"""SCOP's selection layers drawn: each filter's real factor β and knockoff factor 1 − β, the pruned filters marked.

Example:
    >>> import torch
    >>> real = torch.tensor([0.9, 0.5, 0.7])
    >>> masks = {"conv.weight": torch.tensor([[True], [False], [True]])}
    >>> fig = plot_scop_factors({"conv": (real, 1 - real)}, masks)
    >>> ax = fig.axes[0]
    >>> ax.get_title()
    'conv: 1 of 3 filters pruned'
    >>> [round(float(bar.get_height()), 2) for bar in ax.containers[0]]  # real factors, lowest importance first
    [0.5, 0.7, 0.9]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .colors import ACCENT, CURRENT, KEPT, REFERENCE

PRUNED_ALPHA = 0.3  # pruned filters' bars fade to this


def _pruned_units(masks: Mapping[str, torch.Tensor] | None, layer: str, units: int) -> np.ndarray:
    """Units whose every weight is masked in ``masks[layer + '.weight']`` (none when the layer has no mask)."""
    mask = None if masks is None else masks.get(f"{layer}.weight")
    if mask is None:
        return np.zeros(units, dtype=bool)
    if mask.shape[0] != units:
        raise ValueError(f"the mask of {layer!r} has {mask.shape[0]} rows but the layer has {units} factors")
    return ~mask.reshape(units, -1).any(1).cpu().numpy()


def plot_scop_factors(
    factors: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    masks: Mapping[str, torch.Tensor] | None = None,
    *,
    sort: bool = True,
) -> Figure:
    """One panel per layer: a bar per filter, its real factor β (from 0) stacked under its knockoff factor 1 − β.

    Args:
        factors: layer name → (real factors, knockoff factors), as ``workbench.criteria.scop.scop_factors`` returns.
        masks: bool masks by weight name (``PruneResult.masks``); a filter whose row is all False is drawn faded
            and marked × as pruned. None: nothing marked.
        sort: order filters by importance, real − knockoff factor (pruned first); False keeps their index order.
    """
    if not factors:
        raise ValueError("no layers to plot: pass {layer: (real factors, knockoff factors)}")
    fig = Figure(figsize=(8, 1.7 * len(factors) + 0.5), layout="constrained")
    axes = fig.subplots(len(factors), 1, squeeze=False)[:, 0]
    for ax, (layer, (real, knockoff)) in zip(axes, factors.items()):
        real = real.detach().cpu().double().numpy()
        knockoff = knockoff.detach().cpu().double().numpy()
        if real.shape != knockoff.shape or real.ndim != 1:
            raise ValueError(f"{layer!r}: real and knockoff factors must be 1-D and of one length")
        pruned = _pruned_units(masks, layer, len(real))
        order = np.argsort(real - knockoff, kind="stable") if sort else np.arange(len(real))
        real, knockoff, pruned = real[order], knockoff[order], pruned[order]
        x = np.arange(len(real))
        alpha = np.where(pruned, PRUNED_ALPHA, 1.0)
        real_bars = ax.bar(x, real, width=0.85, color=KEPT)
        knockoff_bars = ax.bar(x, knockoff, bottom=real, width=0.85, color=ACCENT)
        for bars in (real_bars, knockoff_bars):
            for bar, a in zip(bars, alpha):
                bar.set_alpha(a)
        ax.axhline(0.5, color=REFERENCE, linestyle=":", linewidth=1)
        if pruned.any():
            ax.plot(x[pruned], np.full(pruned.sum(), 1.08), "x", color=CURRENT, markersize=4, label="pruned")
        ax.set(xlim=(-0.7, len(real) - 0.3), ylim=(0, 1.16), ylabel="factor")
        ax.set_xticks([])
        ax.set_title(f"{layer}: {int(pruned.sum())} of {len(real)} filters pruned", fontsize="medium")
    axes[-1].set_xlabel("filters, by real − knockoff factor" if sort else "filters")
    legend = [
        Patch(color=KEPT, label="real factor β"),
        Patch(color=ACCENT, label="knockoff factor 1 − β"),
        Line2D([], [], color=REFERENCE, linestyle=":", label="start (½)"),
        Line2D([], [], color=CURRENT, marker="x", linestyle="", label="pruned"),
    ]
    fig.legend(handles=legend, loc="outside upper center", ncols=4, fontsize="small", frameon=False)
    return fig
