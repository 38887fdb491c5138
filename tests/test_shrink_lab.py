"""ShrinkSweep and ShrinkLab: grid points match their shrunk models; widgets set from code show exactly the sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from browser_slider import Browser

import workbench as wb
from workbench.cuts import shape_text
from workbench.shrink_sweep import ShrinkSweep, default_layer, model_shapes, shrink_sweep
from workbench.viz.shrink_lab import shape_table
from workbench.viz.shrinking import cut_images
from workbench.widgets.shrink_lab import KEPT_SWEEPS, ShrinkLab

GRID = (0.0, 0.3, 0.5, 0.8)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep() -> ShrinkSweep:
    return shrink_sweep("mlp", "l1", "neuron", sparsities=GRID, progress=False)


@pytest.fixture(scope="module")
def lab() -> ShrinkLab:
    return ShrinkLab("mlp", "l1", "neuron", sparsities=GRID, progress=False)


def test_grid_points_match_their_shrunk_models(sweep):
    assert [p.sparsity for p in sweep.points_] == list(GRID)
    for point in sweep.points_:
        assert point.shapes == model_shapes(point.model)
        assert point.shapes["fc1"] == f"{300 - round(300 * point.sparsity)}×64"
        assert point.params == wb.count_parameters(point.model) == point.report.params_after
        assert point.accuracy == wb.evaluate(point.model, wb.load_dataset("digits").val)
        assert point.max_difference < 1e-5, "the shrunk model computes what the masked one does"
        for layer in sweep.layers_:
            cut = sweep.cut(point.sparsity, layer)
            weight = point.model.get_submodule(layer).weight
            assert shape_text(weight.shape) == point.shapes[layer] == shape_text(cut.new_shape)
            np.testing.assert_array_equal(cut.kept_matrix(), weight.detach().numpy())
    assert sweep.points_[0].shapes == sweep.dense_shapes_ and sweep.points_[0].params == sweep.dense_params_


def test_costs_fall_with_sparsity(sweep):
    for what in ("params", "flops"):
        curve = sweep.curve(what)
        assert (np.diff(curve) <= 0).all(), what
        assert curve[-1] < curve[0] / 3, what
    assert sweep.dense_flops_ == sweep.points_[0].flops
    dense = sweep.dense_latency_
    assert (dense.batch, dense.threads, dense.device) == (256, 1, "cpu")
    assert all(p.latency.batch == 256 and p.latency.median_ms > 0 for p in sweep.points_)


def test_lookup(sweep):
    assert sweep.at(0.52) is sweep.points_[2] and sweep.at(0.0) is sweep.points_[0] and sweep.index(0.7) == 3
    assert default_layer(sweep) == "fc2", "the first layer that loses rows and columns"
    with pytest.raises(ValueError, match="not a Linear/Conv layer"):
        sweep.cut(0.5, "fc9")
    with pytest.raises(ValueError, match="unknown curve"):
        sweep.curve("speed")


def test_bad_arguments_are_value_errors():
    model = wb.pretrained("mlp")
    split = wb.load_dataset("digits").val
    kwargs = {"split": split, "example_inputs": split.tensors[0][:4], "timing_inputs": split.tensors[0][:4]}
    with pytest.raises(ValueError, match="not structured"):
        ShrinkSweep(model, "l1", "2:4", **kwargs)
    with pytest.raises(ValueError, match="increasing values in"):
        ShrinkSweep(model, "l1", "neuron", sparsities=(0.5, 0.1), **kwargs)
    with pytest.raises(ValueError, match="split must be"):
        shrink_sweep("mlp", split="train")
    with pytest.raises(ValueError, match="no prunable head groups"):
        ShrinkSweep(model, "l1", "head", **kwargs).run()


def check_shows(lab: ShrinkLab, sparsity: float) -> None:
    """What the lab shows is the sweep's grid point nearest ``sparsity`` and the chosen layer's cut."""
    sweep, state = lab.sweep, lab.state
    point = sweep.at(sparsity)
    cut = sweep.cut(point.sparsity, lab.layer.value)
    assert state["sparsity"] == point.sparsity and state["accuracy"] == point.accuracy
    assert state["params"] == {"dense": sweep.dense_params_, "shrunk": point.params}
    assert state["flops"] == {"dense": sweep.dense_flops_, "shrunk": point.flops}
    assert state["latency_ms"] == {"dense": sweep.dense_latency_.median_ms, "shrunk": point.latency.median_ms}
    assert (state["batch"], state["threads"]) == (256, 1)
    assert state["shapes"] == {name: (before, point.shapes[name]) for name, before in sweep.dense_shapes_.items()}
    assert state["cut"] == cut.label and state["error"] is None
    before, after = cut_images(cut)
    view = lab.view
    np.testing.assert_array_equal(np.asarray(view.cut_artists[0].get_array()), before)
    np.testing.assert_array_equal(np.asarray(view.cut_artists[1].get_array()), after)
    assert cut.label in view.cut_artists[3].get_text()
    widths = [bar.get_width() for bar in view.bars]
    assert widths == pytest.approx(
        [
            100 * point.params / sweep.dense_params_,
            100 * point.flops / sweep.dense_flops_,
            100 * point.latency.median_ms / sweep.dense_latency_.median_ms,
        ]
    )
    assert f"params <b>{point.params:,}</b> of {sweep.dense_params_:,}" in lab.status.value
    assert list(view.accuracy_marker.get_xdata()) == [100 * point.sparsity]
    assert list(view.latency_marker.get_ydata()) == [point.latency.median_ms]
    assert bytes(lab.image.value).startswith(PNG_SIGNATURE)
    assert f"{point.accuracy:.1%}" in lab.status.value and "batch 256, 1 thread" in lab.status.value
    assert lab.table.value == shape_table(sweep.dense_shapes_, point.shapes)


def test_initial_state(lab, sweep):
    assert (lab.model.value, lab.criterion.value, lab.pattern.value, lab.layer.value) == ("mlp", "l1", "neuron", "fc2")
    assert lab.sweep is not sweep, "no sweep outlives its owner: shrink_sweep runs anew, the lab keeps its own"
    assert (lab.slider.min, lab.slider.max, lab.slider.step) == (0.0, 0.8, 0.2)
    assert list(lab.layer.options) == ["fc1", "fc2", "fc3"]
    check_shows(lab, 0.0)
    assert lab.state["params"]["shrunk"] == lab.state["params"]["dense"]


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.3, 0.0])
def test_slider_is_a_lookup(lab, sparsity):
    view, sweep, builds = lab.view, lab.sweep, len(lab.build_ms)
    lab.slider.value = sparsity
    check_shows(lab, sparsity)
    assert lab.view is view and lab.sweep is sweep and len(lab.build_ms) == builds
    assert lab.update_ms[-1] > 0


def test_the_browser_cannot_undo_what_code_set(lab, monkeypatch):
    """Cells set the sparsity; the browser catches up afterwards and must leave the last value in place."""
    browser = Browser(lab.slider, monkeypatch)
    lab.slider.value = 0.5  # between the slider's steps (0.4, 0.6): the browser shows the nearest
    lab.slider.value = 0.0
    echoes = browser.catch_up()
    assert lab.slider.value == 0.0
    check_shows(lab, 0.0)
    assert echoes == [], "the browser had nothing to send back"


def test_layout_fits_the_output_area(lab):
    """The figure at its own width (840 px) and the shape table under it, not beside it, where it was clipped."""
    assert int.from_bytes(bytes(lab.image.value)[16:20], "big") == 840, "the PNG header's width"
    assert (lab.image.layout.width, lab.image.layout.max_width) == ("840px", "100%")
    assert lab.widget.children[-2:] == (lab.image, lab.table)
    assert lab.view.bars[0].axes.get_title() == "shrunk as a share of dense", "no numbers above the bars to point to"


def test_layer_choice_redraws_the_cut(lab):
    lab.slider.value = 0.5
    lab.layer.value = "fc1"
    check_shows(lab, 0.5)
    assert lab.state["cut"] == "300×64 → 150×64" and lab.state["shapes"]["fc1"] == ("300×64", "150×64")
    assert "<b>150×64</b>" in lab.table.value
    lab.layer.value = "fc2"


def test_choices_that_do_not_apply_change_nothing(lab):
    lab.slider.value = 0.3
    state, picture, view = dict(lab.state), bytes(lab.image.value), lab.view
    lab.pattern.value = "head"
    assert "no prunable head groups" in lab.state["error"] and "still showing" in lab.status.value
    assert {**lab.state, "error": None} == state and bytes(lab.image.value) == picture and lab.view is view
    assert lab.pattern.value == "neuron", "the dropdown snaps back to what is shown"


def test_same_groups_share_a_sweep(lab):
    sweep, builds = lab.sweep, len(lab.build_ms)
    lab.pattern.value = "filter"  # neuron and filter name the same coupled channel groups
    assert lab.sweep is sweep and lab.state["pattern"] == "filter" and len(lab.build_ms) == builds + 1
    lab.pattern.value = "neuron"


def test_model_switch_to_transformer_heads(lab):
    mlp_sweep = lab.sweep
    lab.model.value = "transformer"  # "neuron" on the transformer: the MLP blocks' hidden units
    assert lab.state["model"] == "transformer" and lab.layer.value in lab.sweep.layers_
    lab.pattern.value = "head"
    lab.slider.value = 0.5
    check_shows(lab, 0.5)
    assert lab.state["shapes"]["blocks.0.attn"] == ("4 heads", "2 heads")
    assert lab.state["shapes"]["blocks.1.attn.out"] == ("64×64", "64×32")
    assert lab.state["max_difference"] < 1e-5
    lab.model.value = "mlp"
    assert lab.state["error"] is not None and lab.model.value == "transformer", "the MLP has no heads: nothing changes"
    lab.pattern.value = "neuron"
    lab.model.value = "mlp"
    check_shows(lab, 0.5)
    assert lab.sweep is mlp_sweep, "a revisited choice reuses its sweep"
    assert lab._run.cache_info().maxsize == KEPT_SWEEPS, "the lab keeps a bounded number of sweeps"


def test_updates_do_not_touch_the_models(lab):
    before = {k: v.clone() for k, v in lab.sweep.pruner_.plain.state_dict().items()}
    for value in (0.8, 0.0):
        lab.slider.value = value
    after = lab.sweep.pruner_.plain.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_each_architecture_is_timed_once():
    heads = shrink_sweep("transformer", "l1", "head", sparsities=(0.0, 0.1, 0.3, 0.5, 0.6), progress=False)
    # 4 heads: 0 % and 10 % remove none (the dense shapes), 30 % removes one, 50 % and 60 % two
    latencies = [heads.at(s).latency for s in heads.sparsities]
    assert latencies[0] is heads.dense_latency_ and latencies[1] is heads.dense_latency_
    assert latencies[3] is latencies[4] and latencies[2] is not latencies[3]
    assert heads.at(0.3).shapes != heads.at(0.5).shapes
