"""What the apps' dropdowns offer, one constant per list, so that each list changes in one place.

Example:
    >>> MODELS
    ('mlp', 'cnn', 'transformer')
"""

from __future__ import annotations

from ..criteria import CRITERIA
from ..shrink_sweep import PATTERNS

MODELS = ("mlp", "cnn", "transformer")  # the shipped digits classifiers
EXPLORER_CRITERIA = tuple(CRITERIA)
EXPLORER_PATTERNS = ("unstructured", "2:4", "block1x4", "block4x4", "kernel", "neuron", "channel", "head")
SHRINK_CRITERIA = ("l1", "l2", "fpgm", "random", "bn_scale", "taylor")
SHRINK_PATTERNS = tuple(PATTERNS)
