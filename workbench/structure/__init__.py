"""Structured pruning that really shrinks: trace coupled channel groups, prune whole groups, rebuild smaller layers.

>>> from workbench.structure import GroupPruner, load_shrunk, save_shrunk, shrink_masked, trace_groups
"""

from .graph import ConsumerPoint, DependencyGraph, DependencyGroup, Member, trace_groups
from .group_prune import GroupPruner
from .saving import load_shrunk, save_shrunk
from .shrink import ShrinkReport, shrink_masked

__all__ = [
    "ConsumerPoint",
    "DependencyGraph",
    "DependencyGroup",
    "GroupPruner",
    "Member",
    "ShrinkReport",
    "load_shrunk",
    "save_shrunk",
    "shrink_masked",
    "trace_groups",
]
