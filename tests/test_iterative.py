"""Iterative pruning: each round reaches its scheduled sparsity exactly, pruned weights stay pruned across
rounds, bad arguments change nothing, an interruption leaves consistent masks."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import assert_refused

import workbench as wb
from workbench.masks import get_masks


def test_rounds_follow_the_schedule_and_masks_only_grow(digits, monkeypatch):
    model = wb.pretrained("mlp")
    seen = []
    original = wb.iterative.train

    def spy(model, *args, **kwargs):
        seen.append({name: mask.clone() for name, mask in get_masks(model).items()})
        return original(model, *args, **kwargs)

    monkeypatch.setattr(wb.iterative, "train", spy)
    history = wb.iterative_prune(model, digits, sparsity=0.9, rounds=3, epochs=1, progress=False)
    s = wb.schedule("exponential", 0.0, 0.9, 0, 3, 1)
    total = sum(m.numel() for m in seen[0].values())
    for round_, masks, step in zip(history.rounds, seen, (1, 2, 3)):
        assert sum(int((~m).sum()) for m in masks.values()) == round(s(step) * total)
        assert round_.sparsity == pytest.approx(s(step), abs=1 / total)
    for earlier, later in itertools.pairwise(seen):
        for name in earlier:
            assert not (later[name] & ~earlier[name]).any(), "a pruned weight came back"
    assert [r.round for r in history.rounds] == [1, 2, 3] and history.split == "val"
    assert len(history.to_dicts()) == 3 and history.plot() is not None


def test_constant_fine_tuning_is_the_other_option(digits):
    model = wb.pretrained("mlp")
    history = wb.iterative_prune(model, digits, sparsity=0.5, rounds=1, epochs=1, lr_rewind=False, progress=False)
    assert history.rounds[0].sparsity == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sparsity": 1.0}, "sparsity"),
        ({"rounds": 0}, "rounds"),
        ({"epochs": -1}, "epochs"),
        ({"split": "train"}, "split"),
        ({"schedule": "quartic"}, "schedule"),
        ({"criterion": "nope"}, "criterion"),
        ({"exclude": ["fc9"]}, "fc9"),
        ({"pattern": "kernel"}, "Conv"),
    ],
)
def test_bad_arguments_change_nothing(digits, kwargs, message):
    model = wb.pretrained("mlp")
    settings = {"rounds": 2, "epochs": 1, "progress": False, **kwargs}
    assert_refused(model, lambda m: wb.iterative_prune(m, digits, **settings), message)


def test_an_interrupted_run_keeps_the_last_pruning_step(digits, monkeypatch):
    model = wb.pretrained("mlp")
    calls = []

    def interrupted_train(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(wb.iterative, "train", interrupted_train)
    with pytest.raises(KeyboardInterrupt):
        wb.iterative_prune(model, digits, sparsity=0.9, rounds=3, epochs=1, progress=False)
    expected = wb.schedule("exponential", 0.0, 0.9, 0, 3, 1)(2)
    assert wb.sparsity_report(model).sparsity == pytest.approx(expected, abs=1e-4)
    with torch.no_grad():
        assert model(digits.test.tensors[0][:4]).shape == (4, 10)


def test_train_options_reach_each_retraining(digits, monkeypatch):
    seen = []
    monkeypatch.setattr(wb.iterative, "train", lambda model, data, **kwargs: seen.append(kwargs))
    wb.iterative_prune(
        wb.pretrained("mlp"),
        digits,
        0.5,
        rounds=2,
        epochs=1,
        progress=False,
        train_options={"batch_size": 32, "weight_decay": 0.0},
    )
    assert [(k["batch_size"], k["weight_decay"]) for k in seen] == [(32, 0.0), (32, 0.0)]
    with pytest.raises(ValueError, match="train_options takes no 'epochs'"):
        wb.iterative_prune(wb.pretrained("mlp"), digits, 0.5, rounds=1, progress=False, train_options={"epochs": 3})
