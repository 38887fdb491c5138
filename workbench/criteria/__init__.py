"""Importance criteria: each maps (model, weight names, data) to scores shaped like the weights.

Higher score = more important = kept longer. One registry (``CRITERIA``, filled by ``register``) feeds
``wb.prune``, ``wb.Pruner``, ``wb.shrink``, the widgets and the CLI; the modules below only register.

Example:
    >>> import torch, workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> scores = get_criterion("magnitude").score(model, ["fc1.weight"])
    >>> bool(torch.equal(scores["fc1.weight"], model.fc1.weight.abs()))
    True
"""

# registration order is the order every list shows: weight criteria, then gradients, then units, then SCOP
from . import weights  # isort: split

from . import gradients  # isort: split

from . import activations  # isort: split

from . import scop  # isort: split

from .activations import following_batchnorm
from .registry import CRITERIA, Criterion, Scores, get_criterion, register
from .weights import RANDOM_STREAM

__all__ = [
    "CRITERIA",
    "RANDOM_STREAM",
    "Criterion",
    "Scores",
    "activations",
    "following_batchnorm",
    "get_criterion",
    "gradients",
    "register",
    "scop",
    "weights",
]
