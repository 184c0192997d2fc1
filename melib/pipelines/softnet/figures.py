"""SOFTNet's figures: what the network sees, the training loss, one video's scores and
spotted intervals, Grad-CAM of each stream and t-SNE of the penultimate layer."""

from __future__ import annotations

import numpy as np
import torch

from melib.evaluation.postprocess import pseudo_labels, smooth_scores, spotting_threshold
from melib.features.flow import make_flow
from melib.features.softnet_input import softnet_input, softnet_input_parts
from melib.pipelines import common
from melib.pipelines.softnet.config import TYPES, Setup
from melib.pipelines.softnet.data import Prepared
from melib.pipelines.softnet.run import RunResult, load_fold_model
from melib.pipelines.softnet.windows import labels_for, video_windows
from melib.training import cpu_threads, predict

__all__ = [
    "pick_examples",
    "feature_maps",
    "feature_figure",
    "best_video",
    "timeline_figure",
    "loss_figure",
    "cam_inputs",
    "gradcam_figure",
    "penultimate_features",
    "tsne_figure",
]


def pick_examples(prep: Prepared) -> dict:
    """One micro and one macro expression (the most intense: the highest apex frame
    index is not a proxy, so take the longest of each type that fits the video)."""
    out = {}
    for kind in TYPES:
        if kind not in prep.k:
            continue
        rows = prep.gt[prep.gt["type"] == kind].copy()
        n = rows["video"].map(prep.videos.set_index("video")["n_frames"])
        rows = rows[rows["onset"] + prep.k[kind] < n]
        if len(rows):
            rows = rows.assign(length=rows["offset"] - rows["onset"]).sort_values(["length", "video"])
            out[kind] = rows.iloc[len(rows) // 2]
    return out


def feature_maps(prep: Prepared, setup: Setup, row) -> dict:
    """Flow u, v, strain, masked maps and the 42x42 input for a window starting at the
    expression's onset (recomputed from frames, so any window can be shown)."""
    from melib.face import crop, track_video

    k = prep.k[row["type"]]
    ds = prep.dataset
    track = track_video(ds, row["video"])
    size = setup.crop_size
    a = crop(ds.read_frame(row["video"], int(row["onset"])), track.box, size, gray=True)
    b = crop(ds.read_frame(row["video"], int(row["onset"]) + k), track.box, size, gray=True)
    lm = track.landmarks_in_crop(size)
    flow = make_flow(setup.flow)(a, b)
    parts = softnet_input_parts(flow, lm, setup.geometry)
    x = softnet_input(flow, lm, setup.geometry)
    return {
        "frame i": a,
        f"frame i+{k}": b,
        "u": parts["u"],
        "v": parts["v"],
        "strain": parts["strain"],
        "|u| masked": parts["masked"][..., 0],
        "|v| masked": parts["masked"][..., 1],
        "strain masked": parts["masked"][..., 2],
        "input |u|": x[..., 0],
        "input |v|": x[..., 1],
        "input strain": x[..., 2],
        "landmarks": lm,
    }


def feature_figure(prep: Prepared, setup: Setup):
    """Rows: a micro and a macro window; columns: frames, u, v, strain, the 42x42 input."""
    from melib.visualization.image_rows import plot_image_rows

    columns = ["frame i", "u", "v", "strain", "strain masked", "input |u|", "input |v|", "input strain"]
    rows, points = {}, {}
    for kind, row in pick_examples(prep).items():
        onset = int(row["onset"])
        label = f"{kind}\n{row['video']}\nframes {onset}->{onset + prep.k[kind]}"
        rows[label] = maps = feature_maps(prep, setup, row)
        points[label] = maps["landmarks"]
    return plot_image_rows(
        rows,
        columns,
        cmaps={"frame i": "gray", "u": "RdBu_r", "v": "RdBu_r"},
        signed=("u", "v"),
        points=points,
        points_on="frame i",
        suptitle=f"{common.dataset_label(prep.name)}: flow from onset i to i+k ({setup.crop_size}px crop)",
    )


def best_video(prep: Prepared, kind: str = "macro") -> str:
    """The video with the most expressions of ``kind`` (ties: name order)."""
    counts = prep.gt[prep.gt["type"] == kind]["video"].value_counts()
    if counts.empty:
        return str(prep.videos["video"].iloc[0])
    top = counts[counts == counts.max()].index
    return sorted(top)[0]


def timeline_figure(prepared: dict, runs: dict, dataset: str | None = None, video: str | None = None):
    """Scores, smoothed scores, threshold, ground truth and spotted intervals of one
    video, one panel per type."""
    import matplotlib.pyplot as plt

    from melib.visualization.training import plot_score_timeline

    name = dataset or next(iter(prepared))
    prep = prepared[name]
    kinds = [kind for (n, kind) in runs if n == name]
    video = video or best_video(prep, "macro" if "macro" in kinds else kinds[0])
    fig, axes = plt.subplots(len(kinds), 1, figsize=(11, 2.6 * len(kinds)), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        result = runs[(name, kind)]
        s = result.scores[video]
        smoothed = smooth_scores(s, result.k)
        spotted = result.predictions[result.predictions["video"] == video]
        plot_score_timeline(
            s,
            smoothed,
            spotting_threshold(smoothed, result.threshold),
            truth=[tuple(r) for r in prep.intervals(video, kind)],
            spotted=list(zip(spotted["onset"], spotted["offset"])),
            peaks=spotted["peak"],
            ax=ax,
            title=f"{common.dataset_label(name)} {video}: {kind} (k={result.k})",
            fps=prep.dataset.fps,
        )
    fig.tight_layout()
    return fig


def loss_figure(runs: dict):
    """Training loss per step of every fold, smoothed over a tenth of an epoch (the runs
    here have few epochs, so per-epoch points would say little)."""
    from melib.visualization.panels import plot_loss_panels

    return plot_loss_panels(
        {f"{common.dataset_label(name)} {kind}": result.histories for (name, kind), result in runs.items()},
        key="batch_loss",
        points_per_epoch=10,
        panel=(3.6, 3.0),
        title="{name}, {epochs} epoch(s)",
    )


def _fold_with_most(prep: Prepared, kind: str) -> str:
    counts = prep.gt.loc[prep.gt["type"] == kind, "subject"].value_counts()
    return sorted(counts[counts == counts.max()].index)[0] if len(counts) else prep.subjects[0]


def cam_inputs(prep: Prepared, result: RunResult, n: int = 4) -> tuple[str, np.ndarray, list]:
    """The held-out subject with the most expressions, and its ``n`` top-scoring
    windows inside ground-truth expressions (normalised inputs as the model saw them)."""
    fold = _fold_with_most(prep, result.kind)
    if fold not in result.checkpoints:
        fold = sorted(result.checkpoints)[0]
    chosen = []
    for video in prep.videos.loc[prep.videos["subject"] == fold, "video"]:
        y = labels_for(prep, video, result.kind)
        s = result.scores[video]
        for i in np.flatnonzero(y > 0):
            chosen.append((float(s[i]), video, int(i)))
    chosen = sorted(chosen, key=lambda t: (-t[0], t[1], t[2]))
    picked, used = [], set()
    for score, video, i in chosen:  # spread over expressions: skip windows within k of a pick
        if any(v == video and abs(i - j) <= result.k for v, j in used):
            continue
        used.add((video, i))
        picked.append((score, video, i))
        if len(picked) == n:
            break
    if picked:
        x = np.stack([video_windows(prep, v, result.kind).input(i) for _, v, i in picked])
    else:
        x = np.zeros((0, 42, 42, 3))
    titles = [f"{v[:14]}\nwin {i} s={s:.2f}" for s, v, i in picked]
    return fold, x, titles


def gradcam_figure(prepared: dict, runs: dict, dataset: str | None = None, kind: str = "macro", n: int = 4):
    """Grad-CAM of each SOFTNet stream (u, v, strain) on top-scoring expression windows,
    each map over the channel its stream sees."""
    from melib.visualization.cams import layer_cams, plot_cams

    name = dataset or next(iter(prepared))
    if (name, kind) not in runs:
        kind = next(kd for (nm, kd) in runs if nm == name)
    result = runs[(name, kind)]
    fold, x, titles = cam_inputs(prepared[name], result, n)
    if not len(x):
        raise ValueError(f"no expression windows of type {kind} in {name} to explain")
    model = load_fold_model(result, fold)
    tensor = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    with cpu_threads(1):
        cams = layer_cams(
            model,
            tensor,
            {
                f"stream {c + 1} ({channel})": model.streams[c][0]
                for c, channel in enumerate(("|u|", "|v|", "strain"))
            },
        )
    panels = {stream: (cam, x[..., c]) for c, (stream, cam) in enumerate(cams.items())}
    fig = plot_cams(x, panels, row_titles=titles, image_title="input (mean of channels)")
    fig.suptitle(f"Grad-CAM, {common.dataset_label(name)} {kind}, model of fold {fold}", fontsize=10)
    fig.tight_layout()
    return fig


def penultimate_features(prep: Prepared, result: RunResult, max_points: int = 1500, seed: int = 0):
    """400-d features of the held-out windows of one fold (one model: embeddings of
    different folds live in different spaces), labelled micro / macro / neutral."""
    from melib.visualization.embedding import subsample

    fold, _, _ = cam_inputs(prep, result, 0)
    model = load_fold_model(result, fold)
    feats, labels = [], []
    for video in prep.videos.loc[prep.videos["subject"] == fold, "video"]:
        y = np.full(len(result.scores[video]), "neutral", dtype=object)
        for other in TYPES:  # windows of this model's k that overlap an expression of each type
            y[pseudo_labels(prep.n_frames(video), prep.intervals(video, other), result.k) > 0] = other
        feats.append((video, np.arange(len(y))))
        labels.append(y)
    labels_all = np.concatenate(labels)
    keep = subsample(labels_all, max_points, seed)
    offsets = np.cumsum([0] + [len(i) for _, i in feats])
    out = []
    for (video, idx), off in zip(feats, offsets):
        sel = keep[(keep >= off) & (keep < off + len(idx))] - off
        if len(sel):
            out.append(predict(model, video_windows(prep, video, result.kind, sel), method="embed"))
    return fold, np.concatenate(out), labels_all[keep]


def tsne_figure(prepared: dict, runs: dict, setup: Setup, dataset: str | None = None):
    """t-SNE of SOFTNet's 400-d penultimate features, one panel per type's model."""
    import matplotlib.pyplot as plt

    from melib.visualization.embedding import plot_embedding, tsne

    name = dataset or next(iter(prepared))
    kinds = [kind for (n, kind) in runs if n == name]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.8 * len(kinds), 4.2), squeeze=False)
    palette = {"neutral": "0.7", "micro": "tab:red", "macro": "tab:blue"}
    for ax, kind in zip(axes[0], kinds):
        fold, feats, labels = penultimate_features(
            prepared[name], runs[(name, kind)], setup.limits.tsne_points, setup.seed
        )
        xy = tsne(feats, seed=setup.seed, max_iter=setup.limits.tsne_iter)
        order = [c for c in ("neutral", "macro", "micro") if c in set(labels)]
        plot_embedding(
            xy,
            labels,
            ax=ax,
            palette=palette,
            order=order,
            title=f"{kind} model, fold {fold} ({len(labels)} windows)",
        )
    fig.suptitle(f"t-SNE of the 400-d penultimate layer, {common.dataset_label(name)}", fontsize=10)
    fig.tight_layout()
    return fig
