"""CropNet's figures: the preprocessings side by side, the CGPO crops, the confusion
matrices (figure 4), the loss curves, the N_key sweep (figure 5), Grad-CAM on the
crops and the t-SNE of the preprocessed images (figure 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from melib.data.datasets import MEGC2019_EMOTION_MAP
from melib.features.cgpo import CGPOLayout, cgpo_crops
from melib.features.residual_sums import METHODS, load_image
from melib.models.cropnet import CropNet, CropView
from melib.pipelines import common
from melib.pipelines.cropnet.config import METHOD_LABELS, PLUMBING_GRADCAM_ROWS, PROTOCOL_LABELS, Setup
from melib.pipelines.cropnet.data import (
    ImageSet,
    ProtocolData,
    clip_frames,
    denormalise,
    load_protocol,
    prepare_images,
)
from melib.pipelines.cropnet.run import RunResult

__all__ = [
    "preprocessing_figure",
    "cgpo_figure",
    "confusion_figure",
    "loss_figure",
    "nkey_figure",
    "gradcam_figure",
    "tsne_figure",
    "cam_layer",
    "example_rows",
    "tsne_data",
]


def example_rows(data: ProtocolData) -> dict:
    """One clip per class (the first in table order that has the class)."""
    out = {}
    for c in data.classes:
        hits = np.flatnonzero(data.table["class"].to_numpy() == c)
        if len(hits):
            out[c] = int(hits[0])
    return out


def preprocessing_figure(data: ProtocolData, setup: Setup, paths_by_method: dict):
    """Rows: one clip per class. Columns: start frame, last key frame, ARS, RRS and the flows."""
    import matplotlib.pyplot as plt

    rows = example_rows(data)
    methods = [m for m in METHODS if m in paths_by_method]
    ncols = 2 + len(methods)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.9 * ncols, 1.95 * len(rows)), squeeze=False)
    for r, (cls, index) in enumerate(rows.items()):
        frames = clip_frames(data, setup, index)
        panels = list(frames.items()) + [
            (METHOD_LABELS[m], load_image(paths_by_method[m][index])) for m in methods
        ]
        for c, (title, image) in enumerate(panels):
            axes[r, c].imshow(image)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            axes[r, c].set_title(title if r == 0 or c < 2 else "", fontsize=7)
        axes[r, 0].set_ylabel(f"{cls}\n{data.table.iloc[index]['sample']}", fontsize=7)
    fig.suptitle(f"Preprocessing, one clip per class ({PROTOCOL_LABELS[data.protocol]})", fontsize=10)
    fig.tight_layout()
    return fig


def cgpo_figure(image: np.ndarray, setup: Setup):
    """The CGPO input with its crop boxes, then the 10 crops in z-order."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    layout = CGPOLayout(setup.input_size, setup.crop_size, setup.alpha)
    crops = cgpo_crops(image, layout)
    boxes = layout.boxes()
    per_row = (len(crops) + 1) // 2
    fig = plt.figure(figsize=(11, 3.6))
    grid = fig.add_gridspec(2, 2 + per_row)
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(image)
    colours = plt.cm.tab10(np.arange(len(boxes)) % 10)
    for i, (level, top, left) in enumerate(boxes):
        scale = 2**level
        ax.add_patch(
            Rectangle(
                (left * scale - 0.5, top * scale - 0.5),
                setup.crop_size * scale,
                setup.crop_size * scale,
                fill=False,
                lw=1.2 + level,
                ec=colours[i],
            )
        )
    ax.set_title(f"{setup.input_size} px input, {len(boxes)} boxes (α = {setup.alpha:g})", fontsize=9)
    ax.axis("off")
    for i, crop in enumerate(crops):
        a = fig.add_subplot(grid[i // per_row, 2 + i % per_row])
        a.imshow(crop)
        level, top, left = boxes[i]
        a.set_title(f"z{i}: {layout.levels[level]} px @({top},{left})", fontsize=7, color=colours[i])
        a.axis("off")
    fig.tight_layout()
    return fig


def confusion_figure(results: list[RunResult]):
    """Row-normalised pooled confusion matrices (figure 4), counts in the cells."""
    from melib.visualization.confusion import plot_confusions

    return plot_confusions([(f"{r.name}: {PROTOCOL_LABELS[r.protocol]}", r.confusion) for r in results])


def loss_figure(results: list[RunResult]):
    """Training loss per epoch of every fold, one panel per run."""
    import matplotlib.pyplot as plt

    from melib.visualization.training import plot_loss_curves

    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 3.2), squeeze=False)
    for ax, r in zip(axes[0], results):
        plot_loss_curves(r.histories, ax=ax, title=f"{r.name} ({PROTOCOL_LABELS[r.protocol]})")
    fig.tight_layout()
    return fig


def nkey_figure(sweep: pd.DataFrame, protocol: str):
    """Figure 5: UF1 and UAR against N_key, with the paper's choice marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for metric, marker in (("UF1", "o"), ("UAR", "s")):
        ax.plot(sweep.index, sweep[metric], marker=marker, label=metric)
    ax.axvline(5, color="0.6", ls="--", lw=1, label="paper's choice (5)")
    ax.set_xlabel("N_key (key frames)")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1)
    ax.set_title(f"N_key sweep, {PROTOCOL_LABELS[protocol]}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cam_layer(model: CropNet) -> nn.Module:
    """The deepest extractor block whose maps on one crop are still at least 4x4."""
    side = model.config.crop_size if model.config.cgpo else model.config.input_size
    x = torch.zeros(1, 3, side, side)
    chosen = model.extractor.stem
    with torch.no_grad():
        x = model.extractor.stem(x)
        for block in model.extractor.features:
            x = block(x)
            if min(x.shape[-2:]) >= 4:
                chosen = block
    return chosen


def gradcam_figure(result: RunResult, data: ProtocolData, max_rows: int = 3):
    """Grad-CAM of each CGPO crop for held-out clips (one per true class, correct ones
    first), each explained by the model of its own fold for the predicted class. A
    plumbing run shows at most ``PLUMBING_GRADCAM_ROWS`` clips."""
    import matplotlib.pyplot as plt
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from melib.visualization.cams import grad_cam

    preds = result.predictions.reset_index(drop=True)
    picks = []
    for cls in data.classes:
        rows = preds[preds["true"] == cls]
        if len(rows):
            right = rows[rows["true"] == rows["predicted"]]
            picks.append((right if len(right) else rows).index[0])
    if common.is_plumbing(result.setup):
        max_rows = min(max_rows, PLUMBING_GRADCAM_ROWS)
    picks = picks[:max_rows]
    index_of = {s: i for i, s in enumerate(data.table["sample"])}
    n_crops = CropNet(result.setup.model_config(len(data.classes))).n_crops
    fig, axes = plt.subplots(len(picks), n_crops, figsize=(1.35 * n_crops, 1.6 * len(picks)), squeeze=False)
    for r, p in enumerate(picks):
        row = preds.loc[p]
        model = result.model(row["fold"])
        x = ImageSet([result.paths[index_of[row["sample"]]]], [0]).image(0)[None]
        crops = model.crops(x)[0]
        target = [ClassifierOutputTarget(data.classes.index(row["predicted"]))]
        cams = grad_cam(CropView(model), crops, cam_layer(model), targets=target)
        for c in range(n_crops):
            ax = axes[r, c]
            ax.imshow(denormalise(crops[c]))
            ax.imshow(cams[c], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"z{c}", fontsize=8)
        axes[r, 0].set_ylabel(f"{row['true']}→{row['predicted']}", fontsize=7)
    fig.suptitle(
        f"Grad-CAM on the CGPO crops ({result.name}, {PROTOCOL_LABELS[result.protocol]}; "
        "each clip's own fold model)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


TSNE_MIN_POINTS = 5  # melib.visualization.embedding.tsne refuses fewer


def tsne_data(setup: Setup) -> tuple[ProtocolData, pd.Series, str]:
    """Figure 6's data: CASME II's clips in three classes (negative / positive /
    surprise). When the corpus has fewer than 10 such clips (the smoke corpus), the
    composite is used instead, and the title says so."""
    casme = load_protocol(setup, "casme2_5class")
    mapped = casme.table["emotion"].str.lower().map(MEGC2019_EMOTION_MAP["casme2"])
    keep = mapped.notna().to_numpy()
    if keep.sum() >= 10:
        sub = ProtocolData(
            "casme2_5class", casme.dataset, casme.table[keep].reset_index(drop=True), casme.classes
        )
        return sub, mapped[keep].reset_index(drop=True), "CASME II, 3 classes"
    comp = load_protocol(setup, "megc2019")
    return comp, comp.table["class"], "MEGC2019 composite (too few CASME II clips here)"


def tsne_figure(setup: Setup, progress: bool = True):
    """Figure 6: t-SNE of the preprocessed images (pixels, down-sampled), per method."""
    import cv2
    import matplotlib.pyplot as plt

    from melib.visualization.embedding import plot_embedding, tsne

    data, labels, what = tsne_data(setup)
    fig, axes = plt.subplots(1, len(METHODS), figsize=(3.6 * len(METHODS), 3.6), squeeze=False)
    palette = {"negative": "tab:red", "positive": "tab:green", "surprise": "tab:blue"}
    side = setup.limits.tsne_size
    for ax, method in zip(axes[0], METHODS):
        paths = prepare_images(data, setup, method, progress=progress)
        x = (
            np.stack(
                [cv2.resize(load_image(p), (side, side), interpolation=cv2.INTER_AREA).ravel() for p in paths]
            ).astype(np.float32)
            / 255
        )
        if len(x) < TSNE_MIN_POINTS:  # too few clips to embed: the panel says so
            ax.text(0.5, 0.5, f"{len(x)} clips: too few for t-SNE", ha="center", va="center")
            ax.set_title(METHOD_LABELS[method], fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        xy = tsne(x, seed=setup.seed)
        plot_embedding(
            xy,
            labels.to_numpy(),
            ax=ax,
            palette=palette,
            order=[c for c in palette if c in set(labels)],
            size=18,
            title=f"{METHOD_LABELS[method]} ({len(x)} clips)",
        )
    fig.suptitle(f"t-SNE of the preprocessed images, {what}", fontsize=10)
    fig.tight_layout()
    return fig
