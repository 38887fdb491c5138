"""Training and evaluation: determinism, history, hooks, modes, input kinds, argument errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from helpers import assert_same_state, state_copy
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import workbench as wb


@pytest.fixture(scope="module")
def small(moons) -> TensorDataset:
    """256 training points of moons: a few steps per epoch."""
    return TensorDataset(*(t[:256] for t in moons.train.tensors))


def fresh(seed: int = 0, classes: int = 2) -> nn.Module:
    torch.manual_seed(seed)
    return wb.build_model("mlp2d", num_classes=classes)


def steps_per_epoch(dataset, batch_size: int) -> int:
    return math.ceil(len(dataset) / batch_size)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if n.endswith("weight")}


# ---------------------------------------------------------------- determinism and history


def test_same_seed_same_weights_bit_for_bit(moons):
    a, b = fresh(), fresh()
    history_a = wb.train(a, moons, epochs=2, progress=False, seed=5)
    history_b = wb.train(b, moons, epochs=2, progress=False, seed=5)
    assert_same_state(state_copy(a), state_copy(b))
    assert history_a == history_b
    # The seed matters: another data order gives other weights.
    c = fresh()
    wb.train(c, moons, epochs=2, progress=False, seed=6)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_history_lengths_and_ranges(moons, small):
    history = wb.train(fresh(), moons, epochs=3, progress=False)
    assert len(history.train_loss) == len(history.train_accuracy) == len(history.val_accuracy) == 3
    assert all(0 <= a <= 1 for a in history.train_accuracy + history.val_accuracy)
    assert all(loss > 0 and math.isfinite(loss) for loss in history.train_loss)
    assert history.to_dict() == {
        "train_loss": history.train_loss,
        "train_accuracy": history.train_accuracy,
        "val_accuracy": history.val_accuracy,
    }
    # A bare Dataset has no validation split.
    bare = wb.train(fresh(), small, epochs=2, progress=False)
    assert len(bare.train_loss) == 2 and bare.val_accuracy == []


def test_val_accuracy_is_accuracy_on_val_split(moons):
    model = fresh()
    history = wb.train(model, moons, epochs=2, progress=False)
    assert history.val_accuracy[-1] == wb.evaluate(model, moons.val)


def test_zero_epochs_leaves_model_unchanged(moons):
    model = fresh()
    before = state_copy(model)
    history = wb.train(model, moons, epochs=0, progress=False)
    assert_same_state(before, state_copy(model))
    assert history == wb.History()


def test_small_training_run_learns_moons(moons):
    model = fresh()
    wb.train(model, moons, epochs=10, lr=1e-2, progress=False)
    assert wb.evaluate(model, moons.test) > 0.9
    assert not model.training


def test_fine_tune_defaults(small):
    history = wb.fine_tune(fresh(), small, progress=False)
    assert len(history.train_loss) == 3


# ---------------------------------------------------------------- hooks


def test_loss_hook_called_every_step_with_model_and_loss(small):
    model, calls = fresh(), []

    def hook(m, loss):
        calls.append((m, loss.detach().clone()))
        assert loss.requires_grad and loss.dim() == 0
        return loss

    wb.train(model, small, epochs=2, batch_size=64, progress=False, loss_hook=hook)
    assert len(calls) == 2 * steps_per_epoch(small, 64)
    assert all(m is model for m, _ in calls)


def test_loss_hook_result_is_what_is_minimized(small):
    """A huge L1 penalty drives every weight to (near) zero; without it they stay large."""

    def l1(model, loss):
        return loss + 10 * sum(w.abs().sum() for w in weights(model).values())

    plain, penalized = fresh(), fresh()
    for model, hook in ((plain, None), (penalized, l1)):
        wb.train(model, small, epochs=8, lr=0.1, weight_decay=0.0, progress=False, loss_hook=hook)
    for name, w in weights(penalized).items():
        assert w.abs().max().item() < 0.05, name
    for name, w in weights(plain).items():
        assert w.abs().max().item() > 0.2, name


def test_loss_hook_returning_zero_loss_means_no_update(small):
    """Zero gradient and no weight decay: AdamW leaves every parameter bit for bit."""
    model = fresh()
    before = state_copy(model)
    wb.train(model, small, epochs=2, weight_decay=0.0, progress=False, loss_hook=lambda m, loss: loss * 0.0)
    assert_same_state(before, state_copy(model))


def test_step_hook_called_once_per_step_with_increasing_steps(small):
    steps, snapshots = [], []

    def hook(model, step):
        steps.append(step)
        snapshots.append(model.fc1.weight.detach().clone())

    wb.train(fresh(), small, epochs=3, batch_size=50, progress=False, step_hook=hook)
    assert steps == list(range(1, 3 * steps_per_epoch(small, 50) + 1))
    # called after optimizer.step(): the weights differ from one call to the next
    assert all(not torch.equal(a, b) for a, b in itertools.pairwise(snapshots))


def test_step_hook_keeps_masked_weights_exactly_zero(small):
    torch.manual_seed(1)
    masks = {name: torch.rand_like(w) > 0.5 for name, w in weights(fresh()).items()}

    def apply(model, step=None):
        with torch.no_grad():
            for name, w in weights(model).items():
                w.mul_(masks[name])

    masked, control = fresh(), fresh()
    apply(masked), apply(control)
    start = state_copy(masked)
    wb.train(masked, small, epochs=3, progress=False, step_hook=apply)
    wb.train(control, small, epochs=3, progress=False)
    for name, w in weights(masked).items():
        assert torch.equal(w[~masks[name]], torch.zeros_like(w[~masks[name]])), name
        assert not torch.equal(w[masks[name]], start[name][masks[name]]), f"{name}: kept weights never trained"
    # Without the hook, AdamW moves the masked weights off zero: the hook is what keeps them there.
    # (A masked weight of a dead ReLU unit gets no gradient and may stay zero, hence "most", not "all".)
    moved = torch.cat([(w[~masks[name]] != 0) for name, w in weights(control).items()]).float().mean().item()
    assert moved > 0.3


def test_augment_is_applied_to_training_batches(small):
    calls = []

    def blank(inputs, generator):
        calls.append(isinstance(generator, torch.Generator))
        return torch.zeros_like(inputs)

    model = fresh()
    history = wb.train(model, small, epochs=2, progress=False, augment=blank, lr=1e-2)
    assert calls and all(calls) and len(calls) == 2 * steps_per_epoch(small, 64)
    # With every input blanked, the model cannot do better than the majority class.
    labels = small.tensors[1]
    majority = max(labels.float().mean().item(), 1 - labels.float().mean().item())
    assert history.train_accuracy[-1] <= majority + 1e-6


# ---------------------------------------------------------------- evaluate / predict


class ModeRecorder(nn.Module):
    """A real module that records the mode it is called in (and can be made to fail)."""

    def __init__(self, inner: nn.Module, fail: bool = False):
        super().__init__()
        self.inner, self.fail, self.modes = inner, fail, []

    def forward(self, x):
        self.modes.append(self.training)
        if self.fail:
            raise RuntimeError("boom")
        return self.inner(x)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_runs_in_eval_mode_and_restores_mode(moons, training):
    model = ModeRecorder(fresh())
    model.train(training)
    wb.evaluate(model, moons.test)
    assert model.modes and not any(model.modes)
    assert model.training is training and model.inner.training is training
    failing = ModeRecorder(fresh(), fail=True)
    failing.train(training)
    with pytest.raises(RuntimeError, match="boom"):
        wb.evaluate(failing, moons.test)
    assert failing.training is training


def test_evaluate_agrees_across_input_kinds(shipped, digits):
    model = shipped("mlp")
    x, y = digits.test.tensors
    with torch.no_grad():
        expected = (model(x).argmax(1) == y).float().mean().item()
    assert wb.evaluate(model, digits.test) == expected
    assert wb.evaluate(model, (x, y)) == expected
    assert wb.evaluate(model, DataLoader(digits.test, batch_size=7)) == pytest.approx(expected, abs=1e-6)
    assert wb.evaluate(model, digits.test, batch_size=13) == pytest.approx(expected, abs=1e-6)


@given(batch=st.integers(1, 400))
def test_predict_order_and_shape_independent_of_batch_size(batch):
    data = wb.load_dataset("moons")
    model = fresh().eval()
    logits, labels = wb.predict(model, data.test, batch_size=batch)
    assert logits.shape == (len(data.test), 2)
    assert torch.equal(labels, data.test.tensors[1])
    with torch.no_grad():
        torch.testing.assert_close(logits, model(data.test.tensors[0]))


def test_evaluate_batchnorm_model_uses_running_stats(shipped, digits):
    model = shipped("cnn").train()
    eval_copy = shipped("cnn").eval()
    assert wb.evaluate(model, digits.test) == wb.evaluate(eval_copy, digits.test)
    assert model.training
    assert_same_state(state_copy(model), state_copy(eval_copy))  # no running stat was updated


@pytest.mark.parametrize("split", [[1, 2], "test", None, 3.0])
def test_evaluate_rejects_unknown_split_kinds(split):
    with pytest.raises(ValueError, match="split must be"):
        wb.evaluate(fresh(), split)


# ---------------------------------------------------------------- argument errors


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": -1},
        {"batch_size": 0},
        {"batch_size": -3},
        {"lr": 0.0},
        {"lr": -1e-3},
        {"device": "cuda:banana"},
        {"device": "tpu"},
    ],
)
def test_bad_arguments_raise_and_leave_model_unchanged(small, kwargs):
    model = fresh()
    before = state_copy(model)
    with pytest.raises(ValueError):
        wb.train(model, small, progress=False, **{"epochs": 1, **kwargs})
    assert_same_state(before, state_copy(model))
    assert model.training  # untouched: train() was never reached


@pytest.mark.parametrize("data", [[(torch.zeros(2), 0)], "moons", None, (torch.zeros(4, 2), torch.zeros(4))])
def test_bad_data_raises_and_leaves_model_unchanged(data):
    model = fresh()
    before = state_copy(model)
    with pytest.raises(ValueError, match="DatasetSplits"):
        wb.train(model, data, epochs=1, progress=False)
    assert_same_state(before, state_copy(model))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA exists here")
def test_cuda_without_cuda_is_a_value_error(small):
    model = fresh()
    before = state_copy(model)
    with pytest.raises(ValueError, match="CUDA is not available"):
        wb.train(model, small, epochs=1, device="cuda", progress=False)
    assert_same_state(before, state_copy(model))
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="CUDA"):
        wb.resolve_device("cuda:0")


def test_resolve_device():
    assert wb.resolve_device("cpu") == torch.device("cpu")
    assert wb.resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert wb.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        wb.resolve_device("gpu0")
