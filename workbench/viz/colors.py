"""The colours the figures share, named by what they mean.

Example:
    >>> MASK_COLORS([0, 1], bytes=True)[:, :3].tolist()  # pruned, kept
    [[244, 241, 234], [31, 78, 121]]
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap

KEPT = "#1f4e79"  # kept weights; the dense model's size
PAPER = "#f4f1ea"  # pruned weights; where a shrunk matrix used to be
ALL_WEIGHTS = "#b8b8b8"  # every weight, kept or not
ACCENT = "#d9822b"  # FLOPs; conv kernel boundaries
CURRENT = "tab:red"  # the point shown now and the threshold that makes it
CURVE = "0.4"  # a measured curve
REFERENCE = "0.3"  # dense baselines and other reference lines
BUDGET = (KEPT, ACCENT, "tab:green")  # params, FLOPs, and latency or accuracy as shares of dense

MASK_COLORS = ListedColormap([PAPER, KEPT])  # pruned, kept
WEIGHT_COLORS = colormaps["Blues"]  # |w|
REMOVED_RGB = np.array([0.84, 0.15, 0.16])  # tab:red, blended into the rows and columns a shrink removes
