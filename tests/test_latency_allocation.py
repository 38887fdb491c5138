"""Latency-aware allocation: equal parameters to the uniform allocation, steps taken by measured time per parameter,
the shrunk models exact; bad arguments refused before any timing."""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from workbench.latency_allocation import latency_allocation


@pytest.fixture(scope="module")
def plan():
    return latency_allocation(wb.pretrained("mlp"), 0.5, pattern=None, steps=4, min_run_time=0.02, batch=16)


def test_it_removes_as_many_parameters_as_uniform_allocation_to_within_one_unit(plan):
    assert plan.params <= plan.uniform_params
    one_unit = max(64 + 1 + 100, 300 + 1 + 10)  # an fc1 or fc2 neuron: its row, its bias, its next-layer column
    assert plan.uniform_params - plan.params < one_unit
    assert plan.params == sum(p.numel() for p in plan.shrunk().parameters())
    assert plan.uniform_params == sum(p.numel() for p in plan.shrunk(uniform=True).parameters())
    assert all(0 <= share <= 0.9 for share in plan.fractions.values())


def test_each_step_took_the_candidate_saving_most_time_per_parameter(plan):
    steps = {}
    for row in plan.table:
        steps.setdefault(row["step"], []).append(row)
    assert steps, "at least one step was measured"
    for rows in steps.values():
        assert all(row["params_saved"] > 0 for row in rows) and sum(row["chosen"] for row in rows) == 1
        chosen = next(row for row in rows if row["chosen"])
        rate = chosen["ms_saved"] / chosen["params_saved"]
        assert all(rate >= row["ms_saved"] / row["params_saved"] for row in rows)


def test_the_shrunk_model_computes_what_the_masked_one_does(plan):
    x = torch.randn(5, 64)
    small = plan.shrunk()
    with torch.no_grad():
        assert small(x).shape == (5, 10)
    assert small.fc1.out_features == 300 - round(plan.fractions[min(plan.fractions)] * 300)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"steps": 0}, "steps must be an integer >= 1"), ({"batch": 0}, "batch must be an integer >= 1")],
)
def test_bad_arguments_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        latency_allocation(wb.pretrained("mlp"), 0.5, **options)
    with pytest.raises(ValueError, match="sparsity"):
        latency_allocation(wb.pretrained("mlp"), 1.5)
