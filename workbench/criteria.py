"""Importance criteria: each maps (model, weight names, data) to scores shaped like the weights.

Higher score = more important = kept longer. Per-unit criteria (APoZ, mean activation, BN scale,
FPGM) give every weight of an output unit that unit's score, so any pattern can aggregate them.
A new criterion is one function and one ``register`` call.

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> scores = CRITERIA["magnitude"].fn(model, ["fc1.weight"], None)
    >>> bool(torch.equal(scores["fc1.weight"], model.fc1.weight.abs()))
    True
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .data import batches
from .masks import dense_parameter
from .models import input_shape

Scores = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Criterion:
    name: str
    fn: Callable[..., Scores]  # fn(model, names, data, **options) -> scores
    needs_data: bool
    description: str


CRITERIA: dict[str, Criterion] = {}


def register(name: str, needs_data: bool, description: str):
    """Decorator adding a criterion function to ``CRITERIA``."""

    def wrap(fn):
        CRITERIA[name] = Criterion(name, fn, needs_data, description)
        return fn

    return wrap


def get_criterion(name: str) -> Criterion:
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; choose one of {', '.join(CRITERIA)}")
    return CRITERIA[name]


def _parameters(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """The dense tensors behind ``names`` (the originals of masked weights)."""
    return {name: dense_parameter(model, name) for name in names}


@contextmanager
def _trainable(params: list[torch.Tensor]):
    """Let gradients reach ``params`` (frozen ones too) and leave their requires_grad and .grad as found."""
    saved = [(p, p.requires_grad, p.grad) for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
            p.grad = None
        yield
    finally:
        for p, requires_grad, gradient in saved:
            p.requires_grad_(requires_grad)
            p.grad = gradient


def _weight_gradients(model: nn.Module, names: list[str], data, max_batches: int | None, batch_size: int = 128):
    """Yield {name: (weight, gradient of the mean cross-entropy)} batch by batch, the model in eval mode."""
    params = _parameters(model, names)
    was_training = model.training
    model.eval()
    with _trainable(list(params.values())):
        try:
            device = next(model.parameters()).device
            for inputs, labels in batches(data, batch_size, max_batches):
                for p in params.values():
                    p.grad = None
                F.cross_entropy(model(inputs.to(device)), labels.to(device)).backward()
                yield {name: (p.detach(), p.grad.detach().clone()) for name, p in params.items()}
        finally:
            model.train(was_training)


@register("magnitude", needs_data=False, description="|w|; groups reduce it to L1 (sum) or L2 norms")
def magnitude(model, names, data, **_) -> Scores:
    return {name: p.detach().abs() for name, p in _parameters(model, names).items()}


RANDOM_STREAM = 0x5C0_12E5  # offsets the seed: seed 0 must not replay torch.manual_seed(0)'s init draws


@register("random", needs_data=False, description="uniform random scores (a baseline), seeded")
def random_scores(model, names, data, seed: int = 0, **_) -> Scores:
    generator = torch.Generator().manual_seed(RANDOM_STREAM + seed)
    return {
        name: torch.rand(p.shape, generator=generator).to(p.device) for name, p in _parameters(model, names).items()
    }


@register(
    "taylor",
    needs_data=True,
    description="first-order Taylor (w·g)² per batch, summed over batches (Molchanov et al. 2019)",
)
def taylor(model, names, data, max_batches: int | None = 8, **_) -> Scores:
    scores = {}
    for step in _weight_gradients(model, names, data, max_batches):
        for name, (w, g) in step.items():
            scores[name] = scores.get(name, 0) + (w * g) ** 2
    return scores


@register(
    "snip", needs_data=True, description="SNIP connection sensitivity |w·g| on one batch, usable at initialization"
)
def snip(model, names, data, batch_size: int = 256, **_) -> Scores:
    (step,) = _weight_gradients(model, names, data, max_batches=1, batch_size=batch_size)
    return {name: (w * g).abs() for name, (w, g) in step.items()}


@register(
    "snip_momentum", needs_data=True, description="score_n = 1.0·score_(n-1) + 0.9·|W_n·G_n| over mini-batch steps"
)
def snip_momentum(
    model, names, data, max_batches: int | None = 8, decay: float = 1.0, gain: float = 0.9, **_
) -> Scores:
    scores = {}
    for step in _weight_gradients(model, names, data, max_batches, batch_size=64):
        for name, (w, g) in step.items():
            scores[name] = decay * scores.get(name, 0) + gain * (w * g).abs()
    return scores


@register(
    "obd",
    needs_data=True,
    description="second-order saliency ½·h_ii·w², diagonal Hessian by empirical Fisher or Hutchinson",
)
def obd(
    model, names, data, hessian: str = "fisher", max_samples: int = 256, probes: int = 4, seed: int = 0, **_
) -> Scores:
    if hessian not in ("fisher", "hutchinson"):
        raise ValueError(f"hessian must be 'fisher' or 'hutchinson', got {hessian!r}")
    estimate = _fisher_diagonal if hessian == "fisher" else _hutchinson_diagonal
    diagonal = estimate(model, names, data, max_samples, probes, seed)
    return {name: 0.5 * diagonal[name] * p.detach() ** 2 for name, p in _parameters(model, names).items()}


def _fisher_diagonal(model, names, data, max_samples, probes, seed):
    """Mean over samples of squared per-sample gradients (the empirical Fisher's diagonal)."""
    model = copy.deepcopy(model).eval()
    state = {**{n: p.detach() for n, p in model.named_parameters()}, **dict(model.named_buffers())}
    chosen = {name: dense_parameter(model, name).detach() for name in names}
    registered = {
        name: next(n for n, p in model.named_parameters() if p is dense_parameter(model, name)) for name in names
    }

    def sample_loss(weights, x, y):
        overrides = {registered[name]: w for name, w in weights.items()}
        logits = functional_call(model, {**state, **overrides}, (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    total, count = {name: torch.zeros_like(p) for name, p in chosen.items()}, 0
    device = next(iter(chosen.values())).device
    for inputs, labels in batches(data, batch_size=64):
        inputs, labels = inputs[: max_samples - count], labels[: max_samples - count]
        for name, g in per_sample(chosen, inputs.to(device), labels.to(device)).items():
            total[name] += (g**2).sum(0)
        count += len(labels)
        if count >= max_samples:
            break
    return {name: t / count for name, t in total.items()}


def _hutchinson_diagonal(model, names, data, max_samples, probes, seed):
    """E[v ⊙ Hv] over Rademacher probes v, Hessian-vector products by double backward."""
    params = _parameters(model, names)
    generator = torch.Generator().manual_seed(seed)
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    was_training = model.training
    model.eval()
    with _trainable(list(params.values())):
        try:
            device = next(model.parameters()).device
            inputs, labels = next(batches(data, batch_size=max_samples))
            inputs, labels = inputs[:max_samples], labels[:max_samples]
            loss = F.cross_entropy(model(inputs.to(device)), labels.to(device))
            gradients = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            for _ in range(probes):
                vs = [(torch.randint(0, 2, p.shape, generator=generator) * 2 - 1).to(p) for p in params.values()]
                hvs = torch.autograd.grad(gradients, list(params.values()), grad_outputs=vs, retain_graph=True)
                for name, v, hv in zip(params, vs, hvs):
                    total[name] += v * hv / probes
        finally:
            model.train(was_training)
    return {name: t.detach().clamp_min(0) for name, t in total.items()}


@register(
    "synflow",
    needs_data=False,
    description="SynFlow |θ·∂R/∂θ| with R = sum of the |θ|-network's output on ones; data-free",
)
def synflow(model, names, data, **_) -> Scores:
    probe = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in probe.parameters():
            p.abs_().requires_grad_(True)
    input_shape = _input_shape(model, data)
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=next(probe.parameters()).device)
    probe(ones).sum().backward()
    params = _parameters(probe, names)
    return {name: (p * p.grad).detach().abs().to(dense_parameter(model, name).dtype) for name, p in params.items()}


def _input_shape(model, data) -> tuple[int, ...]:
    if data is not None:
        inputs, _ = next(batches(data, batch_size=1))
        return tuple(inputs.shape[1:])
    shape = input_shape(model)
    if shape is None:
        raise ValueError("synflow needs the input shape: pass data=... (one batch is enough) for this model")
    return shape


# ---- per-unit criteria: one score per output unit, broadcast over the unit's weights ----


def _broadcast(unit_scores: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return unit_scores.to(weight).view(-1, *[1] * (weight.dim() - 1)).expand_as(weight).clone()


def _following_batchnorm(model: nn.Module) -> dict[str, nn.Module]:
    """For each Linear/Conv whose output feeds only a BatchNorm, that BatchNorm (found on an fx trace)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # models with data-dependent Python cannot be traced; no pairs then
        return {}
    modules = dict(model.named_modules())
    pairs = {}
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), (nn.Linear, nn.Conv1d, nn.Conv2d)):
            users = list(node.users)
            if (
                len(users) == 1
                and users[0].op == "call_module"
                and isinstance(modules[users[0].target], nn.modules.batchnorm._BatchNorm)
            ):
                pairs[node.target] = modules[users[0].target]
    return pairs


def _unit_activations(model, names, data, max_batches, reduce_fn) -> Scores:
    """Per output unit: reduce_fn over the activations after each layer (after its BatchNorm when it has one)."""
    layer_names = [name.rpartition(".")[0] for name in names]
    followers = _following_batchnorm(model)
    sums, counts, handles = {}, {}, []

    def hook(layer_name, features_last):
        def record(_module, _inputs, output):
            channel_last = output if features_last or output.dim() == 2 else output.movedim(1, -1)
            values = reduce_fn(F.relu(channel_last)).reshape(-1, channel_last.shape[-1])
            sums[layer_name] = sums.get(layer_name, 0) + values.sum(0).detach()
            counts[layer_name] = counts.get(layer_name, 0) + values.shape[0]

        return record

    for layer_name in layer_names:
        layer = model.get_submodule(layer_name)
        watched = followers.get(layer_name, layer)
        handles.append(watched.register_forward_hook(hook(layer_name, isinstance(watched, nn.Linear))))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            for inputs, _ in batches(data, max_batches=max_batches):
                model(inputs.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    params = _parameters(model, names)
    return {name: _broadcast(sums[layer] / counts[layer], params[name]) for name, layer in zip(names, layer_names)}


@register("apoz", needs_data=True, description="1 − APoZ: share of nonzero activations (after ReLU) per output unit")
def apoz(model, names, data, max_batches: int | None = 8, **_) -> Scores:
    return _unit_activations(model, names, data, max_batches, lambda a: (a > 0).float())


@register("mean_activation", needs_data=True, description="mean activation (after ReLU) per output unit")
def mean_activation(model, names, data, max_batches: int | None = 8, **_) -> Scores:
    return _unit_activations(model, names, data, max_batches, lambda a: a)


@register("bn_scale", needs_data=False, description="|γ| of the BatchNorm after each layer (network slimming)")
def bn_scale(model, names, data, **_) -> Scores:
    followers = _following_batchnorm(model)
    missing = [name for name in names if name.rpartition(".")[0] not in followers]
    if missing:
        raise ValueError(
            f"bn_scale needs a BatchNorm right after each pruned layer; none after {missing}; exclude those layers"
        )
    params = _parameters(model, names)
    return {name: _broadcast(followers[name.rpartition(".")[0]].weight.detach().abs(), params[name]) for name in names}


@register(
    "fpgm",
    needs_data=False,
    description="FPGM: distance of each filter to the others (near the geometric median = redundant)",
)
def fpgm(model, names, data, **_) -> Scores:
    result = {}
    for name, p in _parameters(model, names).items():
        filters = p.detach().flatten(1)
        result[name] = _broadcast(torch.cdist(filters, filters).sum(1), p)
    return result
