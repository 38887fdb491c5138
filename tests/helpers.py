"""Helpers the tests share: accuracy floors, shipped model names, state comparisons, refusal checks.

(Modules import them from here by name; ``conftest.py`` holds only fixtures and hooks, since every folder's
conftest is a module called ``conftest``.)
"""

from __future__ import annotations

import time

import pytest
import torch

import workbench as wb


def trained_looking_norms(model: torch.nn.Module, spread: float = 0.5) -> torch.nn.Module:
    """Give every norm layer trained-looking affine parameters and BatchNorm statistics (so removed channels
    emit nonzero constants), in eval mode; draws from torch's current random state."""
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm, torch.nn.LayerNorm)):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-spread, spread)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-spread, spread)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


# Test-accuracy floors of the shipped checkpoints on load_dataset("digits").test.
ACCURACY_FLOORS = {"mlp": 0.97, "cnn": 0.985, "transformer": 0.97}
SHIPPED = ("mlp", "cnn", "transformer", "mlp2d", "mlp1d", "cnn1d")
# Test-accuracy floors on load_dataset("mnist1d").test; published baselines: MLP 68 %, CNN 94 %.
MNIST1D_FLOORS = {"mlp1d": 0.68, "cnn1d": 0.94}


def retry_load(load, attempts: int = 10, wait_s: float = 3.0):
    """Call ``load`` again while a checkpoint is being rewritten (a ValueError from a half-written file)."""
    for attempt in range(attempts):
        try:
            return load()
        except ValueError:
            if attempt == attempts - 1:
                raise
            time.sleep(wait_s)


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached clone of every tensor in the state_dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Bit-for-bit equality of two state dicts (same keys, dtypes, shapes, values)."""
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), f"{key} differs"


def assert_refused(model: torch.nn.Module, call, message: str) -> None:
    """``call(model)`` raises a ValueError matching ``message`` and leaves the model as it was, unmasked."""
    before = state_copy(model)
    with pytest.raises(ValueError, match=message):
        call(model)
    assert_same_state(state_copy(model), before)
    assert not wb.masks.is_masked(model)
