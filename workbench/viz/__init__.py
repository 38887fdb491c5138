"""Matplotlib figures: pure functions, data in, Figure out. In IPython, a Figure a cell returns shows as its image."""

from matplotlib.figure import Figure


def show_figures_as_images() -> None:
    """Have the running IPython show a ``Figure`` as a PNG, as pyplot's inline backend does only once pyplot is
    imported or ``%matplotlib inline`` has run (our figures never touch pyplot). Outside IPython, nothing."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        png = shell.display_formatter.formatters["image/png"]
        png.for_type(Figure, lambda figure: print_figure(figure, "png", bbox_inches="tight"))


show_figures_as_images()
