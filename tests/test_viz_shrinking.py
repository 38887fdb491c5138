"""Shrinking figures draw exactly their data: marked rows/columns are the removed units, labels give the new shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

import workbench as wb
from workbench.cuts import LayerCut, layer_cuts, weight_matrix
from workbench.structure import trace_groups
from workbench.viz.shrinking import (
    cut_images,
    draw_cut,
    plot_dependency_group,
    plot_shrinkage,
    plot_toy_shrink,
    removed_mask,
    set_cut,
    toy_cuts,
)


@pytest.fixture(scope="module")
def digits():
    return wb.load_dataset("digits").test.tensors[0]


def shrunk(name, digits, pattern, sparsity=0.5):
    model = wb.pretrained(name)
    small, report = wb.shrink_with_report(model, sparsity=sparsity, pattern=pattern, example_inputs=digits[:8])
    return model, small, report


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def marked_rows_and_columns(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    marked = removed_mask(image)
    return np.flatnonzero(marked.all(axis=1)), np.flatnonzero(marked.all(axis=0))


def test_layer_cut_by_hand():
    weight = torch.arange(12.0).view(3, 4)
    cut = LayerCut("fc", weight, rows=[2, 0, 2], columns=[1])
    assert cut.rows.tolist() == [0, 2] and cut.new_shape == (1, 3) and cut.label == "3×4 → 1×3"
    np.testing.assert_array_equal(cut.kept_matrix(), [[4.0, 6.0, 7.0]])
    conv = torch.randn(5, 3, 3, 3)
    np.testing.assert_allclose(weight_matrix(conv), conv.flatten(2).norm(dim=2).numpy(), rtol=1e-6)
    assert LayerCut("conv", conv, rows=[4], columns=[0, 1]).label == "5×3×3×3 → 4×1×3×3"
    with pytest.raises(ValueError, match=r"row indices must lie in 0\.\.2"):
        LayerCut("fc", weight, rows=[3])
    with pytest.raises(ValueError, match="at least 2 dims"):
        weight_matrix(torch.ones(3))


def test_mlp_chain_marks_a_removed_neuron_as_row_and_column(digits):
    model, small, report = shrunk("mlp", digits, "neuron")
    cuts = layer_cuts(dict(model.state_dict()), report.graph, report.removed)
    assert list(cuts) == ["fc1", "fc2", "fc3"]
    hidden1, hidden2 = (report.removed[g.id] for g in report.graph.groups if g.id in report.removed)
    assert cuts["fc1"].rows.tolist() == hidden1 and cuts["fc2"].columns.tolist() == hidden1
    assert cuts["fc2"].rows.tolist() == hidden2 and cuts["fc3"].columns.tolist() == hidden2
    for name, cut in cuts.items():
        weight = getattr(small, name).weight.detach()
        assert cut.new_shape == tuple(weight.shape)
        np.testing.assert_array_equal(cut.kept_matrix(), weight.numpy())
    assert [cut.label for cut in cuts.values()] == ["300×64 → 150×64", "100×300 → 50×150", "10×100 → 10×50"]

    fig = plot_shrinkage(list(cuts.values()))
    assert len(fig.axes) == 6
    for index, cut in enumerate(cuts.values()):
        before, after = fig.axes[2 * index].images[0], fig.axes[2 * index + 1].images[0]
        rows, columns = marked_rows_and_columns(np.asarray(before.get_array()))
        if cut.columns.size:  # a marked column marks every row it crosses
            assert columns.tolist() == cut.columns.tolist()
        else:
            assert rows.tolist() == cut.rows.tolist()
        assert not removed_mask(np.asarray(after.get_array())).any(), "nothing is marked once removed"
        assert np.asarray(after.get_array()).shape[:2] == cut.kept_matrix().shape
        _left, right, bottom, _top = after.get_extent()
        assert (right, bottom) == pytest.approx((cut.new_shape[1] / cut.shape[1], cut.new_shape[0] / cut.shape[0]))
        assert any(cut.label in text for text in texts(fig))
    assert not any(t for t in texts(fig) if t[0].isdigit() and "." in t), "large matrices are not annotated"


def test_marked_cells_are_exactly_the_removed_rows_and_columns():
    cut = LayerCut("w", torch.randn(6, 5), rows=[1, 4], columns=[0, 3])
    before, after = cut_images(cut)
    expected = np.zeros((6, 5), dtype=bool)
    expected[[1, 4], :] = True
    expected[:, [0, 3]] = True
    np.testing.assert_array_equal(removed_mask(before), expected)
    assert after.shape[:2] == (4, 3) and not removed_mask(after).any()


def test_conv_cut_and_live_update(digits):
    model, small, report = shrunk("cnn", digits, "filter")
    cuts = layer_cuts(dict(model.state_dict()), report.graph, report.removed)
    for name in ("stem.0", "block1.conv1", "down.0", "fc"):
        assert cuts[name].new_shape == tuple(small.get_submodule(name).weight.shape), name
    np.testing.assert_allclose(cuts["block1.conv1"].kept_matrix(), weight_matrix(small.block1.conv1.weight), rtol=1e-6)
    fig = Figure()
    artists = draw_cut(fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2), cuts["stem.0"])
    set_cut(artists, cuts["block1.conv1"])  # what a live view does on a layer change
    before, after = cut_images(cuts["block1.conv1"])
    np.testing.assert_array_equal(np.asarray(artists[0].get_array()), before)
    np.testing.assert_array_equal(np.asarray(artists[1].get_array()), after)
    assert cuts["block1.conv1"].label in artists[3].get_text() and "‖kernel‖" in artists[2].get_text()


def marked_spans(ax) -> list[tuple[float, float, float, float]]:
    return [(r.get_x(), r.get_y(), r.get_width(), r.get_height()) for r in ax.patches if isinstance(r, Rectangle)]


def test_residual_group_panels_mark_every_slice(digits):
    model = wb.pretrained("cnn")
    graph = trace_groups(model, digits[:4])
    residual = graph.groups[0]
    assert {m.module for m in residual.producers} == {"stem.0", "block1.conv2"}
    fig = plot_dependency_group(dict(model.state_dict()), residual, 5)
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split("\n")[0] for t in titles] == [
        "stem.0.weight",
        "stem.1",
        "block1.conv1.weight",
        "block1.conv2.weight",
        "block1.bn2",
        "down.0.weight",
    ]
    spans = [marked_spans(ax) for ax in fig.axes]
    assert spans[0] == [(-0.5, 4.5, 1, 1)], "row 5 of the stem conv (32 filters × 1 input channel)"
    assert spans[2] == [(4.5, -0.5, 1, 32)], "input channel 5 of block1.conv1"
    assert spans[3] == [(-0.5, 4.5, 32, 1)] and spans[5] == [(4.5, -0.5, 1, 64)]
    assert spans[1] == [(4.5, -0.5, 1, 4)], "entry 5 of the stem BatchNorm's weight, bias, mean, var"
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["weight", "bias", "running_mean", "running_var"]
    assert "12 tensors move together" in fig.get_suptitle()


def test_head_group_marks_blocks_of_head_dim(digits):
    model = wb.pretrained("transformer")
    graph = trace_groups(model, digits[:4])
    heads = next(g for g in graph.groups if g.attention == "blocks.0.attn")
    fig = plot_dependency_group(dict(model.state_dict()), heads, [1, 3])
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [f"blocks.0.attn.{p}.weight + bias" for p in "qkv"] + [
        "blocks.0.attn.out.weight"
    ]
    for ax in fig.axes[:3]:
        assert marked_spans(ax) == [(-0.5, 15.5, 64, 16), (-0.5, 47.5, 64, 16)]
    assert marked_spans(fig.axes[3]) == [(15.5, -0.5, 16, 64), (47.5, -0.5, 16, 64)]
    assert "heads of blocks.0.attn" in fig.get_suptitle()
    with pytest.raises(ValueError, match=r"units must be indices in 0\.\.3"):
        plot_dependency_group(dict(model.state_dict()), heads, 4)
    with pytest.raises(ValueError, match="state_dict"):
        plot_dependency_group({}, heads, 0)


def test_toy_three_by_two_to_two_by_two():
    w1, w2 = toy_cuts()
    assert (w1.label, w2.label) == ("3×2 → 2×2", "2×3 → 2×2")
    fig = plot_toy_shrink()
    shown = texts(fig)
    assert any("3×2 → 2×2" in t for t in shown) and any("2×3 → 2×2" in t for t in shown)
    assert {"0.9", "-0.4", "0.05", "0.1"} <= set(shown), "the toy's values are written in the cells"
    network = fig.axes[0]
    red = [line for line in network.lines if line.get_linestyle() == "--"]
    assert len(red) == 4, "the removed neuron's 2 input and 2 output connections"
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(w1.matrix))
        model[2].weight.copy_(torch.as_tensor(w2.matrix))
    masks = {"0.weight": torch.ones(3, 2, dtype=torch.bool), "0.bias": torch.ones(3, dtype=torch.bool)}
    masks["0.weight"][1] = False
    masks["0.bias"][1] = False
    small, _ = wb.structure.shrink_masked(model, masks, torch.randn(4, 2))
    np.testing.assert_array_equal(small[0].weight.detach().numpy(), w1.kept_matrix())
    np.testing.assert_array_equal(small[2].weight.detach().numpy(), w2.kept_matrix())
    with pytest.raises(ValueError, match=r"neuron must be in 0\.\.2"):
        toy_cuts(neuron=3)
    with pytest.raises(ValueError, match="hidden rows"):
        toy_cuts(np.ones((3, 2)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="no layers"):
        plot_shrinkage([])
