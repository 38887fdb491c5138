"""SensitivityBoard and the budget it shows: sliders → Pruner accuracy, tolerance → max_sparsity, measure's counts."""

from __future__ import annotations

import pytest
import torch
from browser_slider import Browser
from helpers import assert_same_state, retry_load, state_copy
from torch import nn

import workbench as wb
from workbench.measure import effective_flops, flops, layer_flops, parameter_counts
from workbench.sensitivity import SPARSITIES
from workbench.widgets.sensitivity_board import SensitivityBoard


@pytest.fixture(scope="module")
def board() -> SensitivityBoard:
    return retry_load(lambda: SensitivityBoard("mlp"))


def check_consistent(board: SensitivityBoard, layer_sparsity: dict[str, float]) -> None:
    masks = board.pruner.masks(layer_sparsity=layer_sparsity)
    state = board.state
    assert state["layer_sparsity"] == layer_sparsity
    assert state["accuracy"] == board.pruner.accuracy(masks, board.data.test)
    total, nonzero = parameter_counts(board.model, masks)
    assert state["params"] == {"total": total, "nonzero": nonzero}
    assert state["flops"] == {
        "dense": flops(board.model, board.sample),
        "effective": effective_flops(board.model, board.sample, masks),
    }
    for name, marker in board.view.markers.items():
        assert marker.get_xdata()[0] == 100 * layer_sparsity[name]
    widths = [bar.get_width() for bar in board.view.meter]
    assert widths == pytest.approx(
        [
            100 * nonzero / total,
            100 * state["flops"]["effective"] / state["flops"]["dense"],
            100 * state["accuracy"] / board.result.baseline,
        ]
    )
    assert bytes(board.image.value).startswith(b"\x89PNG")


def test_initial_state_is_dense(board):
    assert list(board.sliders) == ["fc1", "fc2", "fc3"]
    assert board.result.sparsities.tolist() == list(SPARSITIES)
    check_consistent(board, {"fc1": 0.0, "fc2": 0.0, "fc3": 0.0})
    assert board.state["accuracy"] == board.result.baseline
    assert board.state["params"]["nonzero"] == board.state["params"]["total"] == wb.count_parameters(board.model)


def test_sliders_drive_the_combined_choice(board):
    board.sliders["fc1"].value = 0.8
    board.sliders["fc2"].value = 0.55
    check_consistent(board, {"fc1": 0.8, "fc2": 0.55, "fc3": 0.0})
    assert board.state["params"]["nonzero"] == board.state["params"]["total"] - round(0.8 * 19200) - round(0.55 * 30000)
    saved = 2 * (round(0.8 * 19200) + round(0.55 * 30000))  # an ideal kernel skips 2 FLOPs per pruned weight
    assert board.state["flops"]["effective"] == pytest.approx(board.state["flops"]["dense"] - saved)


def test_apply_tolerance_sets_sliders_to_max_sparsity(board):
    for tolerance in (0.0, 0.02, 0.2):
        board.tolerance.value = tolerance
        updates = len(board.update_ms)
        board.apply_button.click()
        chosen = board.result.max_sparsity(tolerance)
        assert {name: slider.value for name, slider in board.sliders.items()} == chosen
        assert len(board.update_ms) == updates + 1, "one update for all sliders"
        check_consistent(board, chosen)
        assert board.view.floor.get_ydata()[0] == pytest.approx(100 * (board.result.baseline - tolerance))


def test_the_browser_cannot_undo_what_code_set(board, monkeypatch):
    """Cells set sliders and apply the tolerance; the browser catches up afterwards and must change nothing."""
    browsers = [Browser(slider, monkeypatch) for slider in (*board.sliders.values(), board.tolerance)]
    board.sliders["fc1"].value = 0.8
    board.sliders["fc2"].value = 0.4
    board.sliders["fc2"].value = 0.1
    board.tolerance.value = 0.015
    board.apply_button.click()
    board.sliders["fc3"].value = 0.9
    chosen = {**board.result.max_sparsity(0.015), "fc3": 0.9}
    echoes = [browser.catch_up() for browser in browsers]
    assert {name: slider.value for name, slider in board.sliders.items()} == chosen
    assert board.tolerance.value == 0.015
    check_consistent(board, chosen)
    assert echoes == [[], [], [], []], "the browser had nothing to send back"


def test_the_picture_is_shown_at_its_own_width(board):
    assert int.from_bytes(bytes(board.image.value)[16:20], "big") == 840, "the PNG header's width"
    assert (board.image.layout.width, board.image.layout.max_width) == ("840px", "100%")


def test_board_never_modifies_the_model(board):
    before = state_copy(board.model)
    board.sliders["fc3"].value = 0.9
    board.apply_button.click()
    assert_same_state(before, state_copy(board.model))
    assert not wb.masks.is_masked(board.model)


def test_count_parameters(shipped):
    model = shipped("cnn")
    total = wb.count_parameters(model)
    assert parameter_counts(model) == (total, total)
    pruner = wb.Pruner(model)
    masks = pruner.masks(0.5)
    pruned = sum(int((~m).sum()) for m in masks.values())
    assert parameter_counts(model, masks) == (total, total - pruned)
    wb.prune(model, 0.5)  # a masked model counts its masked values, the same
    assert parameter_counts(model) == (total, total - pruned)
    assert parameter_counts(model, {name: ~m for name, m in masks.items()}) == (
        total,
        total - sum(m.numel() for m in masks.values()),
    )


def test_flops_by_hand(shipped, digits):
    sample = digits.test.tensors[0][:1]
    assert flops(shipped("mlp"), sample) == 2 * (64 * 300 + 300 * 100 + 100 * 10)
    cnn = shipped("cnn")
    total, per_layer = layer_flops(cnn, sample)
    conv = lambda out, inp, size: 2 * out * inp * 9 * size * size  # noqa: E731 - 3×3 kernels, 8×8 or 4×4 outputs
    assert per_layer == {
        "stem.0": conv(32, 1, 8),
        "block1.conv1": conv(32, 32, 8),
        "block1.conv2": conv(32, 32, 8),
        "down.0": conv(64, 32, 4),
        "block2.conv1": conv(64, 64, 4),
        "block2.conv2": conv(64, 64, 4),
        "fc": 2 * 64 * 10,
    }
    assert total == sum(per_layer.values())
    assert layer_flops(cnn, sample.repeat(3, 1, 1, 1))[0] == 3 * total


def test_effective_flops_scales_each_layer(shipped, digits):
    cnn = shipped("cnn")
    sample = digits.test.tensors[0][:1]
    total, per_layer = layer_flops(cnn, sample)
    masks = wb.Pruner(cnn).masks(layer_sparsity={"down.0": 0.25, "fc": 0.5})
    assert effective_flops(cnn, sample, {}) == total
    assert effective_flops(cnn, sample, masks) == pytest.approx(
        total - 0.25 * per_layer["down.0"] - 0.5 * per_layer["fc"]
    )
    layer = nn.Linear(4, 2, bias=False)
    mask = torch.tensor([[True, False, False, False], [True, True, False, False]])
    assert effective_flops(layer, torch.ones(5, 4), {"weight": mask}) == 5 * 2 * 3
    cnn.train()
    layer_flops(cnn, sample)  # counts in eval mode (BatchNorm statistics untouched), then restores the mode
    assert cnn.training
