"""Exercise of notebook 11: keep an RMSNorm exact when the channels it normalizes are removed.

``rms_norm_rescale(weight, eps, kept)`` returns the ``(weight, eps)`` of an RMSNorm over only the ``kept``
channels that computes, on them, what the RMSNorm over all D channels computes when every removed channel is
zero. The mean of squares over D' kept channels is D/D' times the one over D, so the weight takes a factor
sqrt(D/D') and the epsilon a factor D/D' (``wb.shrink`` does the same to a model's RMSNorms).

Example:
    >>> def rms_norm_rescale(weight, eps, kept):
    ...     ratio = weight.numel() / kept.numel()
    ...     return weight[kept] * ratio**0.5, eps * ratio
    >>> check("rms_norm_rescale", rms_norm_rescale).passed
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checker import Wrong, call, check, exercise

__all__ = ["check", "rms_norm_outputs"]


def rms_norm_outputs(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """An RMSNorm over the last dim: ``x / sqrt(mean(x²) + eps) * weight``."""
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


def _cases():
    g = torch.Generator().manual_seed(0)
    yield "case 1 (8 channels, 4 kept, eps 1e-6)", torch.rand(8, generator=g) + 0.5, 1e-6, torch.tensor([0, 2, 5, 7])
    yield "case 2 (64 channels, 48 kept, eps 1e-5)", torch.randn(64, generator=g), 1e-5, torch.arange(48) + 16
    kept = torch.tensor([1, 3])
    yield "case 3 (6 channels, 2 kept, a large eps of 0.5: it must scale too)", torch.ones(6), 0.5, kept
    yield "case 4 (every channel kept)", torch.randn(5, generator=g), 1e-6, torch.arange(5)


@exercise(
    "rms_norm_rescale",
    hints=(
        "write D = weight.numel() and D' = kept.numel(); with the removed channels zero, sum(x²) is the same over "
        "the kept channels, but the mean divides it by D' instead of D",
        "so mean over D' = (D / D') × mean over D: the root grows by sqrt(D / D'), and the weight must grow as much",
        "the epsilon sits inside the root, added to the mean: it scales like the mean, by D / D'",
    ),
)
def _check_rms_norm_rescale(attempt) -> str:
    for case, weight, eps, kept in _cases():
        x = torch.zeros(3, weight.numel())
        x[:, kept] = torch.randn(3, kept.numel(), generator=torch.Generator().manual_seed(1)) * 0.3
        expected = rms_norm_outputs(x, weight, eps)[:, kept]
        got = call(attempt, weight.clone(), eps, kept.clone(), case=case)
        if not isinstance(got, tuple) or len(got) != 2:
            raise Wrong(f"in {case} rms_norm_rescale should return a pair (weight, eps); got {type(got).__name__}")
        new_weight, new_eps = got
        if not isinstance(new_weight, torch.Tensor) or new_weight.shape != (kept.numel(),):
            raise Wrong(f"in {case} the new weight should be a tensor of the {kept.numel()} kept channels")
        if not isinstance(new_eps, (int, float)) or isinstance(new_eps, bool):
            raise Wrong(f"in {case} the new eps should be a number; got {type(new_eps).__name__}")
        outputs = rms_norm_outputs(x[:, kept], new_weight.float(), float(new_eps))
        if not torch.allclose(outputs, expected, rtol=1e-5, atol=1e-6):
            error = (outputs - expected).abs().max().item()
            raise Wrong(f"in {case} the shrunk RMSNorm's outputs differ from the full one's by up to {error:.3g}")
    return "the RMSNorm over the kept channels computes what the full one computed, in every case"
