"""Training-history figure: loss and accuracy per epoch.

Example:
    >>> from workbench.train import History
    >>> fig = plot_history(History(train_loss=[1.0, 0.5], train_accuracy=[0.6, 0.8], val_accuracy=[0.55, 0.75]))
    >>> len(fig.axes)
    2
"""

from __future__ import annotations

from matplotlib.figure import Figure

from .render import axes_for


def plot_history(history, ax=None) -> Figure:
    """Loss (left axis) and train/val accuracy (right axis) against epoch."""
    fig, ax = axes_for(ax, (5, 3))
    epochs = range(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, color="tab:red", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss", color="tab:red")
    accuracy_ax = ax.twinx()
    accuracy_ax.plot(epochs, history.train_accuracy, color="tab:blue", label="train accuracy")
    if history.val_accuracy:
        accuracy_ax.plot(epochs, history.val_accuracy, color="tab:blue", linestyle="--", label="val accuracy")
    accuracy_ax.set_ylabel("accuracy", color="tab:blue")
    accuracy_ax.set_ylim(0, 1.02)
    accuracy_ax.legend(loc="center right", fontsize="small")
    return fig
