"""DynGeoNet figures: the 45 landmark lines and 22 deform points on a face (the paper's
figure 2), and a grid of dynamic images.

Like the rest of :mod:`melib.visualization`, functions return a Matplotlib ``Figure``
and never call ``plt.show()``.
"""

from __future__ import annotations

import numpy as np

from melib.features.dynamic_image import to_display
from melib.features.geometry import DEFORM_POINTS, N_RATIOS, RATIO_LINES
from melib.visualization import image_grid

__all__ = ["LINE_COLORS", "line_group", "plot_landmark_lines", "plot_dynamic_images"]

LINE_COLORS = {"eyebrow-nose": "tab:orange", "mouth loop": "tab:red", "mouth pairs": "tab:cyan"}


def line_group(index: int) -> str:
    """Which of the paper's three line families ``RATIO_LINES[index]`` belongs to."""
    if not 0 <= index < N_RATIOS:
        raise IndexError(f"line index {index} outside 0..{N_RATIOS - 1}")
    return "eyebrow-nose" if index < 30 else ("mouth loop" if index < 42 else "mouth pairs")


def plot_landmark_lines(
    image: np.ndarray, marks: np.ndarray, ax=None, title: str | None = None, numbers: bool = False
):
    """The 45 lines (one ``Line2D`` each, coloured by family) and the 22 deform points
    (one scatter) over ``image``; ``marks`` are 0-based dlib (68, 2) landmarks.
    ``numbers`` writes the 1-based indices of the points used, as in the paper."""
    import matplotlib.pyplot as plt

    p = np.asarray(marks, np.float32)
    if p.shape != (68, 2):
        raise ValueError(f"plot_landmark_lines: expected (68, 2) landmarks, got {p.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    else:
        fig = ax.figure
    img = np.asarray(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    seen = set()
    for i, (a, b) in enumerate(RATIO_LINES):
        group = line_group(i)
        ax.plot(
            *p[[a - 1, b - 1]].T,
            color=LINE_COLORS[group],
            lw=0.9,
            label=None if group in seen else f"{group} lines",
        )
        seen.add(group)
    dp = p[np.asarray(DEFORM_POINTS) - 1]
    ax.scatter(
        dp[:, 0],
        dp[:, 1],
        s=12,
        c="lime",
        edgecolors="black",
        linewidths=0.4,
        zorder=3,
        label="deform points",
    )
    if numbers:
        used = sorted({k for line in RATIO_LINES for k in line} | set(DEFORM_POINTS))
        for k in used:
            ax.annotate(str(k), p[k - 1], fontsize=5, color="white", ha="center", va="bottom")
    ax.legend(loc="lower left", fontsize=6, framealpha=0.6)
    h, w = img.shape[:2]
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{N_RATIOS} lines, {len(DEFORM_POINTS)} deform points", fontsize=9)
    return fig


class _Title:
    """A grid key shown as ``text``; compared by identity, so two panels may share a title."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


def _channels_last(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = img.transpose(1, 2, 0)
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img


def plot_dynamic_images(examples, ncols: int | None = None, size: float = 2.2, suptitle: str | None = None):
    """A grid of dynamic images: ``examples`` is a list of ``(image, title)``.

    Images are (H, W), (H, W, 3) or channel-first (3, H, W) (a
    :func:`~melib.features.dynamic_image.region_composite`); each is min-max scaled on
    its own (:func:`~melib.features.dynamic_image.to_display`).
    """
    examples = list(examples)
    if not examples:
        raise ValueError("plot_dynamic_images: no examples given")
    panels = {_Title(str(title)): to_display(_channels_last(image)) for image, title in examples}
    return image_grid(
        panels,
        cmap="gray",
        ncols=ncols or min(len(examples), 6),
        size=size,
        colorbar=False,
        suptitle=suptitle,
    )
