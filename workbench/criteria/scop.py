"""SCOP, scientific-control pruning (Tang et al., NeurIPS 2020): knockoff inputs are the control group.

Real inputs X and their knockoffs X̃ (``workbench.knockoffs``: as like X as second moments can tell, but no
extra information about the label) run through the frozen network side by side. After every scored layer a
selection layer mixes, per output unit k, the real feature with the knockoff one,

    real path ← β_k · real + (1 − β_k) · knockoff,    knockoff path unchanged,

and only the factors β_k ∈ [0, 1] (starting at ½, clipped after each step) are trained to lower the
cross-entropy of the real path's logits. Each step runs the knockoff batch first (no gradients; every
selection layer records its features), then the real batch through the mixing, and takes a plain gradient
step whose size ``lr`` is relative to each layer's first gradients (their root mean square), so one ``lr``
suits layers and models whose gradients differ by orders of magnitude. A unit whose real feature helps the
prediction more than its knockoff ends with β_k > ½; a unit whose knockoff serves as well (1 − β_k competes
with β_k) is redundant. The importance is β_k − (1 − β_k): real factor minus knockoff factor, in [−1, 1];
the criterion returns it plus one (in [0, 2], same order) because group reductions and LAMP expect scores ≥ 0.

As in the reference code (Huawei's vega and MindSpore Golden Stick, both a ``KfConv2d`` layer), the knockoff
factor is tied to the real one (they sum to one), the factors start at ½ (vega clamps them to [0, 1] after
each step) and the mixing happens at the conv output, before its BatchNorm. Here the network runs in eval
mode, so no BatchNorm statistics change. Golden Stick feeds a shuffled copy of the batch as knockoffs (it
fails the knockoff condition: see ``workbench.knockoffs``) and ranks by |γ|·(β − (1 − β)); we feed model-X
Gaussian knockoffs and rank by the plain factor difference (BatchNorm scale alone is the "bn_scale" criterion).

Example:
    >>> import workbench as wb
    >>> model, data = wb.pretrained("cnn"), wb.load_dataset("digits")
    >>> factors = scop_factors(model, ["block2.conv1"], data, steps=20)
    >>> real, knockoff = factors["block2.conv1"]
    >>> tuple(real.shape), bool(((real + knockoff) == 1).all())
    ((64,), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import batches
from ..knockoffs import KNOCKOFF_METHODS, GaussianKnockoffs
from .common import broadcast, dense_weights
from .registry import Scores, register

__all__ = ["scop", "scop_factors"]

SCORED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
FIT_SAMPLES = 10_000  # the knockoffs are fitted to, and the factors trained on, at most this many samples


def _check_options(steps, lr, batch_size, knockoffs) -> None:
    def positive_integer(value):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    checks = [
        ("steps", steps, "an integer >= 1", positive_integer(steps)),
        ("lr", lr, "a number > 0", isinstance(lr, int | float) and not isinstance(lr, bool) and lr > 0),
        ("batch_size", batch_size, "an integer >= 1", positive_integer(batch_size)),
        ("knockoffs", knockoffs, f"one of {', '.join(KNOCKOFF_METHODS)}", knockoffs in KNOCKOFF_METHODS),
    ]
    for name, value, allowed, ok in checks:
        if not ok:
            raise ValueError(f"scop option {name} must be {allowed}, got {value!r}")


def _training_samples(data) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``FIT_SAMPLES`` training samples; enough of them that the knockoffs are not copies of the inputs."""
    inputs, labels, count = [], [], 0
    for x, y in batches(data, batch_size=1024):
        inputs.append(x)
        labels.append(y)
        count += len(x)
        if count >= FIT_SAMPLES:
            break
    inputs, labels = torch.cat(inputs)[:FIT_SAMPLES], torch.cat(labels)[:FIT_SAMPLES]
    features = inputs[0].numel()
    if len(inputs) < 2 * features:
        raise ValueError(
            f"scop fits knockoffs to the training inputs and needs at least 2 × features = {2 * features} samples "
            f"(with fewer, the covariance is near singular and the knockoffs copy the inputs), got {len(inputs)}"
        )
    return inputs, labels


class _SelectionLayer:
    """Forward hook after one layer: on the knockoff pass it records the layer's output (the knockoff
    features); on the real pass it returns β·real + (1 − β)·knockoff per output unit."""

    def __init__(self, units: int, channel_dim: int, device):
        self.real_factor = torch.full((units,), 0.5, device=device, requires_grad=True)
        self.channel_dim = channel_dim
        self.knockoff = None

    def __call__(self, _module, _inputs, output):
        if self.knockoff is None:
            self.knockoff = output.detach().clone()  # cloned: an in-place op after the layer must not change it
            return None
        shape = [1] * output.dim()
        shape[self.channel_dim] = -1
        beta = self.real_factor.view(shape)
        return beta * output + (1 - beta) * self.knockoff


def scop_factors(
    model: nn.Module,
    layers: list[str],
    data,
    *,
    steps: int = 30,
    lr: float = 0.005,
    batch_size: int = 64,
    seed: int = 0,
    knockoffs: str = "maxent",
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (real factors β, knockoff factors 1 − β)}, one per output unit, learned on ``data`` with the
    weights frozen; ``model`` is left as it was (mode, parameters, gradients, hooks).

    Args:
        layers: module names of Linear/Conv layers. Their factors are learned together, so a layer's factors
            depend on which other layers have selection layers too.
        data: a DatasetSplits (its .train), Dataset, DataLoader or (inputs, labels).
        steps, lr, batch_size: gradient steps on the factors, their size, real samples per step. lr is relative:
            each layer's gradients are divided by their root mean square at the first step.
        seed: fixes the minibatches and the knockoff draws.
        knockoffs: how the Gaussian knockoffs choose s, one of ``workbench.knockoffs.KNOCKOFF_METHODS``.
    """
    _check_options(steps, lr, batch_size, knockoffs)
    modules = dict(model.named_modules())
    for name in layers:
        if not isinstance(modules.get(name), SCORED_LAYERS):
            raise ValueError(f"scop scores Linear and Conv layers; {name!r} is not one of {type(model).__name__}")
    inputs, labels = _training_samples(data)
    generator = torch.Generator().manual_seed(seed)
    sampler = GaussianKnockoffs(knockoffs).fit(inputs)
    device = next(model.parameters()).device
    selections = {
        name: _SelectionLayer(
            modules[name].out_features if isinstance(modules[name], nn.Linear) else modules[name].out_channels,
            -1 if isinstance(modules[name], nn.Linear) else 1,
            device,
        )
        for name in layers
    }
    factors = [selection.real_factor for selection in selections.values()]
    handles = [modules[name].register_forward_hook(selection) for name, selection in selections.items()]
    was_training = model.training
    model.eval()
    scales = None
    try:
        for _ in range(steps):
            rows = torch.randperm(len(inputs), generator=generator)[:batch_size]
            real = inputs[rows]
            knockoff = sampler.sample(real, generator)
            for selection in selections.values():
                selection.knockoff = None
            with torch.no_grad():
                model(knockoff.to(device))  # the knockoff path, unmixed: each selection layer records its features
            loss = F.cross_entropy(model(real.to(device)), labels[rows].to(device))  # the real path, mixed
            gradients = torch.autograd.grad(loss, factors)  # the weights' .grad stay untouched
            if scales is None:  # lr in units of each layer's first typical gradient: one lr fits every layer
                scales = [1 / g.square().mean().sqrt().clamp_min(1e-12) for g in gradients]
            with torch.no_grad():  # a plain gradient step, then back into [0, 1]
                for factor, gradient, scale in zip(factors, gradients, scales):
                    factor.sub_(lr * scale * gradient).clamp_(0.0, 1.0)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {name: (s.real_factor.detach().clone(), 1 - s.real_factor.detach()) for name, s in selections.items()}


@register(
    "scop",
    needs_data=True,
    description="SCOP: 1 + real − knockoff scaling factor per output unit, learned with knockoff inputs as a control",
    scores="units",
)
def scop(
    model,
    names,
    data,
    steps: int = 30,
    lr: float = 0.005,
    batch_size: int = 64,
    seed: int = 0,
    knockoffs: str = "maxent",
) -> Scores:
    layers = [name.rpartition(".")[0] for name in names]
    factors = scop_factors(
        model,
        list(dict.fromkeys(layers)),
        data,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        knockoffs=knockoffs,
    )
    params = dense_weights(model, names)
    return {
        name: broadcast(1 + factors[layer][0] - factors[layer][1], params[name]) for name, layer in zip(names, layers)
    }
