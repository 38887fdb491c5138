"""Recorded runs: a frame at every pruning step, histograms that count every weight, masks that match."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.recording import record_gradual


def test_frames_follow_the_run(digits):
    s = wb.schedule("linear", final=0.8, start=10, end=50, every=20)
    run = record_gradual(wb.pretrained("mlp"), digits, s, epochs=3, frame_every=15, layers=["fc1.weight"])
    steps = run.steps
    assert {10, 30, 50} <= set(steps) and {0, 15, 45} <= set(steps) and steps == sorted(steps)
    for frame in run.frames:
        assert frame.sparsity == pytest.approx(s(frame.step), abs=1e-4)
        assert int(frame.histograms["fc1.weight"].sum()) == 300 * 64
        mask = frame.masks["fc1.weight"]
        pruned = int((~mask).sum())
        assert mask.shape == (300, 64)
        assert frame.histograms["fc1.weight"][0] >= pruned, "pruned weights are exact zeros, in the first bin"
        assert 0 <= frame.accuracy <= 1
    assert run.at(31).step == 30 and run.at(0).step == 0
    assert run.frames[-1].accuracy > 0.8


def test_bad_recordings_are_refused(digits):
    with pytest.raises(ValueError, match="frame_every"):
        record_gradual(wb.pretrained("mlp"), digits, wb.schedule(), frame_every=0)
    with pytest.raises(ValueError, match="not pruned here"):
        record_gradual(wb.pretrained("mlp"), digits, wb.schedule(), layers=["fc9.weight"])
