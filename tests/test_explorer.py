"""Explorer: dropdowns and slider set from code; state, figure and PNG agree with the Pruner; bad choices change
nothing."""

from __future__ import annotations

import numpy as np
import pytest
from browser_slider import Browser
from helpers import assert_same_state, retry_load, state_copy

from workbench.layer_fit import unfit_layers
from workbench.measure import parameter_counts
from workbench.reports import report_from_masks
from workbench.viz.pruning import mask_image
from workbench.widgets.explorer import KEPT_CHOICES, Explorer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def app() -> Explorer:
    return retry_load(lambda: Explorer("mlp"))


@pytest.fixture(scope="module")
def cnn_app() -> Explorer:
    return retry_load(lambda: Explorer("cnn"))


def png(app: Explorer) -> bytes:
    return bytes(app.image.value)


def check_consistent(app: Explorer, sparsity: float) -> None:
    """What the app shows is the Pruner's masks at ``sparsity`` and their accuracy on the test split."""
    pruner = app.setup.pruner
    masks = pruner.masks(None if pruner.pattern.fixed_sparsity is not None else sparsity)
    report = report_from_masks(masks)
    state = app.state
    assert state["sparsity"] == sparsity
    assert state["accuracy"] == pruner.accuracy(masks, app.split)
    assert state["layer_sparsity"] == {layer.name: layer.sparsity for layer in report.layers}
    assert state["overall_sparsity"] == report.sparsity
    total, nonzero = parameter_counts(pruner.model, masks)
    assert state["params"] == {"total": total, "nonzero": nonzero}
    assert state["error"] is None
    for name, image in app.view.images.items():
        assert np.array_equal(np.asarray(image.get_array()), mask_image(masks[name])), name
    assert [bar.get_height() for bar in app.view.bars] == [100 * layer.sparsity for layer in report.layers]
    xs, ys = app.view.marker.get_data()
    assert list(xs) == [100 * sparsity] and list(ys) == [100 * state["accuracy"]]
    assert png(app).startswith(PNG_SIGNATURE)
    assert f"{state['accuracy']:.1%}" in app.status.value


def test_initial_state(app):
    assert (app.model.value, app.criterion.value, app.pattern.value, app.scope.value) == (
        "mlp",
        "magnitude",
        "unstructured",
        "local",
    )
    assert (app.slider.min, app.slider.max, app.slider.value, app.slider.disabled) == (0.0, 0.99, 0.0, False)
    check_consistent(app, 0.0)
    assert app.state["accuracy"] == app.setup.baseline
    assert len(app.view.images) == 3 and app.view.hist_name == "fc2.weight"
    assert len(app.criterion.options) >= 10, "every registered criterion is offered"


@pytest.mark.parametrize("sparsity", [0.37, 0.9, 0.0, 0.99])
def test_slider_moves_rethreshold_without_rebuilding(app, sparsity):
    view, setup, builds, updates = app.view, app.setup, len(app.build_ms), len(app.update_ms)
    changed = sparsity != app.slider.value
    app.slider.value = sparsity
    check_consistent(app, sparsity)
    assert app.view is view and app.setup is setup and len(app.build_ms) == builds
    assert len(app.update_ms) == updates + changed and app.update_ms[-1] > 0


def test_the_browser_cannot_undo_what_code_set(app, monkeypatch):
    """Cells set the sparsity; the browser catches up afterwards and must leave the last value in place."""
    browser = Browser(app.slider, monkeypatch)
    for value in (0.8, 0.4, 0.95, 0.1):
        app.slider.value = value
    echoes = browser.catch_up()
    assert app.slider.value == 0.1
    check_consistent(app, 0.1)
    assert echoes == [], "the browser had nothing to send back"


def test_the_picture_is_shown_at_its_own_width(app, cnn_app):
    for shown in (app, cnn_app):
        assert int.from_bytes(png(shown)[16:20], "big") == 840, "the PNG header's width"
        assert (shown.image.layout.width, shown.image.layout.max_width) == ("840px", "100%")


def test_histogram_threshold_splits_magnitudes(app):
    app.slider.value = 0.6
    weights = app.setup.pruner.weights["fc2.weight"].abs()
    kept = app.setup.pruner.masks(0.6)["fc2.weight"]
    assert app.view.threshold.get_visible()
    assert app.view.threshold.get_xdata()[0] == weights[kept].min().item()
    edges = app.view.kept_stairs.get_data().edges
    np.testing.assert_array_equal(app.view.kept_stairs.get_data().values, np.histogram(weights[kept].numpy(), edges)[0])


@pytest.mark.parametrize(
    ("widget", "value", "match"),
    [
        ("pattern", "kernel", "Conv"),
        ("pattern", "head", "attention"),
        ("criterion", "bn_scale", "BatchNorm"),
    ],
)
def test_choices_that_do_not_apply_change_nothing(app, widget, value, match):
    app.slider.value = 0.4
    state, picture, view, setup = dict(app.state), png(app), app.view, app.setup
    getattr(app, widget).value = value
    assert match in app.state["error"] and match in app.status.value
    assert {**app.state, "error": None} == state
    assert png(app) == picture and app.view is view and app.setup is setup
    assert getattr(app, widget).value == state[widget], "the dropdown snaps back to what is shown"
    app.slider.value = 0.41
    check_consistent(app, 0.41)


def test_error_message_is_the_value_error(app):
    app.pattern.value = "kernel"
    assert "kernel pattern" in app.state["error"] and "no Conv layer" in app.state["error"]


def test_nm_fixes_the_sparsity_and_disables_the_slider(app):
    app.slider.value = 0.2
    app.pattern.value = "2:4"
    assert app.slider.disabled and app.slider.value == 0.5
    check_consistent(app, 0.5)
    assert app.state["overall_sparsity"] == 0.5
    assert "fixes the sparsity" in app.status.value
    assert len(app.view.marker.get_xdata()) == 1 and list(app.setup.curve_x) == [0.5]
    app.pattern.value = "unstructured"
    assert not app.slider.disabled
    check_consistent(app, 0.5)


def test_choices_are_cached_and_data_driven_criteria_build(app):
    app.criterion.value = "taylor"
    taylor = app.setup
    assert app.state["criterion"] == "taylor"
    check_consistent(app, app.slider.value)
    app.criterion.value = "magnitude"
    app.criterion.value = "taylor"
    assert app.setup is taylor, "scored once per choice"
    assert app.view is not None and app.build_ms[-1] > 0
    app.criterion.value = "magnitude"
    assert app._setup.cache_info().maxsize == KEPT_CHOICES, "the app keeps a bounded number of scored choices"


def test_cnn_nm_excludes_layers_that_do_not_fit(cnn_app):
    model = cnn_app.setup.pruner.model
    assert unfit_layers(model, "magnitude", "2:4") == {"stem.0": "shape does not fit 2:4"}
    cnn_app.pattern.value = "2:4"
    assert cnn_app.state["excluded"] == {"stem.0": "shape does not fit 2:4"}
    assert "left dense: stem.0" in cnn_app.status.value
    assert "stem.0.weight" not in cnn_app.state["layer_sparsity"]
    check_consistent(cnn_app, 0.5)
    cnn_app.pattern.value = "unstructured"


def test_cnn_bn_scale_leaves_the_classifier_dense(cnn_app):
    cnn_app.criterion.value = "bn_scale"
    assert cnn_app.state["excluded"] == {"fc": "no BatchNorm after it"}
    cnn_app.slider.value = 0.3
    check_consistent(cnn_app, 0.3)
    cnn_app.criterion.value = "magnitude"


def test_unfit_layers_defers_to_the_pruner_when_nothing_would_be_left(app):
    model = app.setup.pruner.model
    assert unfit_layers(model, "bn_scale", "unstructured") == {}, "the MLP has no BatchNorm at all"
    assert unfit_layers(model, "magnitude", "block4x4") == {"fc3": "shape does not fit block4x4"}


def test_model_switch_and_unreachable_global_sparsity(app):
    app.model.value = "transformer"
    app.pattern.value = "head"
    assert app.state["model"] == "transformer" and app.state["pattern"] == "head"
    app.slider.value = 0.5
    check_consistent(app, 0.5)
    assert set(app.state["layer_sparsity"]) == {
        f"blocks.{b}.attn.{p}.weight" for b in (0, 1) for p in "qkvo" if p != "o"
    } | {f"blocks.{b}.attn.out.weight" for b in (0, 1)}
    app.scope.value = "global"
    check_consistent(app, 0.5)
    state, picture = dict(app.state), png(app)
    app.slider.value = 0.9  # one head kept per block: at most 75% of the heads' weights can go
    assert app.slider.value == 0.5 and "would empty a layer" in app.state["error"]
    assert {**app.state, "error": None} == state and png(app) == picture
    app.scope.value = "local"
    app.pattern.value = "unstructured"
    app.model.value = "mlp"
    assert app.state["model"] == "mlp"


def test_cnn_slider_leaves_the_model_untouched(cnn_app):
    model = cnn_app.setup.pruner.model
    before = state_copy(model)
    for value in (0.8, 0.1):
        cnn_app.slider.value = value
        check_consistent(cnn_app, value)
    assert_same_state(before, state_copy(model))
    assert len(cnn_app.view.images) == 4
    assert any(lines.get_segments() for lines in cnn_app.view.kernel_lines), "conv kernels are separated"
