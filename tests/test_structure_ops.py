"""The op table of structured tracing: one entry per op, and an op without one blocks what it reads."""

import warnings

import pytest
import torch
from torch import nn

import workbench.structure as structure
from workbench.structure import graph, ops


class RunningSum(nn.Module):
    """A running sum over the tokens, an op the table has no entry for; the channels stay where they are."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 6), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(torch.cumsum(self.fc1(x), dim=1))


def _hidden(model):
    graph_ = graph.trace_groups(model, torch.randn(2, 5, 8))
    return next(g for g in graph_.groups if any(m.param == "fc1.weight" for m in g.producers))


def test_public_names_stay_importable_from_graph():
    for name in ("trace_groups", "DependencyGraph", "DependencyGroup", "Member", "ConsumerPoint"):
        assert getattr(graph, name) is getattr(structure, name)


def test_op_without_an_entry_warns_and_blocks():
    assert "cumsum" not in ops.OPS
    with pytest.warns(UserWarning, match="node 'cumsum'"):
        hidden = _hidden(RunningSum())
    assert not hidden.prunable and "cumsum" in hidden.reasons[0]


def _cumsum(tracer, node):
    """A running sum keeps every dim: the channels pass through unless it runs along them."""
    sid, dim, _ = tracer.ann[node.args[0]]
    rank = node.meta["val"].dim()
    if node.args[1] % rank == dim % rank:
        tracer.unsupported(node, [sid], "sums along the channel dim")
    else:
        ops.pass_through(tracer, node)


def test_one_entry_supports_a_new_op(monkeypatch):
    monkeypatch.setitem(ops.OPS, "cumsum", ops.one_input(_cumsum))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hidden = _hidden(RunningSum())
    assert hidden.prunable and {m.param for m in hidden.members} == {"fc1.weight", "fc1.bias", "fc2.weight"}
