"""Rows of images side by side: named 2-D maps per example (two frames, their optical
flow, what a network receives), each with its own scale, and labelled rows of frames
over time."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_image_rows", "plot_frame_rows"]


def plot_image_rows(
    rows: dict,
    columns,
    *,
    cmaps: dict | None = None,
    default_cmap: str = "magma",
    signed=(),
    points: dict | None = None,
    points_on: str | None = None,
    cell: tuple = (2.0, 2.3),
    suptitle: str | None = None,
):
    """``rows`` is ``{row label: {column name: 2-D array}}``; ``columns`` picks and
    orders the maps. ``cmaps`` gives a column its colour map (else ``default_cmap``);
    ``signed`` columns are drawn on a range symmetric about 0, so that a diverging map
    shows direction. ``points`` (``{row label: (n, 2) array}``) are drawn as dots on
    column ``points_on`` (e.g. facial landmarks on a frame). Titles go on the first row.
    """
    import matplotlib.pyplot as plt

    columns = list(columns)
    cmaps = cmaps or {}
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(cell[0] * len(columns), cell[1] * len(rows)), squeeze=False
    )
    for r, (label, maps) in enumerate(rows.items()):
        for c, name in enumerate(columns):
            ax = axes[r, c]
            img = maps[name]
            limit = {"vmin": -np.abs(img).max(), "vmax": np.abs(img).max()} if name in signed else {}
            ax.imshow(img, cmap=cmaps.get(name, default_cmap), **limit)
            if points is not None and name == points_on and label in points:
                ax.plot(*np.asarray(points[label]).T, ".", ms=1.5, color="lime")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_frame_rows(
    rows: dict,
    column_titles=None,
    suptitle: str | None = None,
    cell=(1.6, 1.6),
    fontsize: float = 7,
    suptitle_size: float = 9,
    label_rows: bool = True,
):
    """A grid of images: one row per entry of ``rows`` (label -> list of images, all of
    the same length), one column per time. ``label_rows`` writes each row's label on its
    left; without it the axes are hidden."""
    import matplotlib.pyplot as plt

    labels = list(rows)
    n_cols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(
        len(labels), n_cols, figsize=(cell[0] * n_cols, cell[1] * len(labels)), squeeze=False
    )
    for r, label in enumerate(labels):
        for c, image in enumerate(rows[label]):
            ax = axes[r, c]
            ax.imshow(image)
            if label_rows:
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.axis("off")
            if r == 0 and column_titles is not None:
                ax.set_title(column_titles[c], fontsize=fontsize)
        if label_rows:
            axes[r, 0].set_ylabel(label, fontsize=fontsize)
    if suptitle:
        fig.suptitle(suptitle, fontsize=suptitle_size)
    fig.tight_layout()
    return fig
