"""Bai's figures: Grad-CAM per stage before and after training (the proposal's figure
4), the N frames of a sequence, EVM's effect, loss curves and t-SNE of the sequence
embeddings."""

from __future__ import annotations

import numpy as np

from melib.pipelines.bai.config import ALIGNMENT_LABELS, Setup
from melib.pipelines.bai.data import Clips, sequence_indices
from melib.pipelines.bai.gradcam import LayerChoice
from melib.visualization.image_rows import plot_frame_rows
from melib.visualization.panels import plot_loss_panels, plot_tsne_panels

__all__ = [
    "gradcam_figure",
    "loss_figure",
    "magnification_figure",
    "sequence_figure",
    "tsne_figure",
]


def gradcam_figure(choice: LayerChoice, after: dict | None, clips: Clips, max_rows: int = 3):
    """The paper's figure 4, per stage: rows alternate before / after training for a
    few apex frames; the landmark regions the criterion counts are outlined."""
    import matplotlib.pyplot as plt

    n = min(max_rows, len(choice.clips))
    rows = [("before", k) for k in range(n)]
    if after:
        rows = [r for k in range(n) for r in (("before", k), ("after", k))]
    stages = list(choice.cams)
    fig, axes = plt.subplots(
        len(rows), len(stages) + 1, figsize=(1.7 * (len(stages) + 1), 1.75 * len(rows)), squeeze=False
    )
    for r, (when, k) in enumerate(rows):
        image = choice.frames[k]
        row = clips.table.iloc[choice.clips[k]]
        axes[r, 0].imshow(image)
        axes[r, 0].contour(choice.masks[k], levels=[0.5], colors="w", linewidths=0.8)
        axes[r, 0].set_ylabel(f"{row['class']}\n{when}", fontsize=7)
        source = choice.cams if when == "before" else after
        for c, stage in enumerate(stages, start=1):
            ax = axes[r, c]
            ax.imshow(image.mean(axis=2), cmap="gray")
            if stage in source:
                ax.imshow(source[stage][k], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            else:
                ax.text(0.5, 0.5, "removed", ha="center", va="center", transform=ax.transAxes, fontsize=7)
            ax.contour(choice.masks[k], levels=[0.5], colors="w", linewidths=0.5)
            if r == 0:
                ax.set_title(stage + (" (l_s)" if stage == choice.layer else ""), fontsize=8)
    axes[0, 0].set_title("apex frame", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "Grad-CAM per ResNet-50 stage, before and after training (white: landmark regions)", fontsize=9
    )
    fig.tight_layout()
    return fig


def sequence_figure(clips: Clips, setup: Setup, index: int = 0):
    """The N frames sampled from onset to offset for one clip."""
    frames = clips.load(index)
    seq = sequence_indices(len(frames), setup.n_frames)
    row = clips.table.iloc[index]
    return plot_frame_rows(
        {"": [frames[t] for t in seq]},
        column_titles=[f"{row['onset'] + t}" for t in seq],
        suptitle=f"{row['sample']} ({row['class']}): N = {setup.n_frames} frames, onset {row['onset']} "
        f"to offset {row['offset']} ({ALIGNMENT_LABELS[setup.alignment]})",
        cell=(1.1, 1.5),
        suptitle_size=8,
        label_rows=False,
    )


def magnification_figure(
    original: Clips, magnified: Clips, index: int = 0, n_show: int = 5, gain: float = 4.0
):
    """Original and magnified frames of one clip, and each one's difference to the
    onset frame (x``gain`` for display)."""
    a, b = original.load(index), magnified.load(index)
    times = sequence_indices(len(a), n_show)
    row = original.table.iloc[index]
    rows = {
        "original": [a[t] for t in times],
        "magnified": [b[t] for t in times],
        "|original - onset|": [_difference(a[t], a[0], gain) for t in times],
        "|magnified - onset|": [_difference(b[t], b[0], gain) for t in times],
    }
    return plot_frame_rows(
        rows,
        column_titles=[f"frame {row['onset'] + t}" for t in times],
        suptitle=f"Eulerian magnification, {row['sample']} ({row['class']}); differences x{gain:g}",
    )


def _difference(frame: np.ndarray, reference: np.ndarray, gain: float) -> np.ndarray:
    d = np.abs(frame.astype(np.float32) - reference.astype(np.float32)).mean(axis=2)
    return np.clip(d * gain, 0, 255).astype(np.uint8)


def loss_figure(runs: list):
    """Training loss per fold, one panel per run."""
    return plot_loss_panels({r.name: r.histories for r in runs})


def tsne_figure(clips: Clips, runs: list, seed: int = 0):
    """t-SNE of the held-out sequence embeddings (each clip embedded by the decoder of
    the fold that held it out), one panel per run."""
    # t-SNE needs a few points (a tiny corpus mapped to 3 classes has fewer).
    labels = clips.table["class"].to_numpy()
    return plot_tsne_panels(
        {r.name: (r.embeddings, labels) for r in runs},
        order=list(clips.classes),
        seed=seed,
        unit="clips",
        min_points=5,
        title="{name} ({n} {unit})",
        size=22,
        title_size=8,
        panel=(3.6, 3.5),
        suptitle="t-SNE of held-out sequence embeddings (each fold's own decoder)",
    )
