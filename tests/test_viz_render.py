"""BlitRenderer's PNGs: one palette per figure that holds every colour its dynamic artists draw with, so that a
colour first shown after the first frame comes out exact, and the same picture always gives the same bytes."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.figure import Figure
from PIL import Image

from workbench.viz.render import BlitRenderer, artist_colors

PURPLE = "#7a1fa2"


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def shows(png: bytes, color) -> bool:
    return bool((pixels(png) == np.round(255 * np.array(to_rgba(color)[:3]))).all(axis=-1).any())


def test_a_colour_first_shown_after_the_first_frame_is_exact():
    figure = Figure(figsize=(3, 2), dpi=50)
    ax = figure.add_subplot(ylim=(0, 1))
    (bar,) = ax.bar([0], [0.0], color=PURPLE)  # no height yet: the first frame has no purple
    renderer = BlitRenderer(figure, [bar])
    assert not shows(renderer.png(), PURPLE)
    bar.set_height(1.0)
    assert shows(renderer.png(), PURPLE)


def test_colors_name_what_an_rgba_image_will_show():
    figure = Figure(figsize=(3, 2), dpi=50)
    image = figure.add_subplot().imshow(np.ones((4, 4, 3)))  # white now, purple later
    renderer = BlitRenderer(figure, [image], colors=[PURPLE])
    renderer.png()
    image.set_data(np.broadcast_to(to_rgba(PURPLE)[:3], (4, 4, 3)))
    assert shows(renderer.png(), PURPLE)


def test_the_same_picture_gives_the_same_png():
    figure = Figure(figsize=(3, 2), dpi=50)
    (line,) = figure.add_subplot().plot([0, 1], [0, 1], color="tab:green")
    renderer = BlitRenderer(figure, [line])
    first = renderer.png()
    line.set_ydata([1, 0])
    assert renderer.png() != first
    line.set_ydata([0, 1])
    assert renderer.png() == first


def test_artist_colors():
    figure = Figure()
    ax = figure.add_subplot()
    (line,) = ax.plot([0], [0], "o", color="tab:red", markeredgecolor="k")
    assert line.get_color() in artist_colors(line) and "k" in artist_colors(line)
    (bar,) = ax.bar([0], [1], color=PURPLE, edgecolor="none")
    assert [tuple(color) for color in artist_colors(bar)] == [to_rgba(PURPLE), (0, 0, 0, 0)]
    assert artist_colors(ax.text(0, 0, "t", color="0.2")) == ["0.2"]
    mask = ax.imshow(np.eye(2), cmap=ListedColormap(["#f4f1ea", "#1f4e79"]))
    assert [tuple(color) for color in artist_colors(mask)] == [to_rgba("#f4f1ea"), to_rgba("#1f4e79")]


def test_a_returned_figure_shows_as_an_image_in_ipython():
    # In a fresh IPython shell a pyplot-free Figure shows only as "<Figure size ...>" until workbench.viz is imported.
    script = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from matplotlib.figure import Figure\n"
        "shell = InteractiveShell.instance()\n"
        "figure = Figure(figsize=(2, 2))\n"
        "figure.add_subplot().plot([0, 1])\n"
        "before = sorted(shell.display_formatter.format(figure)[0])\n"
        "import workbench.viz\n"
        "after = shell.display_formatter.format(figure)[0]\n"
        "print(before, sorted(after), after['image/png'][:4])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['text/plain'] ['image/png', 'text/plain'] b'\\x89PNG'", done.stdout + done.stderr
