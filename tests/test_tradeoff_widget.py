"""The trade-off view shows what its table says: the ringed points are the table's at the chosen sparsity, on every
panel; the Pareto marks agree with ``pareto_points``; a slider move redraws without rebuilding."""

import numpy as np
import pytest

from workbench.tradeoff import pareto_points, recorded_tradeoff
from workbench.widgets.tradeoff import TradeoffView


@pytest.fixture(scope="module")
def view():
    return TradeoffView()


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9])
def test_the_rings_sit_on_the_tables_points_on_every_panel(view, model, sparsity):
    view.controller.set({"model": model, "sparsity": sparsity})
    table = recorded_tradeoff()
    expected = table[(table["model"] == model) & (table["sparsity"] == sparsity) & table["available"]]
    assert set(view.state["points"]) == set(zip(expected["pattern"], expected["mode"]))
    figure, _ = view._figure(model, view.device.value)
    accuracy_ring, latency_ring, file_ring = (ring.get_data() for ring in figure.rings)
    assert np.allclose(sorted(latency_ring[0]), sorted(expected["relative_latency"]))
    assert np.allclose(sorted(file_ring[0]), sorted(expected["file_share"]))
    assert np.allclose(sorted(latency_ring[1]), sorted(100 * expected["accuracy"]))
    dense = expected[expected["mode"] == "dense"]
    assert np.allclose(sorted(accuracy_ring[1]), sorted(100 * dense["accuracy"]))
    assert view.points.value.count("<tr") == len(expected) + 1  # a header and a row per point


def test_pareto_marks_agree_with_pareto_points(view):
    view.controller.set({"model": "cnn", "sparsity": 0.5})
    table = recorded_tradeoff()
    rows = table[(table["model"] == "cnn")]
    fronts = [pareto_points(rows, cost) for cost in ("relative_latency", "file_share")]
    expected = {(r["pattern"], r["mode"]) for f in fronts for _, r in f.iterrows() if r["sparsity"] == 0.5}
    marked = {key for key, point in view.state["points"].items() if point["pareto"]}
    assert marked == expected and marked


def test_a_slider_move_redraws_the_image_and_builds_nothing(view):
    view.controller.set({"model": "mlp", "sparsity": 0.5})
    builds, image = len(view.build_ms), view.image.value
    view.slider.value = 0.8
    assert view.image.value != image and len(view.build_ms) == builds
    assert view.state["sparsity"] == 0.8 and "80%" in view.status.value


def test_a_pattern_without_the_chosen_sparsity_is_named_in_the_status(view):
    view.controller.set({"model": "mlp", "sparsity": 0.9})
    assert all(pattern != "2:4" for pattern, _ in view.state["points"])
    assert "not measured here: 2:4" in view.status.value
