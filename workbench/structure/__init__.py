"""Structured pruning that really shrinks: trace coupled channel groups, then rebuild smaller layers.

    >>> from workbench.structure import shrink_masked, trace_groups
"""

from .graph import ConsumerPoint, DependencyGraph, DependencyGroup, Member, trace_groups
from .shrink import ShrinkReport, shrink_masked

__all__ = ["ConsumerPoint", "DependencyGraph", "DependencyGroup", "Member", "ShrinkReport", "shrink_masked", "trace_groups"]
