"""Pruning figures draw exactly their data; kept_overlap and rank_correlation against hand and reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch

import workbench as wb
from workbench.reports import report_from_masks
from workbench.sensitivity import SensitivityResult
from workbench.viz.pruning import (
    average_ranks,
    bin_index,
    draw_mask,
    histogram_edges,
    keep_top,
    kept_overlap,
    mask_image,
    plot_criterion_agreement,
    plot_layer_sparsity,
    plot_masks,
    plot_sensitivity,
    plot_weight_histogram,
    rank_correlation,
)


def images(fig: Figure) -> list[np.ndarray]:
    return [np.asarray(ax.images[0].get_array()) for ax in fig.axes]


def test_plot_masks_draws_each_mask(shipped):
    pruner = wb.Pruner(shipped("cnn"), pattern="kernel")
    masks = pruner.masks(0.6)
    fig = plot_masks(masks)
    assert isinstance(fig, Figure) and len(fig.axes) == len(masks) == 6  # the Linear fc has no kernels
    for shown, (name, mask) in zip(images(fig), masks.items()):
        assert np.array_equal(shown, mask.reshape(mask.shape[0], -1).numpy()), name
        assert np.array_equal(shown, mask_image(mask))
    assert len(plot_masks(masks, max_layers=2).axes) == 2
    assert f"{1 - masks['down.0.weight'].float().mean().item():.1%} pruned" in fig.axes[3].get_title()


def test_conv_kernel_boundaries_are_drawn():
    conv = torch.rand(8, 5, 3, 3) > 0.5
    fig = plot_masks({"conv.weight": conv, "fc.weight": torch.ones(4, 6, dtype=torch.bool)})
    conv_ax, fc_ax = fig.axes
    (lines,) = [c for c in conv_ax.collections if isinstance(c, LineCollection)]
    xs = sorted(segment[0][0] for segment in lines.get_segments())
    assert xs == [9 * k - 0.5 for k in range(1, 5)], "one line between consecutive input channels' kernels"
    assert not [c for c in fc_ax.collections if isinstance(c, LineCollection)]
    assert images(fig)[0].shape == (8, 45)


def test_masks_are_drawn_as_colouring_first_would(shipped):
    """draw_mask resamples the mask, then colours it (twice as fast): the pixels are those of colouring first."""
    masks = wb.Pruner(shipped("cnn")).masks(0.5)
    canvases = []
    for stage in ("data", "rgba"):
        fig = Figure(figsize=(10, 2), dpi=84)
        for index, mask in enumerate(masks.values()):
            (image, *_) = draw_mask(fig.add_subplot(1, len(masks), index + 1), mask, "")
            image.set_interpolation_stage(stage)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        canvases.append(np.asarray(canvas.buffer_rgba()).copy())
    assert np.array_equal(*canvases)


def test_nm_and_block_masks_are_regular_in_the_image(shipped):
    mlp = shipped("mlp")
    for mask in wb.Pruner(mlp, pattern="2:4").masks().values():
        shown = images(plot_masks({"w": mask}))[0]
        assert (shown.reshape(shown.shape[0], -1, 4).sum(-1) == 2).all(), "2 kept in every 4 consecutive inputs"
    masks = wb.Pruner(shipped("cnn"), pattern="block4x4", exclude=["stem.0", "fc"]).masks(0.5)
    shown = images(plot_masks(masks))[2]
    rows, cols = shown.shape
    tiles = shown.reshape(rows // 4, 4, cols // 4, 4)
    assert (tiles.min(axis=(1, 3)) == tiles.max(axis=(1, 3))).all(), "every 4×4 tile is all kept or all pruned"


def test_plot_masks_rejects_nothing():
    with pytest.raises(ValueError, match="no masks"):
        plot_masks({})


@given(values=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=200), bins=st.integers(1, 30))
def test_bin_index_matches_numpy_histogram(values, bins):
    values = np.array(values)
    edges = histogram_edges(torch.tensor(values), bins)
    counts = np.bincount(bin_index(values, edges), minlength=bins)
    np.testing.assert_array_equal(counts, np.histogram(values, edges)[0])


def test_weight_histogram_counts_and_thresholds(shipped):
    weight = shipped("mlp").fc2.weight.detach()
    mask = weight.abs() > 0.05
    fig = plot_weight_histogram(weight, [0.05, 0.1], mask, bins=40)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    everything, kept = [p for p in ax.patches if isinstance(p, StepPatch)]
    edges = np.linspace(0, weight.abs().max().item(), 41)
    np.testing.assert_allclose(everything.get_data().edges, edges)
    np.testing.assert_array_equal(everything.get_data().values, np.histogram(weight.abs().numpy(), edges)[0])
    np.testing.assert_array_equal(kept.get_data().values, np.histogram(weight.abs()[mask].numpy(), edges)[0])
    assert [line.get_xdata()[0] for line in ax.lines] == [0.05, 0.1]
    no_mask = plot_weight_histogram(weight, 0.02).axes[0]
    assert len([p for p in no_mask.patches if isinstance(p, StepPatch)]) == 1 and len(no_mask.lines) == 1


def test_layer_sparsity_bars(shipped):
    mlp = shipped("mlp")
    reports = {
        "local": report_from_masks(wb.Pruner(mlp).masks(0.7)),
        "global": report_from_masks(wb.Pruner(mlp, scope="global").masks(0.7)),
    }
    (ax,) = plot_layer_sparsity(reports).axes
    assert len(ax.containers) == 2 and len(ax.patches) == 6
    for container, report in zip(ax.containers, reports.values()):
        assert [bar.get_height() for bar in container] == [100 * layer.sparsity for layer in report.layers]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fc1", "fc2", "fc3"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["local (70.0% overall)", "global (70.0% overall)"]
    with pytest.raises(ValueError):
        plot_layer_sparsity({})


def test_sensitivity_curves():
    result = SensitivityResult(np.array([0.0, 0.5]), {"a": np.array([0.9, 0.8]), "b": np.array([0.9, 0.4])}, 0.9)
    (ax,) = plot_sensitivity(result, tolerance=0.05).axes
    curves = ax.lines[:2]
    assert [line.get_label() for line in curves] == ["a", "b"]
    np.testing.assert_allclose(curves[1].get_xdata(), [0, 50])
    np.testing.assert_allclose(curves[1].get_ydata(), [90, 40])
    floor = next(line for line in ax.lines if line.get_label() == "dense − tolerance")
    assert floor.get_ydata()[0] == pytest.approx(85)


def test_kept_overlap_by_hand():
    a = torch.tensor([True, True, False, False, True])
    b = torch.tensor([True, False, True, False, True])
    assert kept_overlap(a, b) == 2 / 4
    assert kept_overlap(a, a) == 1.0
    assert kept_overlap(a, ~a) == 0.0
    assert kept_overlap(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)) == 1.0
    with pytest.raises(ValueError, match="shape"):
        kept_overlap(a, a[:4])


def reference_spearman(a: list[float], b: list[float]) -> float:
    """Textbook Spearman: average ranks of ties, then Pearson, in plain Python."""

    def ranks(values):
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return result

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def test_rank_correlation_by_hand():
    x = torch.tensor([0.1, 0.4, 0.2, 0.9])
    assert rank_correlation(x, x) == pytest.approx(1.0)
    assert rank_correlation(x, -x) == pytest.approx(-1.0)
    assert rank_correlation(x, x.exp()) == pytest.approx(1.0), "only the order matters"
    # ranks (1, 3, 2, 4) vs (1, 2, 3, 4): 1 - 6·Σd²/(n(n²-1)) = 1 - 6·2/60
    assert rank_correlation(x, torch.tensor([1.0, 2, 3, 4])) == pytest.approx(0.8)
    assert average_ranks(torch.tensor([10.0, 20, 20, 30, 20])).tolist() == [1.0, 3.0, 3.0, 5.0, 3.0]
    assert math.isnan(rank_correlation(x, torch.ones(4)))
    with pytest.raises(ValueError, match="size"):
        rank_correlation(x, x[:3])


@given(pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=3, max_size=40))
def test_rank_correlation_matches_reference_with_ties(pairs):
    a, b = [float(p[0]) for p in pairs], [float(p[1]) for p in pairs]
    if len(set(a)) == 1 or len(set(b)) == 1:
        return
    assert rank_correlation(torch.tensor(a), torch.tensor(b)) == pytest.approx(reference_spearman(a, b), abs=1e-12)


def test_keep_top_is_the_pruner_selection(shipped):
    mlp = shipped("mlp")
    pruner = wb.Pruner(mlp)
    for sparsity in (0.0, 0.33, 0.9):
        assert torch.equal(keep_top(pruner.scores["fc2.weight"], sparsity), pruner.masks(sparsity)["fc2.weight"])


def test_criterion_agreement(shipped, digits):
    mlp = shipped("mlp")
    magnitude = wb.Pruner(mlp).scores["fc2.weight"]
    taylor = wb.Pruner(mlp, "taylor", data=digits, criterion_options={"max_batches": 2}).scores["fc2.weight"]
    fig = plot_criterion_agreement(magnitude, taylor, 0.7, ("magnitude", "taylor"))
    (ax,) = fig.axes
    keep_a, keep_b = keep_top(magnitude, 0.7), keep_top(taylor, 0.7)
    jaccard, rho = kept_overlap(keep_a, keep_b), rank_correlation(magnitude, taylor)
    assert f"Jaccard {jaccard:.3f}" in ax.get_title() and f"ρ {rho:.3f}" in ax.get_title()
    assert 0 < jaccard < 1 and 0 < rho < 1
    sizes = [len(c.get_offsets()) for c in ax.collections]
    both, only_a = int((keep_a & keep_b).sum()), int((keep_a & ~keep_b).sum())
    assert sum(sizes) == magnitude.numel() and sizes[:2] == [both, only_a]
    n = magnitude.numel()
    xy = ax.collections[0].get_offsets()
    chosen = (keep_a & keep_b).flatten().numpy()
    np.testing.assert_allclose(xy[:, 0], (average_ranks(magnitude) / n).numpy()[chosen])
    same = plot_criterion_agreement(magnitude, magnitude, 0.5).axes[0].get_title()
    assert "Jaccard 1.000" in same and "ρ 1.000" in same
