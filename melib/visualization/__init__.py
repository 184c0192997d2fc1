"""Figures: training curves and score timelines (``training``), Grad-CAM overlays
(``cams``), t-SNE of learned features (``embedding``).

Every function returns a Matplotlib ``Figure`` (or draws on a given ``Axes``) and never
calls ``plt.show()``, so notebooks display it and scripts can save it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["image_grid"]


def image_grid(
    images: dict,
    cmap: str = "viridis",
    ncols: int | None = None,
    size: float = 2.4,
    colorbar: bool = True,
    suptitle: str | None = None,
    share_range: bool = False,
):
    """Show 2-D maps side by side, titled by their keys (flow components, inputs...).

    ``share_range`` puts every panel on one colour scale, which is what makes maps of
    the same quantity comparable (e.g. a micro and a macro |u|).
    """
    import matplotlib.pyplot as plt

    names = list(images)
    ncols = ncols or len(names)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    vmin = vmax = None
    if share_range:
        vmin = min(float(np.min(images[n])) for n in names)
        vmax = max(float(np.max(images[n])) for n in names)
    for ax, name in zip(axes.flat, names):
        im = ax.imshow(np.asarray(images[name]), cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(str(name), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if colorbar:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
