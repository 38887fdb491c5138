"""Shrinking figures: weight matrices before → after with removed rows/columns marked, dependency groups, the 3×2 toy.

The matrices drawn are ``workbench.cuts.LayerCut``s (a weight as a 2-D matrix with the rows and columns a shrink
removes). ``draw_cut`` draws one before/after pair on unit axes (the after matrix sits in the frame of the original
size, so it visibly shrinks) and returns the artists a live view updates.

Example:
    >>> import torch
    >>> len(plot_shrinkage([LayerCut("fc1", torch.randn(3, 2), rows=[1])]).axes)
    2
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..cuts import LayerCut, shape_text, weight_matrix
from ..cuts import layer_cuts as layer_cuts  # re-exported: the notebooks draw what it returns
from .colors import KEPT, PAPER, REMOVED_RGB, WEIGHT_COLORS

REMOVED_ALPHA = 0.6  # share of red blended into a removed row or column
SHARP_CELLS = 128  # matrices up to this many rows and columns are drawn cell by cell
MAX_ANNOTATED = 64  # write the values into matrices with at most this many cells


def cut_images(cut: LayerCut, vmax: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) RGBA images of a cut: |matrix| in blues, removed rows and columns blended with red before."""
    magnitude = np.abs(cut.matrix)
    top = vmax if vmax is not None else float(magnitude.max()) or 1.0
    before = WEIGHT_COLORS(np.clip(magnitude / top, 0, 1))
    removed = np.zeros(magnitude.shape, dtype=bool)
    removed[cut.rows, :] = True
    removed[:, cut.columns] = True
    before[removed, :3] = (1 - REMOVED_ALPHA) * before[removed, :3] + REMOVED_ALPHA * REMOVED_RGB
    after = WEIGHT_COLORS(np.clip(np.abs(cut.kept_matrix()) / top, 0, 1))
    return before, after


def cut_colors(steps: int = 32) -> np.ndarray:
    """The colours ``draw_cut`` shows, ``steps`` of each ramp: |w| in blues, the same blended with red, and the
    paper where a matrix shrank away."""
    blues = WEIGHT_COLORS(np.linspace(0, 1, steps))[:, :3]
    return np.concatenate([blues, (1 - REMOVED_ALPHA) * blues + REMOVED_ALPHA * REMOVED_RGB, [to_rgb(PAPER)]])


def removed_mask(image: np.ndarray) -> np.ndarray:
    """Which cells of a ``cut_images`` before-image are marked removed (red outweighs blue only there)."""
    return image[..., 0] > image[..., 2]


def _unit_axes(ax, facecolor="white") -> None:
    ax.set(xlim=(0, 1), ylim=(1, 0), xticks=[], yticks=[])
    ax.set_facecolor(facecolor)


def draw_cut(ax_before, ax_after, cut: LayerCut) -> list:
    """Draw a cut's before and after matrices on unit axes; returns [before image, after image, before label,
    after label].

    The after image covers (kept columns / columns) × (kept rows / rows) of its frame: the size it shrank to.
    """
    _unit_axes(ax_before)
    _unit_axes(ax_after, PAPER)
    before, after = cut_images(cut)
    artists = [
        ax_before.imshow(before, extent=(0, 1, 1, 0), aspect="auto"),
        ax_after.imshow(after, extent=_after_extent(cut), aspect="auto"),
    ]
    artists += [
        ax.text(0.5, 1.03, "", transform=ax.transAxes, ha="center", va="bottom", fontsize=9)
        for ax in (ax_before, ax_after)
    ]
    set_cut(artists, cut)
    return artists


def _after_extent(cut: LayerCut) -> tuple[float, float, float, float]:
    rows, columns = cut.matrix.shape
    kept_rows, kept_columns = rows - cut.rows.size, columns - cut.columns.size
    return (0, kept_columns / columns, kept_rows / rows, 0)


def set_cut(artists: list, cut: LayerCut) -> None:
    """Show ``cut`` in artists made by ``draw_cut`` (a live view's update: data and labels only)."""
    before_image, after_image, before_text, after_text = artists
    before, after = cut_images(cut)
    smooth = (
        "antialiased" if max(cut.matrix.shape) > SHARP_CELLS else "nearest"
    )  # no row lost when downsampled, crisp cells otherwise
    for image, data in ((before_image, before), (after_image, after)):
        image.set_data(data)
        image.set_interpolation(smooth)
    after_image.set_extent(_after_extent(cut))
    kind = "‖kernel‖" if cut.weight.dim() > 2 else "|w|"
    before_text.set_text(f"{cut.name} {kind}\nred: {cut.rows.size} rows, {cut.columns.size} columns go")
    after_text.set_text(f"shrunk\n{cut.label}")


def _annotate(ax, matrix: np.ndarray, extent) -> None:
    left, right, bottom, top = extent
    rows, columns = matrix.shape
    for i in range(rows):
        for j in range(columns):
            x = left + (j + 0.5) * (right - left) / columns
            y = top + (i + 0.5) * (bottom - top) / rows
            ax.text(x, y, f"{matrix[i, j]:.2g}", ha="center", va="center", fontsize=10, color="k")


def plot_shrinkage(cuts, annotate: bool | None = None) -> Figure:
    """Before | after matrices of one LayerCut or a chain of them (one row each), new shapes in the labels.

    ``annotate`` writes the values into the cells (default: when every matrix is small, as in the toy).
    """
    cuts = [cuts] if isinstance(cuts, LayerCut) else list(cuts)
    if not cuts:
        raise ValueError("no layers to plot")
    if annotate is None:
        annotate = all(cut.matrix.size <= MAX_ANNOTATED for cut in cuts)
    fig = Figure(figsize=(7, 2.3 * len(cuts) + 0.3), layout="constrained")
    for index, cut in enumerate(cuts):
        ax_before, ax_after = fig.add_subplot(len(cuts), 2, 2 * index + 1), fig.add_subplot(len(cuts), 2, 2 * index + 2)
        artists = draw_cut(ax_before, ax_after, cut)
        if annotate:
            _annotate(ax_before, cut.matrix, (0, 1, 1, 0))
            _annotate(ax_after, cut.kept_matrix(), artists[1].get_extent())
    fig.suptitle("red: rows (outputs) and columns (inputs) that go", fontsize=9)
    return fig


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of sorted indices as (start, stop) pairs."""
    runs = []
    for index in np.unique(indices).tolist():
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs


def _mark(ax, runs, along_rows: bool, extent_other: int) -> None:
    for start, stop in runs:
        xy, width, height = (
            ((-0.5, start - 0.5), extent_other, stop - start)
            if along_rows
            else ((start - 0.5, -0.5), stop - start, extent_other)
        )
        ax.add_patch(
            Rectangle(
                xy, width, height, facecolor=(*REMOVED_RGB, 0.35), edgecolor=REMOVED_RGB, linewidth=1.5, label="marked"
            )
        )


def group_panels(weights: dict[str, torch.Tensor], group) -> list[tuple[str, np.ndarray, str, object, list[str]]]:
    """One panel per module of a dependency group: (title, matrix, "rows" or "columns", member, row labels).

    Linear/Conv weights are drawn as ``weight_matrix`` (dim 0 marks rows, dim 1 columns); the 1-D members of a
    module without such a weight (BatchNorm/LayerNorm vectors) are stacked as rows of one strip whose columns
    are the units; any other tensor is shown with the grouped dim as columns. ``member`` gives the marked indices.
    """
    by_module: dict[str, list] = {}
    for member in group.members:
        by_module.setdefault(member.param.rpartition(".")[0] or member.param, []).append(member)
    panels = []
    for module, members in by_module.items():
        matrices = [m for m in members if weights[m.param].dim() >= 2 and m.param.endswith(".weight")]
        vectors = [m for m in members if weights[m.param].dim() == 1]
        for m in matrices:
            extra = " + bias" if any(v.param == f"{module}.bias" for v in vectors) else ""
            along = "rows" if m.dim == 0 else "columns"
            panels.append((f"{m.param}{extra}\n{along} ({m.role})", weight_matrix(weights[m.param]), along, m, []))
        if vectors and not matrices:
            rows = [weights[v.param].detach().float().cpu().numpy() for v in vectors]
            strip = np.stack([r / (np.abs(r).max() or 1.0) for r in rows])
            panels.append(
                (
                    f"{module}\nentries (member)",
                    strip,
                    "columns",
                    vectors[0],
                    [v.param.rpartition(".")[2] for v in vectors],
                )
            )
        for m in members:
            if m not in matrices and m not in vectors:
                tensor = weights[m.param].detach().float().cpu()
                panels.append(
                    (
                        f"{m.param}\ndim {m.dim} ({m.role})",
                        tensor.movedim(m.dim, -1).reshape(-1, tensor.shape[m.dim]).numpy(),
                        "columns",
                        m,
                        [],
                    )
                )
    return panels


def plot_dependency_group(weights: dict[str, torch.Tensor], group, units) -> Figure:
    """Which slices of which parameters move together when ``units`` of a dependency group go.

    ``weights``: the model's tensors by state_dict name (``dict(model.state_dict())``); ``group``: a
    ``DependencyGroup`` of ``trace_groups``. Each panel is one module; marked rows or columns are the slices removed.
    """
    units = np.atleast_1d(np.asarray(units, dtype=int))
    if units.size == 0 or units.min() < 0 or units.max() >= group.size:
        raise ValueError(f"units must be indices in 0..{group.size - 1} of group {group.id}, got {units.tolist()}")
    missing = [m.param for m in group.members if m.param not in weights]
    if missing:
        raise ValueError(f"weights lack the group's tensors {missing}; pass dict(model.state_dict())")
    panels = group_panels(weights, group)
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(2.6 * columns, 2.5 * rows + 0.5), layout="constrained")
    for index, (title, matrix, along, member, labels) in enumerate(panels):
        ax = fig.add_subplot(rows, columns, index + 1)
        ax.imshow(np.abs(matrix), cmap=WEIGHT_COLORS, aspect="auto", interpolation="nearest")
        marked = member.indices(torch.as_tensor(units), group.size).numpy()
        _mark(ax, _runs(marked), along == "rows", matrix.shape[1] if along == "rows" else matrix.shape[0])
        if labels:
            ax.set_yticks(range(len(labels)), labels)
        ax.set_title(f"{title}  {shape_text(matrix.shape)}", fontsize=8)
        ax.tick_params(labelsize=7)
    kind = f"heads of {group.attention}" if group.attention else f"{group.kind}s"
    chosen = f"units {units.tolist()}" if units.size > 1 else f"unit {units[0]}"
    fig.suptitle(
        f"group {group.id} ({group.size} {kind}): {chosen} — {len(group.members)} tensors move together", fontsize=10
    )
    return fig


TOY_W1 = np.array([[0.9, -0.4], [0.05, 0.1], [-0.7, 0.8]])  # 3 hidden neurons × 2 inputs
TOY_W2 = np.array([[0.6, 0.2, -0.5], [-0.3, -0.1, 0.9]])  # 2 outputs × 3 hidden neurons


def toy_cuts(w1=TOY_W1, w2=TOY_W2, neuron: int = 1) -> list[LayerCut]:
    """The toy: a hidden layer of 3 neurons loses ``neuron``: row of W1 (3×2 → 2×2) and column of W2 (2×3 → 2×2)."""
    w1, w2 = torch.as_tensor(w1, dtype=torch.float32), torch.as_tensor(w2, dtype=torch.float32)
    if w1.shape[0] != w2.shape[1]:
        raise ValueError(f"W1 has {w1.shape[0]} hidden rows but W2 reads {w2.shape[1]} columns")
    if not 0 <= neuron < w1.shape[0]:
        raise ValueError(f"neuron must be in 0..{w1.shape[0] - 1}, got {neuron}")
    return [LayerCut("W1", w1, rows=[neuron]), LayerCut("W2", w2, columns=[neuron])]


def plot_toy_shrink(w1=TOY_W1, w2=TOY_W2, neuron: int = 1) -> Figure:
    """The network (inputs → hidden → outputs, the removed neuron and its edges in red) and both matrices shrinking."""
    cuts = toy_cuts(w1, w2, neuron)
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    grid = fig.add_gridspec(2, 3, width_ratios=(1.3, 1, 1))
    net = fig.add_subplot(grid[:, 0])
    sizes = (cuts[0].shape[1], cuts[0].shape[0], cuts[1].shape[0])
    ys = [np.linspace(0.8, 0.2, n) if n > 1 else np.array([0.5]) for n in sizes]
    for layer, cut in enumerate(cuts):
        for i in range(cut.shape[0]):
            for j in range(cut.shape[1]):
                gone = (layer == 0 and i == neuron) or (layer == 1 and j == neuron)
                net.plot(
                    [layer, layer + 1],
                    [ys[layer][j], ys[layer + 1][i]],
                    color=REMOVED_RGB if gone else KEPT,
                    linestyle="--" if gone else "-",
                    linewidth=0.5 + 3 * abs(cut.matrix[i, j]),
                    zorder=1,
                )
    for layer, y in enumerate(ys):
        colors = [REMOVED_RGB if layer == 1 and i == neuron else "white" for i in range(len(y))]
        net.scatter(np.full(len(y), layer), y, s=500, c=colors, edgecolors="k", zorder=2)
    net.set(xlim=(-0.4, 2.4), ylim=(0, 1), xticks=[0, 1, 2], yticks=[])
    net.set_xticklabels(["inputs", "hidden", "outputs"])
    net.set_title(f"hidden neuron {neuron} goes", fontsize=10)
    for row, cut in enumerate(cuts):
        artists = draw_cut(fig.add_subplot(grid[row, 1]), fig.add_subplot(grid[row, 2]), cut)
        _annotate(artists[0].axes, cut.matrix, (0, 1, 1, 0))
        _annotate(artists[1].axes, cut.kept_matrix(), artists[1].get_extent())
    return fig
