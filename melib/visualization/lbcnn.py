"""LBCNN figures: the two inputs of a frame, the per-frame class timeline of a video,
and Grad-CAM on the global and the local branch."""

from __future__ import annotations

import numpy as np

from melib.visualization.training import finish_timeline

__all__ = ["CLASS_COLORS", "plot_inputs", "plot_class_timeline", "plot_branch_cams"]

CLASS_COLORS = {"neutral": "0.75", "micro": "tab:red", "macro": "tab:blue"}


def _rgb(chw: np.ndarray) -> np.ndarray:
    return np.asarray(chw).transpose(1, 2, 0).astype(np.uint8)


def plot_inputs(examples: list[dict], size: float = 2.3):
    """One row per example: its global input (face) and its local input (ROI mosaic).

    ``examples``: dicts with ``input`` ((6, S, S) uint8) and ``title``.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 2, figsize=(2 * size, size * len(examples)), squeeze=False)
    for row, ex in zip(axes, examples):
        x = np.asarray(ex["input"])
        row[0].imshow(_rgb(x[:3]))
        row[1].imshow(_rgb(x[3:]))
        s = x.shape[-1]
        row[1].axhline(s / 2 - 0.5, color="w", lw=0.8)
        row[1].axvline(s / 2 - 0.5, color="w", lw=0.8)
        row[0].set_ylabel(ex.get("title", ""), fontsize=8)
    axes[0, 0].set_title("global: face", fontsize=9)
    axes[0, 1].set_title("local: brows / nose, mouth", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_class_timeline(
    n_frames: int,
    grid,
    predicted,
    truth: list[tuple[int, int, str]],
    spotted: list[tuple[int, int, str]] = (),
    stride: int = 1,
    classes=("neutral", "micro", "macro"),
    scores=None,
    fps: float | None = None,
    title: str = "",
    ax=None,
):
    """Predicted class of each classified frame against the ground-truth intervals.

    Three lanes: the ground truth (bottom), the per-frame prediction (each grid frame
    painted over the ``stride`` frames it stands for) and the spotted intervals (top).
    ``scores`` ((len(grid), n_classes)) adds the micro and macro scores as lines.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 2.8))
    grid = np.asarray(grid)
    predicted = np.asarray(predicted)
    lanes = {"ground truth": 0.0, "per-frame class": 1.0, "spotted": 2.0}
    for onset, offset, kind in truth:
        ax.broken_barh([(onset, offset - onset + 1)], (0.05, 0.9), color=CLASS_COLORS[kind])
    for f, c in zip(grid, predicted):
        if c:
            ax.broken_barh([(f, stride)], (1.05, 0.9), color=CLASS_COLORS[classes[c]], lw=0)
    for onset, offset, kind in spotted:
        ax.broken_barh([(onset, offset - onset + 1)], (2.05, 0.9), color=CLASS_COLORS[kind])
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        for c in (1, 2):
            ax.plot(
                grid + stride / 2,
                1.05 + 0.9 * np.clip(scores[:, c], 0, 1),
                lw=0.7,
                color=CLASS_COLORS[classes[c]],
                alpha=0.9,
            )
    ax.set_yticks([v + 0.5 for v in lanes.values()], list(lanes))
    ax.set_ylim(0, 3)
    ax.set_xlim(0, n_frames)
    ax.set_xlabel("frame (0-based)")
    ax.set_title(title, fontsize=10)
    ax.legend(
        handles=[Patch(color=CLASS_COLORS[k], label=k) for k in ("micro", "macro")],
        loc="upper right",
        fontsize=7,
        ncol=2,
        framealpha=0.8,
    )
    return finish_timeline(ax, fig, fps)


def plot_branch_cams(inputs: np.ndarray, cams: dict, titles=None, alpha: float = 0.45, size: float = 2.1):
    """Rows = frames; columns: face, face + global CAM, ROI mosaic, mosaic + local CAM.

    ``inputs``: (N, 6, S, S) uint8; ``cams``: ``{"global": (N, S, S), "local": (N, S, S)}``.
    """
    import matplotlib.pyplot as plt

    inputs = np.asarray(inputs)
    cols = [
        ("face", "global", None),
        ("global Grad-CAM", "global", "global"),
        ("ROI mosaic", "local", None),
        ("local Grad-CAM", "local", "local"),
    ]
    cols = [c for c in cols if c[1] in cams]
    fig, axes = plt.subplots(
        len(inputs), len(cols), figsize=(size * len(cols), size * len(inputs)), squeeze=False
    )
    for i, x in enumerate(inputs):
        for j, (name, branch, cam) in enumerate(cols):
            image = _rgb(x[:3] if branch == "global" else x[3:])
            axes[i, j].imshow(image)
            if cam is not None:
                axes[i, j].imshow(cams[cam][i], cmap="jet", alpha=alpha, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(name, fontsize=9)
        if titles is not None:
            axes[i, 0].set_ylabel(str(titles[i]), fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
