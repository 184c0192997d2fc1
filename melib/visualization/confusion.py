"""Confusion matrices of a classifier: counts in the cells, the colour the share of the
true class (rows normalised), so that rare classes read as well as common ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_confusion", "plot_confusions"]


def plot_confusion(counts: pd.DataFrame, ax=None, title: str = "Confusion matrix"):
    """One matrix: rows are the true classes, columns the predicted ones (the labels of
    ``counts``); returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.8))
    values = counts.to_numpy()
    share = values / np.maximum(values.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(
                j,
                i,
                f"{values[i, j]}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.6 else "black",
            )
    labels = list(counts.columns)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return ax.figure


def plot_confusions(panels):
    """Several matrices side by side: ``panels`` is a list of ``(title, counts)``."""
    import matplotlib.pyplot as plt

    panels = list(panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (title, counts) in zip(axes[0], panels):
        plot_confusion(counts, ax=ax, title=title)
    fig.tight_layout()
    return fig
