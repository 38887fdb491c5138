"""What the apps' dropdowns offer, read from the registries when an app is built, so that a criterion or
pattern registered in a notebook shows up in the next app without further wiring.

Example:
    >>> MODELS
    ('mlp', 'cnn', 'transformer')
    >>> "magnitude" in explorer_criteria() and "2:4" in explorer_patterns() and "head" in shrink_patterns()
    True
"""

from __future__ import annotations

from ..criteria import CRITERIA
from ..patterns import pattern_examples
from ..shrink_sweep import sweep_patterns

MODELS = ("mlp", "cnn", "transformer")  # the shipped digits classifiers


def explorer_criteria() -> tuple[str, ...]:
    return tuple(CRITERIA)


def explorer_patterns() -> tuple[str, ...]:
    return pattern_examples()


def shrink_criteria() -> tuple[str, ...]:
    """Every criterion scores whole groups (over their producing layers), so the shrink lab offers them all."""
    return tuple(CRITERIA)


def shrink_patterns() -> tuple[str, ...]:
    return sweep_patterns()
