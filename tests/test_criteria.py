"""Importance criteria: shapes, determinism, no side effects, and agreement with hand computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_same_state, state_copy
from torch import nn

import workbench as wb
from workbench.criteria import CRITERIA, get_criterion

FAST = {"max_batches": 1, "max_samples": 32, "batch_size": 32, "steps": 5}  # each criterion takes the ones it accepts


def weight_names(model: nn.Module, kinds=(nn.Linear, nn.Conv2d), exclude=()) -> list[str]:
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, kinds) and n not in exclude]


def model_for(criterion: str) -> list[tuple[str, tuple[str, ...]]]:
    """(model, excluded layers) pairs a criterion applies to."""
    if criterion == "bn_scale":
        return [("cnn", ("fc",))]  # the only layers followed by BatchNorm
    return [("mlp", ()), ("cnn", ()), ("transformer", ())]


CASES = [(c, m, ex) for c in CRITERIA for m, ex in model_for(c)]


@pytest.mark.parametrize("criterion, model_name, exclude", CASES, ids=[f"{c}-{m}" for c, m, _ in CASES])
def test_scores_shaped_like_weights_finite_deterministic_and_side_effect_free(
    shipped, digits, criterion, model_name, exclude
):
    model = shipped(model_name)
    model.train()  # criteria must restore the mode they found
    names = weight_names(model, exclude=exclude)
    before = state_copy(model)
    spec = get_criterion(criterion)
    first = spec.score(model, names, digits, **spec.accepted(FAST))
    second = spec.score(model, names, digits, **spec.accepted(FAST))
    assert_same_state(state_copy(model), before)
    assert all(m.training for m in model.modules())
    assert set(first) == set(names)
    for name in names:
        weight = model.get_parameter(name)
        assert first[name].shape == weight.shape, name
        assert first[name].dtype.is_floating_point
        assert bool(torch.isfinite(first[name]).all()), name
        assert torch.equal(first[name], second[name]), f"{name}: not deterministic"


def test_registry_lists_every_criterion_with_a_description():
    assert {
        "magnitude",
        "random",
        "taylor",
        "snip",
        "snip_momentum",
        "obd",
        "synflow",
        "apoz",
        "mean_activation",
        "bn_scale",
        "fpgm",
    } <= set(CRITERIA)
    for name, criterion in CRITERIA.items():
        assert criterion.name == name and criterion.description and isinstance(criterion.needs_data, bool)
    with pytest.raises(ValueError, match="unknown criterion"):
        get_criterion("magnitud")


DATA_DRIVEN = [name for name, c in CRITERIA.items() if c.needs_data]


def test_data_driven_criteria_are_marked():
    assert {"taylor", "snip", "snip_momentum", "obd", "apoz", "mean_activation"} <= set(DATA_DRIVEN)
    assert not {"magnitude", "random", "synflow", "bn_scale", "fpgm"} & set(DATA_DRIVEN)


@pytest.mark.parametrize("criterion", DATA_DRIVEN)
def test_data_driven_criterion_without_data_raises_and_leaves_model_unchanged(shipped, criterion):
    model = shipped("mlp")
    before = state_copy(model)
    with pytest.raises(ValueError, match="data"):
        wb.prune(model, sparsity=0.5, criterion=criterion, pattern="unstructured")
    assert_same_state(state_copy(model), before)
    assert not wb.masks.is_masked(model)


def test_unknown_criterion_raises_and_leaves_model_unchanged(shipped):
    model = shipped("mlp")
    before = state_copy(model)
    with pytest.raises(ValueError, match="unknown criterion"):
        wb.prune(model, sparsity=0.5, criterion="bogus")
    assert_same_state(state_copy(model), before)


# ---- hand computations ----


def test_magnitude_is_abs_weight(shipped):
    model = shipped("cnn")
    names = weight_names(model)
    scores = CRITERIA["magnitude"].fn(model, names, None)
    for name in names:
        assert torch.equal(scores[name], model.get_parameter(name).detach().abs())


def test_random_depends_on_seed_only(shipped):
    model = shipped("mlp")
    names = weight_names(model)
    a = CRITERIA["random"].fn(model, names, None, seed=1)
    b = CRITERIA["random"].fn(shipped("mlp"), names, None, seed=1)
    c = CRITERIA["random"].fn(model, names, None, seed=2)
    assert all(torch.equal(a[n], b[n]) for n in names)
    assert not all(torch.equal(a[n], c[n]) for n in names)
    assert all(bool(((a[n] >= 0) & (a[n] < 1)).all()) for n in names)


def _hand_gradients(model: nn.Module, names, inputs, labels) -> dict[str, torch.Tensor]:
    model.eval()
    params = [model.get_parameter(n) for n in names]
    loss = F.cross_entropy(model(inputs), labels)
    return dict(zip(names, torch.autograd.grad(loss, params)))


def assert_abs_w_times_g(scores, model, grads) -> None:
    """Each score equals |w · g| for the given gradients."""
    for name, gradient in grads.items():
        expected = (model.get_parameter(name).detach() * gradient).abs()
        torch.testing.assert_close(scores[name], expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_taylor_is_squared_w_times_g_on_one_batch(shipped, digits, model_name):
    model = shipped(model_name)
    names = weight_names(model)
    x, y = digits.train.tensors[0][:50], digits.train.tensors[1][:50]
    scores = CRITERIA["taylor"].fn(model, names, (x, y))
    grads = _hand_gradients(shipped(model_name), names, x, y)
    for name, gradient in grads.items():
        expected = (model.get_parameter(name).detach() * gradient) ** 2
        torch.testing.assert_close(scores[name], expected, rtol=1e-4, atol=1e-12)


def test_taylor_sums_squares_per_batch_not_squares_of_summed_gradients(shipped, digits):
    """Molchanov et al. 2019: (w·g_b)² for each batch b, summed; gradients of opposite sign do not cancel."""
    model = shipped("mlp")
    names = weight_names(model)
    scores = CRITERIA["taylor"].fn(model, names, digits, max_batches=2)  # DataLoader batches of 128, in order
    x, y = digits.train.tensors
    g1 = _hand_gradients(shipped("mlp"), names, x[:128], y[:128])
    g2 = _hand_gradients(shipped("mlp"), names, x[128:256], y[128:256])
    for name in names:
        w = model.get_parameter(name).detach()
        expected = (w * g1[name]) ** 2 + (w * g2[name]) ** 2
        torch.testing.assert_close(scores[name], expected, rtol=1e-4, atol=1e-12)
        summed_first = (w * (g1[name] + g2[name])) ** 2
        assert not torch.allclose(scores[name], summed_first)


@pytest.mark.parametrize("batch_size", [16, 64])
def test_snip_is_abs_w_times_g_on_first_batch(shipped, digits, batch_size):
    model = shipped("mlp")
    names = weight_names(model)
    scores = CRITERIA["snip"].fn(model, names, digits, batch_size=batch_size)
    x, y = digits.train.tensors
    grads = _hand_gradients(shipped("mlp"), names, x[:batch_size], y[:batch_size])
    assert_abs_w_times_g(scores, model, grads)


def test_snip_momentum_accumulates_with_decay_and_gain(shipped, digits):
    model = shipped("mlp")
    names = weight_names(model)
    scores = CRITERIA["snip_momentum"].fn(model, names, digits, max_batches=2, decay=0.5, gain=0.9)
    x, y = digits.train.tensors
    g1 = _hand_gradients(shipped("mlp"), names, x[:64], y[:64])
    g2 = _hand_gradients(shipped("mlp"), names, x[64:128], y[64:128])
    for name in names:
        w = model.get_parameter(name).detach()
        expected = 0.5 * (0.9 * (w * g1[name]).abs()) + 0.9 * (w * g2[name]).abs()
        torch.testing.assert_close(scores[name], expected, rtol=1e-5, atol=1e-9)


def _tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return wb.build_model("mlp", in_features=64, hidden=(6,), num_classes=10)


@pytest.mark.parametrize("max_samples", [16, 100])  # 100 spans two internal batches of 64
def test_obd_fisher_matches_per_sample_gradient_loop(digits, max_samples):
    model = _tiny_mlp()
    names = weight_names(model)
    scores = CRITERIA["obd"].fn(model, names, digits, hessian="fisher", max_samples=max_samples)
    x, y = digits.train.tensors
    fisher = {n: torch.zeros_like(model.get_parameter(n)) for n in names}
    for i in range(max_samples):
        grads = _hand_gradients(model, names, x[i : i + 1], y[i : i + 1])
        for n in names:
            fisher[n] += grads[n] ** 2 / max_samples
    for n in names:
        expected = 0.5 * fisher[n] * model.get_parameter(n).detach() ** 2
        torch.testing.assert_close(scores[n], expected, rtol=1e-4, atol=1e-10)


def test_obd_hutchinson_converges_to_exact_hessian_diagonal(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))  # softmax regression: small exact Hessian
    x, y = digits.train.tensors[0][:40], digits.train.tensors[1][:40] % 3
    names = ["1.weight"]
    scores = CRITERIA["obd"].fn(model, names, (x, y), hessian="hutchinson", max_samples=40, probes=3000)
    w = model.get_parameter("1.weight").detach()

    def loss(weight):
        return F.cross_entropy(x.flatten(1) @ weight.T + model[1].bias.detach(), y)

    exact = torch.autograd.functional.hessian(loss, w).reshape(w.numel(), w.numel()).diagonal().view_as(w)
    estimate = scores["1.weight"] / (0.5 * w**2)
    error = (estimate - exact).abs().mean() / exact.abs().mean()
    assert error < 0.1, f"relative error {error:.3f}"


def test_obd_hutchinson_non_negative_and_correlated_with_fisher(shipped, digits):
    model = shipped("mlp")
    names = weight_names(model)
    fisher = CRITERIA["obd"].fn(model, names, digits, hessian="fisher", max_samples=128)
    hutch = CRITERIA["obd"].fn(model, names, digits, hessian="hutchinson", max_samples=128, probes=8)
    for n in names:
        assert bool((hutch[n] >= 0).all())
        w2 = 0.5 * model.get_parameter(n).detach().double() ** 2
        diagonals = torch.stack([(fisher[n].double() / w2).flatten(), (hutch[n].double() / w2).flatten()])
        assert torch.corrcoef(diagonals)[0, 1] > 0.15, n


def test_obd_rejects_unknown_hessian(shipped, digits):
    with pytest.raises(ValueError, match="hessian"):
        CRITERIA["obd"].fn(shipped("mlp"), ["fc1.weight"], digits, hessian="exact")


def test_synflow_without_data_matches_closed_form():
    """All-positive weights and inputs keep every ReLU open, so R is a product of |W|s and dR/dW has a closed form."""
    torch.manual_seed(0)
    model = wb.build_model("mlp", in_features=5, hidden=(4, 3), num_classes=2)
    names = ["fc1.weight", "fc2.weight", "fc3.weight"]
    scores = CRITERIA["synflow"].fn(model, names, None)
    W = [model.get_parameter(n).detach().double().abs() for n in names]
    b = [model.get_parameter(n.replace("weight", "bias")).detach().double().abs() for n in names]
    a0 = torch.ones(5, dtype=torch.float64)
    a1 = W[0] @ a0 + b[0]
    a2 = W[1] @ a1 + b[1]
    u3 = torch.ones(2, dtype=torch.float64)  # dR/d(output)
    u2 = W[2].T @ u3
    u1 = W[1].T @ u2
    expected = [W[0] * torch.outer(u1, a0), W[1] * torch.outer(u2, a1), W[2] * torch.outer(u3, a2)]
    for name, e in zip(names, expected):
        assert scores[name].dtype == torch.float32
        torch.testing.assert_close(scores[name], e.float(), rtol=1e-6, atol=0)


def test_synflow_needs_an_input_shape_for_plain_models():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    before = state_copy(model)
    with pytest.raises(ValueError, match="input shape"):
        wb.prune(model, sparsity=0.5, criterion="synflow")
    assert_same_state(state_copy(model), before)
    x = torch.randn(7, 4)
    scores = CRITERIA["synflow"].fn(model, ["0.weight"], (x, torch.zeros(7, dtype=torch.long)))
    assert scores["0.weight"].shape == (3, 4)


@pytest.mark.parametrize("criterion", ["apoz", "mean_activation"])
@pytest.mark.parametrize("model_name", ["mlp", "cnn", "transformer"])
def test_activation_scores_are_per_unit(shipped, digits, criterion, model_name):
    model = shipped(model_name)
    names = weight_names(model)
    scores = CRITERIA[criterion].fn(model, names, digits, max_batches=2)
    for name in names:
        s = scores[name].flatten(1)
        assert torch.equal(s, s[:, :1].expand_as(s)), "one score per output unit"
        assert bool((s >= 0).all())
        if criterion == "apoz":
            assert bool((s <= 1).all())


def test_apoz_is_share_of_positive_activations_by_hand(shipped, digits):
    model = shipped("mlp")
    x = digits.train.tensors[0][:128]
    scores = CRITERIA["apoz"].fn(model, ["fc1.weight", "fc2.weight"], digits, max_batches=1)
    with torch.no_grad():
        h1 = model.fc1(x.flatten(1))
        h2 = model.fc2(F.relu(h1))
    torch.testing.assert_close(scores["fc1.weight"][:, 0], (h1 > 0).float().mean(0))
    torch.testing.assert_close(scores["fc2.weight"][:, 0], (h2 > 0).float().mean(0))


def test_bn_scale_is_abs_gamma_of_following_batchnorm(shipped):
    model = shipped("cnn")
    result_pruner = wb.Pruner(model, "bn_scale", "filter")
    pairs = {
        "stem.0": "stem.1",
        "block1.conv1": "block1.bn1",
        "block1.conv2": "block1.bn2",
        "down.0": "down.1",
        "block2.conv1": "block2.bn1",
        "block2.conv2": "block2.bn2",
    }
    assert set(result_pruner.scores) == {f"{c}.weight" for c in pairs}
    for conv, bn in pairs.items():
        gamma = model.get_submodule(bn).weight.detach().abs()
        scores = result_pruner.scores[f"{conv}.weight"]
        assert torch.equal(scores, gamma.view(-1, 1, 1, 1).expand_as(scores))
    masks = result_pruner.masks(0.25)
    for conv, bn in pairs.items():  # the filters with the smallest |gamma| go
        gamma = model.get_submodule(bn).weight.detach().abs()
        kept = masks[f"{conv}.weight"].flatten(1).all(1)
        assert gamma[kept].min() >= gamma[~kept].max()


def test_bn_scale_without_batchnorm_raises(shipped):
    model = shipped("mlp")
    before = state_copy(model)
    with pytest.raises(ValueError, match="BatchNorm"):
        wb.prune(model, sparsity=0.3, criterion="bn_scale", pattern="neuron")
    assert_same_state(state_copy(model), before)


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_fpgm_is_sum_of_pairwise_distances(shipped, model_name):
    model = shipped(model_name)
    names = weight_names(model)
    scores = CRITERIA["fpgm"].fn(model, names, None)
    for name in names:
        filters = model.get_parameter(name).detach().double().flatten(1)
        expected = torch.stack([(filters - f).pow(2).sum(1).sqrt().sum() for f in filters])  # Σ_j ‖f_i − f_j‖
        s = scores[name].flatten(1)
        assert torch.equal(s, s[:, :1].expand_as(s))
        torch.testing.assert_close(s[:, 0].double(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("criterion", "options"),
    [
        ("taylor", {}),
        ("snip", {}),
        ("snip_momentum", {}),
        ("synflow", {}),
        ("obd", {"hessian": "hutchinson"}),
    ],
)
def test_gradient_criteria_score_frozen_layers_like_trainable_ones(shipped, digits, criterion, options):
    model = shipped("mlp")
    names = weight_names(model)
    expected = CRITERIA[criterion].fn(model, names, digits, **CRITERIA[criterion].accepted(FAST), **options)
    model.fc1.weight.requires_grad_(False)
    scores = CRITERIA[criterion].fn(model, names, digits, **CRITERIA[criterion].accepted(FAST), **options)
    for name in names:
        torch.testing.assert_close(scores[name], expected[name])


def test_obd_scores_frozen_layers_like_trainable_ones(shipped, digits):
    model = shipped("mlp")
    names = weight_names(model)
    expected = CRITERIA["obd"].fn(model, names, digits, **CRITERIA["obd"].accepted(FAST))
    model.fc1.weight.requires_grad_(False)
    scores = CRITERIA["obd"].fn(model, names, digits, **CRITERIA["obd"].accepted(FAST))
    for name in names:
        torch.testing.assert_close(scores[name], expected[name])


@pytest.mark.parametrize(
    "hessian",
    [
        "fisher",
        "hutchinson",
    ],
)
def test_obd_max_samples_caps_the_samples_used(digits, hessian):
    model = _tiny_mlp()
    x, y = digits.train.tensors
    names = weight_names(model)
    capped = CRITERIA["obd"].fn(model, names, (x[:200], y[:200]), hessian=hessian, max_samples=32)
    exact = CRITERIA["obd"].fn(model, names, (x[:32], y[:32]), hessian=hessian, max_samples=32)
    for name in names:
        torch.testing.assert_close(capped[name], exact[name])
