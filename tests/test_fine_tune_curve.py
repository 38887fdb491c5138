"""Fine-tune curves: each point is a fresh copy pruned to its sparsity, measured before and after fine-tuning."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.iterative import fine_tune_curve


def test_points_match_one_shot_pruning_and_leave_the_model_alone(digits):
    model = wb.pretrained("mlp")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = fine_tune_curve(model, digits, (0.5, 0.9), epochs=1)
    assert [r["sparsity"] for r in rows] == [0.5, 0.9]
    for row in rows:
        copy = wb.pretrained("mlp")
        wb.prune(copy, row["sparsity"])
        assert row["pruned"] == pytest.approx(wb.evaluate(copy, digits.test), abs=1e-6)
    assert rows[1]["fine_tuned"] > rows[1]["pruned"]
    assert all((v == before[k]).all() for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="split"):
        fine_tune_curve(model, digits, (0.5,), split="train")
