"""Figures for the face pipeline: box, 68 landmarks, regions, crops and alignment.

Like the rest of :mod:`melib.visualization`, each function returns a Matplotlib
``Figure`` (or draws on a given ``Axes``) and never calls ``plt.show()``.
"""

from __future__ import annotations

import numpy as np

from melib import face as F

__all__ = [
    "REGION_COLORS",
    "draw_face",
    "plot_face_pipeline",
    "plot_region_crops",
    "plot_alignment",
    "plot_frames",
    "plot_landmark_trace",
]

REGION_COLORS = {
    "eyes_brows": "tab:orange",
    "mouth": "tab:red",
    "nose": "tab:green",
    "brow_left": "tab:purple",
    "brow_right": "tab:pink",
    "eye_left": "tab:cyan",
    "eye_right": "tab:blue",
}


def _rect(ax, box: F.Box, color: str, label: str | None = None, lw: float = 1.5):
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle(
            (box.left - 0.5, box.top - 0.5),
            box.width,
            box.height,
            fill=False,
            edgecolor=color,
            lw=lw,
            label=label,
        )
    )


def draw_face(
    ax,
    image: np.ndarray,
    box: F.Box | None = None,
    marks: np.ndarray | None = None,
    region_boxes: dict | None = None,
    numbers: bool = False,
    highlight: tuple[int, ...] = (F.NOSE_BRIDGE,),
    title: str | None = None,
):
    """Draw an image with its face box, landmarks (optionally numbered) and regions."""
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    if box is not None:
        _rect(ax, box, "yellow", "face box", lw=2)
    if marks is not None:
        ax.scatter(marks[:, 0], marks[:, 1], s=6, c="lime", zorder=3)
        for i in highlight:
            ax.scatter(*marks[i], s=40, facecolors="none", edgecolors="red", zorder=4)
            ax.annotate(str(i), marks[i], xytext=(4, -4), textcoords="offset points", color="red", fontsize=8)
        if numbers:
            for i, (x, y) in enumerate(marks):
                ax.annotate(str(i), (x, y), fontsize=5, color="white", ha="center", va="bottom")
    for name, b in (region_boxes or {}).items():
        _rect(ax, b, REGION_COLORS.get(name, "white"), name, lw=1.2)
    if region_boxes:
        ax.legend(loc="lower left", fontsize=6, framealpha=0.6)
    h, w = image.shape[:2]
    ax.set_xlim(-0.5, w - 0.5)  # points outside the image must not rescale the view
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_face_pipeline(
    image: np.ndarray, box: F.Box, marks: np.ndarray, size: int = 128, margin: int = 12, zoom: float = 1.6
):
    """Three panels: detection + landmarks, regions on the frame, the gray crop."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    view = box.scaled(zoom).clip(image.shape)
    sub = image[view.slices()]
    shift = np.array([view.left, view.top], np.float32)

    def moved(b):
        return F.Box(b.left - view.left, b.top - view.top, b.right - view.left, b.bottom - view.top)

    draw_face(
        axes[0],
        sub,
        moved(box),
        marks - shift,
        title=f"HOG box {box.width}x{box.height} px, 68 landmarks (28 = nose bridge)",
    )
    draw_face(
        axes[1],
        sub,
        None,
        marks - shift,
        {k: moved(v) for k, v in F.regions(marks, margin).items()},
        highlight=(),
        title=f"regions (margin {margin} px)",
    )
    crop = F.crop(image, box, size, gray=True)
    draw_face(
        axes[2],
        crop,
        None,
        F.points_to_crop(marks, box, size),
        highlight=(),
        title=f"{size}x{size} gray crop, landmarks mapped",
    )
    fig.tight_layout()
    return fig


def plot_region_crops(
    image: np.ndarray, marks: np.ndarray, margin: int = 12, names=F.REGION_NAMES, height: int = 48
):
    """Each region cut out at a common height, keeping its aspect ratio."""
    import matplotlib.pyplot as plt

    boxes = F.regions(marks, margin)
    fig, axes = plt.subplots(1, len(names), figsize=(1.9 * len(names), 1.9))
    for ax, name in zip(np.atleast_1d(axes), names):
        b = boxes[name]
        width = max(1, int(round(height * b.width / max(b.height, 1))))
        ax.imshow(F.crop(image, b, (width, height)))
        ax.set_title(name, fontsize=8, color=REGION_COLORS.get(name, "black"))
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_alignment(image: np.ndarray, marks: np.ndarray, eye_distance: float = 48, out_size: int = 128):
    """Before/after eye alignment into a fixed ``out_size`` square."""
    import matplotlib.pyplot as plt

    center = (out_size / 2, out_size * 0.38)
    aligned, m = F.align(image, marks, eye_distance, center, (out_size, out_size))
    moved = F.transform_points(marks, m)
    left, right = F.eye_centers(marks)
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.1))
    box = F.Box(*np.r_[marks.min(0) - 20, marks.max(0) + 20].astype(int)).clip(image.shape)
    draw_face(
        axes[0],
        image[box.slices()],
        None,
        marks - [box.left, box.top],
        highlight=(),
        title=f"input (eye line {angle:+.1f} deg)",
    )
    draw_face(
        axes[1], aligned, None, moved, highlight=(), title=f"aligned: eyes level, {eye_distance:.0f} px apart"
    )
    for ax, pts in ((axes[0], marks - [box.left, box.top]), (axes[1], moved)):
        left, right = F.eye_centers(pts)
        ax.plot([left[0], right[0]], [left[1], right[1]], color="red", lw=1)
    fig.tight_layout()
    return fig


def plot_frames(images: dict, size: float = 2.0, ncols: int | None = None, suptitle: str | None = None):
    """Frames side by side, titled by their keys (identities, time points...)."""
    import matplotlib.pyplot as plt

    names = list(images)
    ncols = ncols or len(names)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    for ax, name in zip(axes.flat, names):
        img = np.asarray(images[name])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.set_title(str(name), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


TYPE_COLORS = {"micro": "tab:red", "macro": "tab:green"}  # as in visualization.corpus


def plot_landmark_trace(track: F.FaceTrack, annotations=None, fps: float | None = None):
    """Per-frame landmark signals over a video, with annotated expressions shaded.

    Top: the nose bridge (landmark 28) relative to the reference frame, i.e. head motion.
    Bottom: brow raise (brows to eyes) and mouth opening (62 to 66), minus their
    medians; facial actions move these while the head motion mostly does not.
    """
    import matplotlib.pyplot as plt

    if track.per_frame is None:
        raise ValueError("the track has no per-frame landmarks; use track_video(..., per_frame=True)")
    p = track.per_frame
    t = np.arange(len(p)) / fps if fps else np.arange(len(p))
    nose = p[:, F.NOSE_BRIDGE] - p[track.ref_index, F.NOSE_BRIDGE]
    brow = p[:, 36:48, 1].mean(1) - p[:, 17:27, 1].mean(1)
    mouth = np.linalg.norm(p[:, 66] - p[:, 62], axis=1)
    fig, axes = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True)
    axes[0].plot(t, nose[:, 0], lw=1, label="nose bridge x")
    axes[0].plot(t, nose[:, 1], lw=1, label="nose bridge y")
    axes[0].set_ylabel("px")
    axes[1].plot(t, brow - np.median(brow), lw=1, color="tab:purple", label="brow raise")
    axes[1].plot(t, mouth - np.median(mouth), lw=1, color="tab:brown", label="mouth opening")
    axes[1].set_ylabel("px")
    axes[1].set_xlabel("seconds" if fps else "frame")
    seen = set()
    for row in [] if annotations is None else annotations.itertuples():
        a, b = (row.onset / fps, row.offset / fps) if fps else (row.onset, row.offset)
        for ax in axes:
            ax.axvspan(
                a,
                b,
                color=TYPE_COLORS.get(row.type, "gray"),
                alpha=0.15,
                label=row.type if (ax is axes[0] and row.type not in seen) else None,
            )
        seen.add(row.type)
    for ax in axes:
        ax.legend(loc="upper right", fontsize=7, ncol=4)
    axes[0].set_title(f"{track.video}: per-frame landmarks inside the reference box", fontsize=9)
    fig.tight_layout()
    return fig
