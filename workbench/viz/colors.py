"""The colours the figures share, named by what they mean, and the check that colour-blind readers can tell them apart.

Colours that tell things apart must stay apart for readers with a red-, green- or blue-blind eye (protanopia,
deuteranopia, tritanopia): ``color_difference`` simulates each (Machado, Oliveira & Fernandes 2009, full severity)
and measures the CIELAB distance, and ``distinguishable`` asks for ``MIN_DIFFERENCE`` in every one. Series that can
outnumber distinguishable colours (one line per layer) also differ by marker: ``series_style``.

Example:
    >>> MASK_COLORS([0, 1], bytes=True)[:, :3].tolist()  # pruned, kept
    [[244, 241, 234], [31, 78, 121]]
    >>> distinguishable("tab:red", "tab:green")  # a deuteranope sees two olive browns
    False
    >>> distinguishable(CURRENT, BUDGET[2]) and all(distinguishable(a, b) for a, b in [BUDGET[:2], BUDGET[1:]])
    True
    >>> series_style(7)  # the first colour again, with another marker
    {'color': '#0072B2', 'marker': 'v'}
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, to_rgb

KEPT = "#1f4e79"  # kept weights; the dense model's size
PAPER = "#f4f1ea"  # pruned weights; where a shrunk matrix used to be
ALL_WEIGHTS = "#b8b8b8"  # every weight, kept or not
ACCENT = "#d9822b"  # FLOPs; conv kernel boundaries
CURRENT = "tab:red"  # the point shown now and the threshold that makes it
CURVE = "0.4"  # a measured curve
REFERENCE = "0.3"  # dense baselines and other reference lines
SKY = "#56b4e9"  # Okabe & Ito's sky blue: lighter than KEPT, apart from ACCENT and CURRENT for every reader
BUDGET = (KEPT, ACCENT, SKY)  # params, FLOPs, and latency or accuracy as shares of dense
STORAGE_PARTS = {"values": KEPT, "indices": ACCENT, "metadata": SKY}  # a file's bytes, stacked
PARETO = KEPT  # the Pareto front of a study, over its other points drawn in ALL_WEIGHTS
# One per execution mode (trade-off view): six colours cannot all stay apart for every reader, so each mode has its
# own marker too; patterns differ by line style.
MODE_STYLES = {
    "dense": {"color": REFERENCE, "marker": "o"},
    "masked": {"color": "#E69F00", "marker": "s"},
    "csr": {"color": "#009E73", "marker": "^"},
    "bsr": {"color": "#CC79A7", "marker": "D"},
    "semi_structured": {"color": "#D55E00", "marker": "P"},
    "shrunk": {"color": "#0072B2", "marker": "X"},
}
PATTERN_LINES = ("-", "--", ":", "-.")
# One per layer in per-layer plots: Okabe & Ito's colour-blind-safe palette (no yellow: too pale on white), each
# series with its own marker too, since seven colours cannot all stay apart for every reader.
SERIES_COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
SERIES_MARKERS = ("o", "s", "^", "D", "P", "X", "*", "v")

MASK_COLORS = ListedColormap([PAPER, KEPT])  # pruned, kept
WEIGHT_COLORS = colormaps["Blues"]  # |w|
RELATIVE_COLORS = colormaps["PuOr_r"]  # a ratio around 1: purple below, white at 1, orange above (diverging, CVD-safe)
REMOVED_RGB = np.array([0.84, 0.15, 0.16])  # tab:red, blended into the rows and columns a shrink removes

MIN_DIFFERENCE = 20.0  # CIELAB ΔE (CIE76) between colours that must be told apart, for every kind of reader
# Linear-RGB matrices that simulate dichromacy (Machado, Oliveira & Fernandes 2009, severity 1.0).
DICHROMACY = {
    "normal": np.eye(3),
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]
    ),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]]
    ),
    "tritanopia": np.array(
        [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.3039]]
    ),
}
_RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.95047, 1.0, 1.08883])  # D65


def _lab(color, vision: str) -> np.ndarray:
    """CIELAB of ``color`` as a reader with ``vision`` sees it."""
    srgb = np.array(to_rgb(color))
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    xyz = _RGB_TO_XYZ @ np.clip(DICHROMACY[vision] @ linear, 0, 1) / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def color_difference(a, b, vision: str = "normal") -> float:
    """CIELAB distance (ΔE, CIE76) between colours ``a`` and ``b`` as a reader with ``vision`` sees them."""
    return float(np.linalg.norm(_lab(a, vision) - _lab(b, vision)))


def distinguishable(a, b, min_difference: float = MIN_DIFFERENCE) -> bool:
    """Whether every reader (normal vision and each dichromacy in ``DICHROMACY``) can tell ``a`` from ``b``."""
    return all(color_difference(a, b, vision) >= min_difference for vision in DICHROMACY)


def series_style(index: int) -> dict:
    """Colour and marker of series ``index`` in a per-layer plot (``plot(..., **series_style(i))``)."""
    return {"color": SERIES_COLORS[index % len(SERIES_COLORS)], "marker": SERIES_MARKERS[index % len(SERIES_MARKERS)]}
