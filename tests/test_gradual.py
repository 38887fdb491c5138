"""Train-time pruning: exact sparsity at every pruning step, monotone, pruned weights stay zero through any
optimizer, train-time scores follow their formulas, interruptions leave a consistent model."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_refused
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import workbench as wb
from workbench.masks import dense_parameter, get_masks, is_masked

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
}


def small_mlp(widths, seed):
    torch.manual_seed(seed)
    layers = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def train_steps(model, gp, optimizer, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    width = model[0].in_features
    seen = []
    for _ in range(steps):
        x = torch.randn(16, width, generator=generator)
        y = torch.randint(0, model[-1].out_features, (16,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        if gp.step() is not None:
            pruned = {name: int((~mask).sum()) for name, mask in get_masks(model).items()}
            seen.append((gp.step_count - 1, gp.sparsity(), pruned))
        for name, mask in get_masks(model).items():
            assert dense_parameter(model, name).grad is not None
            module, _, leaf = name.rpartition(".")
            assert (getattr(model.get_submodule(module), leaf)[~mask] == 0).all(), "a pruned weight came back"
    return seen


@given(
    widths=st.lists(st.integers(4, 24), min_size=3, max_size=4),
    kind=st.sampled_from(list(wb.SCHEDULES)),
    final=st.floats(0.1, 0.95),
    end=st.integers(0, 12),
    every=st.integers(1, 4),
    scope=st.sampled_from(["local", "global"]),
    optimizer=st.sampled_from(list(OPTIMIZERS)),
    seed=st.integers(0, 5),
)
def test_sparsity_is_the_schedule_exactly_and_never_falls(widths, kind, final, end, every, scope, optimizer, seed):
    model = small_mlp(widths, seed)
    s = wb.schedule(kind, initial=0.0, final=final, start=0, end=end, every=every)
    gp = wb.GradualPruner(model, s, "magnitude", "unstructured", scope)
    seen = train_steps(model, gp, OPTIMIZERS[optimizer](model.parameters()), end + 3, seed)
    assert [step for step, _, _ in seen] == s.pruning_steps()
    sizes = {f"{i}.weight": m.weight.numel() for i, m in enumerate(model) if isinstance(m, nn.Linear)}
    for step, _, pruned in seen:
        target = s(step)
        if scope == "global":
            assert sum(pruned.values()) == round(target * sum(sizes.values()))
        else:
            for name, n in sizes.items():
                assert pruned.get(name, 0) == min(round(target * n), n - 1), name
    assert all(a <= b for (_, a, _), (_, b, _) in itertools.pairwise(seen)), "sparsity fell"


def test_snip_momentum_and_movement_build_up_their_formulas():
    model = small_mlp([6, 5, 3], 0)
    for name, expected_step in (
        ("snip_momentum", lambda w, g: 0.9 * (w * g).abs()),
        ("movement", lambda w, g: -(w * g)),
    ):
        work = small_mlp([6, 5, 3], 0)
        s = wb.schedule("one_shot", final=0.5, start=100, end=100, every=1)  # never prunes in 5 steps
        gp = wb.GradualPruner(work, s, name, "unstructured", "local")
        optimizer = torch.optim.SGD(work.parameters(), lr=0.1)
        expected = torch.zeros_like(work[0].weight)
        generator = torch.Generator().manual_seed(1)
        for _ in range(5):
            x, y = torch.randn(8, 6, generator=generator), torch.randint(0, 3, (8,), generator=generator)
            optimizer.zero_grad()
            F.cross_entropy(work(x), y).backward()
            optimizer.step()
            expected += expected_step(work[0].weight.detach(), work[0].weight.grad)
            gp.step()
        torch.testing.assert_close(gp.scores["0.weight"], expected)
    assert not is_masked(model)


def test_train_time_scores_decide_what_goes():
    model = small_mlp([6, 8, 3], 0)
    s = wb.schedule("one_shot", final=0.5, start=3, end=3, every=1)
    gp = wb.GradualPruner(model, s, "movement", "unstructured", "local")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_steps(model, gp, optimizer, 3)
    assert train_steps(model, gp, optimizer, 1), "step 3 prunes"
    scores = gp.scores["0.weight"]  # gathered over steps 0–3, the pruning step included
    mask = get_masks(model)["0.weight"]
    assert scores[mask].min() >= scores[~mask].max(), "the highest movement scores stay"


def test_our_trainer_steps_the_pruner(digits):
    model = wb.pretrained("mlp")
    s = wb.schedule("cubic", final=0.9, start=0, end=40, every=10)
    gp = wb.GradualPruner(model, s)
    wb.train(model, digits, epochs=3, progress=False, pruner=gp)  # 20 steps an epoch
    assert round(gp.sparsity(), 4) == 0.9
    assert [step for step, _, _ in gp.events] == [0, 10, 20, 30, 40]


class Interrupt(Exception):
    pass


def test_an_interrupted_run_leaves_masks_applied_and_a_true_report(digits):
    model = wb.pretrained("mlp")
    s = wb.schedule("linear", final=0.8, start=0, end=30, every=5)
    gp = wb.GradualPruner(model, s)

    def stop(model, step):
        if step == 17:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wb.train(model, digits, epochs=3, progress=False, pruner=gp, step_hook=stop)
    assert is_masked(model)
    report = wb.sparsity_report(model)
    assert abs(report.sparsity - s(16)) < 1e-3 and abs(gp.sparsity() - report.sparsity) < 1e-12


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda m: wb.GradualPruner(m, schedule=0.5), "wb.schedule"),
        (lambda m: wb.GradualPruner(nn.Sequential(nn.ReLU()), wb.schedule()), "nothing to prune"),
        (lambda m: wb.GradualPruner(m, wb.schedule(), pattern="kernel"), "Conv"),
        (lambda m: wb.GradualPruner(m, wb.schedule(), criterion="taylor"), "data"),
        (lambda m: wb.GradualPruner(m, wb.schedule(), reduse="sum"), "reduce, normalize"),
        (lambda m: wb.GradualPruner(m, wb.schedule(), exclude=["fc9"]), "fc9"),
        (lambda m: wb.GradualPruner(m, wb.schedule(), criterion="movement").step(), "no gradient"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(make, message):
    model = wb.pretrained("mlp")
    assert_refused(model, make, message)


def test_interpolated_masks_remove_the_difference_in_equal_steps_weakest_first():
    model = small_mlp([6, 8, 3], 0)
    start = {"0.weight": torch.ones(8, 6, dtype=torch.bool)}
    end = {"0.weight": torch.ones(8, 6, dtype=torch.bool)}
    end["0.weight"][:4] = False  # four rows go: 24 weights
    frames = wb.gradual.interpolated_masks(model, start, end, 4)
    removed = [int((~f["0.weight"]).sum()) for f in frames]
    assert removed == [6, 12, 18, 24] and torch.equal(frames[-1]["0.weight"], end["0.weight"])
    for earlier, later in itertools.pairwise(frames):
        assert not (later["0.weight"] & ~earlier["0.weight"]).any()
    first_gone = ~frames[0]["0.weight"]
    weights = model[0].weight.detach().abs()
    assert weights[first_gone].max() <= weights[:4][frames[0]["0.weight"][:4]].min()


def test_progressive_structured_pruning_fades_rows_out_then_matches_the_schedule():
    model = small_mlp([6, 10, 10, 3], 1)
    s = wb.schedule("one_shot", final=0.5, start=2, end=2, every=1)
    gp = wb.GradualPruner(model, s, "magnitude", "neuron", "local", progressive=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    train_steps(model, gp, optimizer, 3)  # steps 0, 1, 2: the pruning step starts the fade
    partial = get_masks(model)["0.weight"]
    assert 0 < int((~partial).sum()) < 30 and not partial.all(1).logical_or(~partial.any(1)).all(), "rows half gone"
    train_steps(model, gp, optimizer, 3)
    final = get_masks(model)["0.weight"]
    assert int((~final.any(1)).sum()) == 5 and bool((final.all(1) | ~final.any(1)).all()), "whole rows, as scheduled"


def test_progressive_must_end_before_the_next_pruning_step():
    with pytest.raises(ValueError, match="shorter than the schedule's every"):
        wb.GradualPruner(wb.pretrained("mlp"), wb.schedule(every=5), progressive=5)
