"""Small multiples: one panel per run or dataset, side by side, so that panels compare at
a glance (training-loss curves, t-SNE maps), and a row/column grid of loss panels."""

from __future__ import annotations

import numpy as np

from melib.visualization.embedding import plot_embedding, tsne
from melib.visualization.training import plot_loss_curves

__all__ = ["COLOURS", "panel_row", "plot_loss_panels", "plot_loss_grid", "plot_tsne_panels"]

COLOURS = (
    "tab:red",
    "tab:green",
    "tab:blue",
    "tab:orange",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
)


def panel_row(names, width: float, height: float):
    """A figure with one axes per name, in a row: ``(fig, {name: ax})``."""
    import matplotlib.pyplot as plt

    names = list(names)
    fig, axes = plt.subplots(1, len(names), figsize=(width * len(names), height), squeeze=False)
    return fig, dict(zip(names, axes[0]))


def plot_loss_panels(
    runs: dict,
    *,
    key: str = "epoch_loss",
    points_per_epoch: int | None = None,
    panel: tuple = (4.2, 3.0),
    title: str = "{name}",
):
    """``runs`` is ``{name: {fold: history}}``: one panel per run, one line per fold.

    ``title`` is formatted with ``name`` and ``epochs`` (the most epochs of any fold).
    With ``points_per_epoch``, per-step losses (``key="batch_loss"``) are smoothed over
    that fraction of an epoch, since runs of few epochs say little per epoch.
    """
    fig, axes = panel_row(runs, *panel)
    for name, ax in axes.items():
        histories = dict(runs[name])
        epochs = max((len(h["epoch_loss"]) for h in histories.values()), default=1)
        smooth = 1
        if points_per_epoch:
            steps = max((len(h[key]) for h in histories.values()), default=1) // max(epochs, 1)
            smooth = max(1, steps // points_per_epoch)
        plot_loss_curves(
            histories, key=key, smooth=smooth, ax=ax, title=title.format(name=name, epochs=epochs)
        )
    fig.tight_layout()
    return fig


def plot_loss_grid(
    cells: dict,
    key: str = "epoch_loss",
    panel_size: tuple = (3.4, 2.4),
    sharey: bool = True,
    title_size: float = 8,
):
    """``cells``: ``{(row label, column label): {fold: history}}``. Rows and columns
    come in first-seen order, a missing pair leaves its panel hidden, and each panel is
    titled ``"<row>: <column>"``; returns the Figure."""
    import matplotlib.pyplot as plt

    rows = list(dict.fromkeys(row for row, _ in cells))
    cols = list(dict.fromkeys(col for _, col in cells))
    fig, axes = plt.subplots(
        len(rows),
        len(cols),
        figsize=(panel_size[0] * len(cols), panel_size[1] * len(rows)),
        squeeze=False,
        sharey=sharey,
    )
    for ax in axes.ravel():
        ax.set_visible(False)
    for (row, col), histories in cells.items():
        ax = axes[rows.index(row), cols.index(col)]
        ax.set_visible(True)
        plot_loss_curves(histories, key=key, ax=ax, title=f"{row}: {col}")
        ax.title.set_fontsize(title_size)
    fig.tight_layout()
    return fig


def plot_tsne_panels(
    features: dict,
    *,
    order=None,
    palette=None,
    seed: int = 0,
    min_points: int = 0,
    title: str = "{name}",
    unit: str = "points",
    suptitle: str | None = None,
    panel: tuple = (4.6, 4.0),
    size: float = 10,
    title_size: float | None = None,
):
    """``features`` is ``{name: (x (N, D), labels (N,))}``: a t-SNE panel per entry,
    coloured by label in ``order`` (labels absent from a panel are left out of its
    legend; default palette: :data:`COLOURS` in that order). ``title`` is formatted with
    ``name``, ``n`` and ``unit``; a panel with fewer than ``min_points`` points shows a
    note instead of a map."""
    fig, axes = panel_row(features, *panel)
    all_labels = [label for _, labels in features.values() for label in np.asarray(labels).tolist()]
    order = list(order) if order is not None else sorted(set(all_labels))
    palette = palette if palette is not None else dict(zip(order, COLOURS))
    for name, ax in axes.items():
        x, labels = features[name]
        labels = np.asarray(labels)
        if len(labels) < min_points:
            ax.text(
                0.5,
                0.5,
                f"{len(labels)} {unit}: too few for t-SNE",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
            )
            ax.set_title(name, fontsize=8)
            ax.axis("off")
            continue
        present = set(labels.tolist())
        plot_embedding(
            tsne(x, seed=seed),
            labels,
            ax=ax,
            palette=palette,
            size=size,
            order=[c for c in order if c in present],
            title=title.format(name=name, n=len(labels), unit=unit),
        )
        if title_size:
            ax.title.set_fontsize(title_size)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig
