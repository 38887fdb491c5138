"""Pruning figures: masks, |w| histograms, per-layer sparsity, sensitivity curves, criterion agreement.

Each ``plot_*`` takes data and returns a ``matplotlib.figure.Figure`` (no pyplot); the ``draw_*``
helpers draw onto given axes and return the artists a live view updates. ``kept_overlap`` and
``rank_correlation`` are the numbers behind the agreement plot.

Example:
    >>> import torch
    >>> fig = plot_masks({"fc1.weight": torch.rand(6, 8) > 0.5, "conv.weight": torch.rand(4, 2, 3, 3) > 0.5})
    >>> len(fig.axes)
    2
    >>> rank_correlation(torch.tensor([1.0, 2, 3]), torch.tensor([3.0, 2, 1]))
    -1.0
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .colors import ACCENT, ALL_WEIGHTS, CURRENT, KEPT, MASK_COLORS, REFERENCE, series_style


def mask_label(name: str, mask: torch.Tensor) -> str:
    """``'fc1  300×64'``: the layer and its matrix shape as drawn."""
    return f"{name.removesuffix('.weight')}  {mask.shape[0]}×{mask[0].numel()}"


def pruned_share(mask: torch.Tensor) -> str:
    """``'50.0% pruned'``."""
    return f"{1.0 - mask.float().mean().item():.1%} pruned"


def mask_title(name: str, mask: torch.Tensor) -> str:
    """A mask image's title: its label, then its pruned share, on two lines."""
    return f"{mask_label(name, mask)}\n{pruned_share(mask)}"


def mask_image(mask: torch.Tensor) -> np.ndarray:
    """A mask as the 2-D array drawn: (out, in) for Linear, (filters, in_channels·k·k) for Conv."""
    return mask.reshape(mask.shape[0], -1).cpu().numpy()


def show_mask(ax, mask: torch.Tensor):
    """The mask's image on ``ax`` (kept = dark), the artist a slider updates."""
    return ax.imshow(
        mask_image(mask),
        cmap=MASK_COLORS,
        vmin=0,
        vmax=1,
        aspect="auto",
        interpolation="nearest",
        interpolation_stage="data",  # the same pixels as colouring first, drawn in half the time
    )


def draw_mask(ax, mask: torch.Tensor, title: str) -> list:
    """Draw a mask (kept = dark) on ``ax``, Conv kernels separated by lines where they span ≥ 4 pixels.

    Returns the artists: the image, then the kernel lines if drawn.
    """
    artists = [show_mask(ax, mask)]
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    if mask.dim() == 2:
        ax.set_xlabel("input", fontsize=8)
        return artists
    ax.set_xlabel(f"input channel × {'×'.join(map(str, mask.shape[2:]))} kernel", fontsize=8)
    kernel, rows, columns = mask[0, 0].numel(), mask.shape[0], mask[0].numel()
    kernel_pixels = kernel * ax.get_position().width * ax.figure.get_figwidth() * ax.figure.dpi / columns
    if kernel_pixels >= 4 and mask.shape[1] > 1:
        xs = np.arange(1, mask.shape[1]) * kernel - 0.5
        lines = LineCollection(
            [[(x, -0.5), (x, rows - 0.5)] for x in xs], colors=ACCENT, linewidths=0.6, alpha=0.7, zorder=3
        )
        artists.append(ax.add_collection(lines))
    return artists


def plot_masks(masks: dict[str, torch.Tensor], max_layers: int | None = None) -> Figure:
    """One mask heatmap per layer, stacked (kept = dark; Conv kernels separated by thin lines)."""
    names = list(masks)[:max_layers]
    if not names:
        raise ValueError("no masks to plot")
    fig = Figure(figsize=(10, 1.9 * len(names) + 0.4), layout="constrained")
    for index, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, index + 1)
        draw_mask(ax, masks[name], mask_title(name, masks[name]).replace("\n", " · "))
        ax.set_ylabel("output", fontsize=8)
    return fig


def histogram_edges(weights: torch.Tensor, bins: int = 60) -> np.ndarray:
    """Bin edges over [0, max |w|]."""
    top = float(weights.abs().max()) if weights.numel() else 1.0
    return np.linspace(0.0, top if top > 0 else 1.0, bins + 1)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The histogram bin of each value in [edges[0], edges[-1]], as ``np.histogram`` bins it (last bin closed)."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def draw_weight_histogram(ax, weights: torch.Tensor, threshold=None, mask: torch.Tensor | None = None, bins: int = 60):
    """|w| histogram (log y) of all weights, of the kept ones when ``mask`` is given, and threshold lines.

    Returns (kept stairs or None, threshold lines, bin edges).
    """
    magnitudes = weights.detach().abs().flatten().cpu().numpy()
    edges = histogram_edges(weights, bins)
    counts = np.bincount(bin_index(magnitudes, edges), minlength=bins)
    ax.stairs(counts, edges, fill=True, color=ALL_WEIGHTS, baseline=0.5, label=f"all ({magnitudes.size:,})")
    kept = None
    if mask is not None:
        kept_counts = np.bincount(bin_index(magnitudes[mask.flatten().cpu().numpy()], edges), minlength=bins)
        kept = ax.stairs(kept_counts, edges, fill=True, color=KEPT, alpha=0.8, baseline=0.5, label="kept")
    thresholds = [] if threshold is None else np.atleast_1d(threshold).tolist()
    lines = [ax.axvline(t, color=CURRENT, linewidth=1.5) for t in thresholds]
    if lines:
        lines[0].set_label("threshold")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # plain numbers: no mathtext to typeset
    ax.set_ylim(0.5, max(2.0, 2.0 * counts.max()))
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("|w|")
    ax.set_ylabel("weights")
    ax.legend(fontsize=8, loc="upper right")
    return kept, lines, edges


def plot_weight_histogram(
    weights: torch.Tensor, threshold=None, mask: torch.Tensor | None = None, bins: int = 60
) -> Figure:
    """|w| histogram with log y and a vertical line at each threshold (a float or a sequence)."""
    fig = Figure(figsize=(5, 3), layout="constrained")
    draw_weight_histogram(fig.add_subplot(), weights, threshold, mask, bins)
    return fig


def draw_layer_sparsity(ax, reports: dict) -> dict:
    """Side-by-side bars of each layer's sparsity (%) per report; returns {label: BarContainer}."""
    names = list(dict.fromkeys(layer.name for report in reports.values() for layer in report.layers))
    width = 0.8 / len(reports)
    containers = {}
    for index, (label, report) in enumerate(reports.items()):
        by_name = {layer.name: layer.sparsity for layer in report.layers}
        heights = [100 * by_name.get(name, 0.0) for name in names]
        x = np.arange(len(names)) - 0.4 + width * (index + 0.5)
        containers[label] = ax.bar(x, heights, width, label=f"{label} ({report.sparsity:.1%} overall)")
    ax.set_xticks(
        np.arange(len(names)), [name.removesuffix(".weight") for name in names], rotation=60, ha="right", fontsize=7
    )
    ax.set_ylim(0, 100)
    ax.set_ylabel("sparsity (%)")
    ax.grid(axis="y", alpha=0.3)
    return containers


def plot_layer_sparsity(reports: dict) -> Figure:
    """Per-layer sparsity of several SparsityReports side by side, e.g. ``{"local": r1, "global": r2}``."""
    if not reports:
        raise ValueError("no reports to plot")
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    draw_layer_sparsity(ax, reports)
    ax.legend(fontsize=8)
    return fig


def draw_sensitivity(ax, result, tolerance: float):
    """Accuracy (%) vs sparsity (%) per layer, the baseline and the tolerance floor.

    Returns ({layer: Line2D}, the tolerance line).
    """
    x = 100 * result.sparsities
    lines = {
        name: ax.plot(x, 100 * values, markersize=4, label=name, **series_style(i))[0]
        for i, (name, values) in enumerate(result.accuracies.items())
    }
    ax.axhline(100 * result.baseline, color=REFERENCE, linewidth=1, label=f"dense {result.baseline:.1%}")
    floor = ax.axhline(
        100 * (result.baseline - tolerance), color=REFERENCE, linestyle="--", linewidth=1, label="dense − tolerance"
    )
    ax.set_xlabel("sparsity of one layer, others dense (%)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    return lines, floor


def plot_sensitivity(result, tolerance: float = 0.01) -> Figure:
    """Sensitivity curves of a ``SensitivityResult`` with the baseline − tolerance line."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    draw_sensitivity(ax, result, tolerance)
    ax.set_title(f"one layer pruned at a time · tolerance {tolerance:.1%}", fontsize=10)
    ax.legend(fontsize=7, ncols=2)
    return fig


def kept_overlap(mask_a: torch.Tensor, mask_b: torch.Tensor) -> float:
    """Jaccard index of the kept sets, |A ∩ B| / |A ∪ B| (1.0 when both keep nothing)."""
    if mask_a.shape != mask_b.shape:
        raise ValueError(f"masks differ in shape: {tuple(mask_a.shape)} vs {tuple(mask_b.shape)}")
    a, b = mask_a.bool(), mask_b.bool()
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0


def average_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of the flattened scores (ascending); tied scores share their average rank."""
    flat = scores.detach().flatten().double()
    order = flat.argsort(stable=True)
    _, inverse, counts = torch.unique_consecutive(flat[order], return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = torch.empty_like(flat)
    ranks[order] = (ends - (counts - 1) / 2.0)[inverse]
    return ranks


def rank_correlation(scores_a: torch.Tensor, scores_b: torch.Tensor) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (nan if one side is constant)."""
    if scores_a.numel() != scores_b.numel():
        raise ValueError(f"scores differ in size: {scores_a.numel()} vs {scores_b.numel()}")
    a, b = average_ranks(scores_a), average_ranks(scores_b)
    a, b = a - a.mean(), b - b.mean()
    denominator = (a.square().sum() * b.square().sum()).sqrt()
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def keep_top(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep all but the ``round(sparsity × n)`` lowest scores (ties: lower index first; one always kept), as Pruner
    does locally."""
    flat = scores.detach().flatten()
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    count = min(round(sparsity * flat.numel()), flat.numel() - 1)  # never empties the layer
    keep[flat.cpu().argsort(stable=True)[:count]] = False
    return keep.view(scores.shape)


def plot_criterion_agreement(
    scores_a: torch.Tensor, scores_b: torch.Tensor, sparsity: float, labels=("A", "B")
) -> Figure:
    """Rank of every weight under two criteria (one layer), coloured by which criterion keeps it at ``sparsity``.

    The title gives the Jaccard overlap of the two kept sets and Spearman's rank correlation.
    """
    keep_a, keep_b = keep_top(scores_a, sparsity).flatten(), keep_top(scores_b, sparsity).flatten()
    n = keep_a.numel()
    rank_a, rank_b = (average_ranks(scores_a) / n).numpy(), (average_ranks(scores_b) / n).numpy()
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.add_subplot()
    groups = (
        (keep_a & keep_b, "kept by both", KEPT),
        (keep_a & ~keep_b, f"kept by {labels[0]} only", "tab:orange"),
        (~keep_a & keep_b, f"kept by {labels[1]} only", "tab:green"),
        (~keep_a & ~keep_b, "pruned by both", ALL_WEIGHTS),
    )
    for chosen, label, color in groups:
        chosen = chosen.numpy()
        ax.scatter(
            rank_a[chosen], rank_b[chosen], s=3, color=color, label=f"{label} ({chosen.sum():,})", rasterized=True
        )
    ax.set_xlabel(f"rank under {labels[0]} (fraction)")
    ax.set_ylabel(f"rank under {labels[1]} (fraction)")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper left", markerscale=3)
    overlap, rho = kept_overlap(keep_a, keep_b), rank_correlation(scores_a, scores_b)
    ax.set_title(f"sparsity {sparsity:.0%}: kept-set Jaccard {overlap:.3f}, Spearman ρ {rho:.3f}", fontsize=9)
    return fig
