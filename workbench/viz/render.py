"""Fast re-rendering of a figure whose only changes are a few artists (blitting), to PNG bytes.

The static part (axes, ticks, labels, fixed curves) is drawn once and cached; each ``png()`` restores
that background, draws only the changing artists and encodes the canvas in 256 colours. This is what keeps a
slider move far under the 100 ms budget: ticks and text, not data, dominate a full matplotlib draw.

Example:
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(2, 2))
    >>> (line,) = fig.add_subplot().plot([0, 1], [0, 1])
    >>> renderer = BlitRenderer(fig, [line])
    >>> line.set_ydata([1, 0])
    >>> renderer.png()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.colors import to_rgba_array
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import NullFormatter
from PIL import Image

from .colors import REFERENCE

# A JupyterLab output area in a 1280-px-wide window is about 850 px wide beside the file browser and 1100 px
# without it: the live figures, 10 inches wide, are drawn at 84 dpi (840 px) and shown at that size.
DPI = 84
EXACT_COLORS = 128  # at most this many of the palette's 256 colours are the dynamic artists' own


class BlitRenderer:
    """Render ``figure`` to PNG, redrawing only ``dynamic`` artists after the first call.

    The PNG's 256 colours are chosen once: those the dynamic artists draw with (``artist_colors``, and ``colors``
    for what their properties do not tell, such as the colours of an RGBA image), which a first frame may not show
    yet, and as many of the first frame's as fit. Each frame then maps every pixel to the nearest of them: a few ms
    instead of the 10–20 of choosing colours anew, and the same picture always gives the same PNG.
    Call ``invalidate()`` after changing anything static (limits, labels, layout).
    """

    def __init__(self, figure: Figure, dynamic: list[Artist], colors=()):
        self.figure = figure
        self.canvas = FigureCanvasAgg(figure)
        self.dynamic = list(dynamic)
        for artist in self.dynamic:
            artist.set_animated(True)
        self.colors = list(colors)
        self._background = None
        self._palette = None

    def invalidate(self) -> None:
        """Forget the cached background; the next ``png()`` draws everything."""
        self._background = None

    def draw(self) -> None:
        """Bring the canvas up to date: the cached background plus the dynamic artists."""
        if self._background is None:
            self.canvas.draw()
            self.figure.set_layout_engine("none")  # freeze the layout so the background stays valid
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        else:
            self.canvas.restore_region(self._background)
        for artist in self.dynamic:
            self.figure.draw_artist(artist)

    def png(self) -> bytes:
        """The up-to-date figure as PNG bytes: 256 colours (figures have few) and a fast zlib level, since it is
        re-encoded on every change."""
        self.draw()
        rgba = Image.frombuffer("RGBA", self.canvas.get_width_height(), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        frame = rgba.convert("RGB")
        if self._palette is None:
            self._palette = self._choose_palette(frame)
        buffer = io.BytesIO()
        frame.quantize(palette=self._palette, dither=Image.Dither.NONE).save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def _choose_palette(self, frame: Image.Image) -> Image.Image:
        """The dynamic artists' colours exactly, and as many of ``frame``'s as fit in 256 (a fast octree's choice)."""
        drawn = [color for artist in self.dynamic for color in artist_colors(artist)]
        rgba = to_rgba_array([*drawn, *self.colors])
        exact = np.unique(np.round(255 * rgba[rgba[:, 3] > 0, :3]).astype(np.uint8), axis=0)[:EXACT_COLORS]
        room = 256 - len(exact)
        chosen = frame.quantize(colors=room, method=Image.Quantize.FASTOCTREE).getpalette()[: 3 * room]
        palette = Image.new("P", (1, 1))
        palette.putpalette(chosen + exact.flatten().tolist())
        return palette


def artist_colors(artist: Artist) -> list:
    """The colours an artist draws with (its face, edge, line or marker colours; a colormapped image's colormap):
    what a palette needs before the artist first shows up."""
    if isinstance(artist, Line2D):
        return [artist.get_color(), artist.get_markerfacecolor(), artist.get_markeredgecolor()]
    if isinstance(artist, (Patch, Collection)):
        return [*to_rgba_array(artist.get_facecolor()), *to_rgba_array(artist.get_edgecolor())]
    if isinstance(artist, Text):
        return [artist.get_color()]
    if isinstance(artist, AxesImage) and np.ndim(artist.get_array()) == 2:
        cmap = artist.get_cmap()
        return list(cmap(np.linspace(0, 1, min(cmap.N, 32))))
    return []


def share_bars(ax, labels, colors, title: str, xmax: float = 105) -> list:
    """Horizontal bars of each label's share of the dense model (%), all at 100 until updated; returns the bars."""
    bars = list(ax.barh(np.arange(len(labels)), [100] * len(labels), height=0.5, color=colors))
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.invert_yaxis()
    ax.axvline(100, color=REFERENCE, linewidth=1)
    ax.set(xlim=(0, xmax), xlabel="% of the dense model")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return bars


RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
FINE_RATIO_TICKS = (0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2)  # for a range within 0.5×–2×


def ratio_ticks(axis, low: float, high: float) -> None:
    """Label a log-scaled ``axis`` of ratios from ``low`` to ``high`` as 0.5×, 1×, 2×, … (no minor labels);
    a narrow range gets finer ticks."""
    ticks = [tick for tick in RATIO_TICKS if low / 1.5 <= tick <= high * 1.5]
    if len(ticks) < 3:
        ticks = [tick for tick in FINE_RATIO_TICKS if low / 1.1 <= tick <= high * 1.1] or ticks
    axis.set_ticks(ticks, [f"{tick:g}×" for tick in ticks])
    axis.set_minor_formatter(NullFormatter())


def axes_for(ax, figsize: tuple[float, float]):
    """``ax`` and its figure, or a new constrained-layout figure of ``figsize`` with one axes."""
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()
