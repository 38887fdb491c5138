"""Criteria from gradients of the loss: first-order Taylor, SNIP, SNIP-momentum, and OBD's second-order saliency.

Example:
    >>> import workbench as wb
    >>> model, data = wb.pretrained("mlp"), wb.load_dataset("digits")
    >>> scores = CRITERIA["snip"].fn(model, ["fc1.weight"], data.train, batch_size=64)
    >>> bool((scores["fc1.weight"] >= 0).all())
    True
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from ..data import batches
from ..masks import dense_parameter
from .common import dense_weights, trainable, weight_gradients
from .registry import CRITERIA, Scores, register

__all__ = ["CRITERIA"]


@register(
    "taylor",
    needs_data=True,
    description="first-order Taylor (w·g)² per batch, summed over batches (Molchanov et al. 2019)",
)
def taylor(model, names, data, max_batches: int | None = 8) -> Scores:
    scores = {}
    for step in weight_gradients(model, names, data, max_batches):
        for name, (w, g) in step.items():
            scores[name] = scores.get(name, 0) + (w * g) ** 2
    return scores


@register(
    "snip", needs_data=True, description="SNIP connection sensitivity |w·g| on one batch, usable at initialization"
)
def snip(model, names, data, batch_size: int = 256) -> Scores:
    (step,) = weight_gradients(model, names, data, max_batches=1, batch_size=batch_size)
    return {name: (w * g).abs() for name, (w, g) in step.items()}


def _snip_momentum_update(previous, weight, gradient, decay: float = 1.0, gain: float = 0.9):
    """score_n = decay·score_(n−1) + gain·|W_n·G_n|."""
    step = gain * (weight * gradient).abs()
    return step if previous is None else decay * previous + step


@register(
    "snip_momentum",
    needs_data=True,
    description="score_n = 1.0·score_(n-1) + 0.9·|W_n·G_n|, built up over training steps (or batches here)",
    update=_snip_momentum_update,
)
def snip_momentum(model, names, data, max_batches: int | None = 8, decay: float = 1.0, gain: float = 0.9) -> Scores:
    scores = {}
    for step in weight_gradients(model, names, data, max_batches, batch_size=64):
        for name, (w, g) in step.items():
            scores[name] = _snip_momentum_update(scores.get(name), w, g, decay, gain)
    return scores


def _movement_update(previous, weight, gradient):
    """Movement pruning (Sanh et al. 2020): S ← S − W·∂L/∂W; weights moving away from zero score high."""
    step = -(weight * gradient)
    return step if previous is None else previous + step


@register(
    "movement",
    needs_data=True,
    description="movement: −Σ W·∂L/∂W over training steps (or batches here), Sanh et al. 2020",
    reduce="sum",  # scores are signed: a group sums them
    update=_movement_update,
)
def movement(model, names, data, max_batches: int | None = 8) -> Scores:
    scores = {}
    for step in weight_gradients(model, names, data, max_batches, batch_size=64):
        for name, (w, g) in step.items():
            scores[name] = _movement_update(scores.get(name), w, g)
    return scores


@register(
    "obd",
    needs_data=True,
    description="second-order saliency ½·h_ii·w², diagonal Hessian by empirical Fisher or Hutchinson",
)
def obd(model, names, data, hessian: str = "fisher", max_samples: int = 256, probes: int = 4, seed: int = 0) -> Scores:
    if hessian not in ("fisher", "hutchinson"):
        raise ValueError(f"hessian must be 'fisher' or 'hutchinson', got {hessian!r}")
    estimate = _fisher_diagonal if hessian == "fisher" else _hutchinson_diagonal
    diagonal = estimate(model, names, data, max_samples, probes, seed)
    return {name: 0.5 * diagonal[name] * p.detach() ** 2 for name, p in dense_weights(model, names).items()}


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
    params = dense_weights(model, names)
    generator = torch.Generator().manual_seed(seed)
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    was_training = model.training
    model.eval()
    with trainable(list(params.values())):
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
