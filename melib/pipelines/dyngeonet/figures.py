"""DynGeoNet's figures: the windows, their dynamic images and geometry, the training
losses, score timelines, Grad-CAM on the VGG branch and t-SNE of the fused features."""

from __future__ import annotations

import numpy as np
import torch

from melib import runtime
from melib.features.dyngeonet_windows import region_margin
from melib.pipelines.common import dataset_label
from melib.pipelines.dyngeonet.config import BRANCH_NAMES, Setup, predict_batch
from melib.pipelines.dyngeonet.data import Prepared, WindowSet, video_windows
from melib.pipelines.dyngeonet.run import RunResult, load_fold_model
from melib.pipelines.dyngeonet.tables import spot_video
from melib.training import cpu_threads, predict

__all__ = [
    "pick_windows",
    "window_frames",
    "dynamic_image_examples",
    "dynamic_image_figure",
    "landmark_figure",
    "geometry_figure",
    "loss_figure",
    "frame_curve",
    "best_video",
    "timeline_figure",
    "cam_windows",
    "gradcam_figure",
    "fused_embedding",
    "tsne_figure",
]


def pick_windows(prep: Prepared, n_micro: int = 2, n_other: int = 2, seed: int = 0) -> list[dict]:
    """Windows to show: ``n_micro`` whose middle is a micro-expression's apex region (the
    ones nearest to annotated apexes) and ``n_other`` negatives (one inside a
    macro-expression when there is one, the rest neutral)."""
    rng = np.random.default_rng(seed)
    picked = []
    micro = prep.gt[prep.gt["type"] == "micro"].sort_values(["video", "onset"])
    for row in micro.itertuples():
        if len(picked) >= n_micro:
            break
        w = prep.windows[row.video]
        middles = w.starts + prep.length // 2
        i = int(np.argmin(np.abs(middles - int(row.apex))))
        if w.labels[i]:
            picked.append({"video": row.video, "row": i, "kind": "micro"})
    macro = prep.gt[prep.gt["type"] == "macro"].sort_values(["video", "onset"])
    for row in macro.itertuples():
        w = prep.windows[row.video]
        i = int(np.argmin(np.abs(w.starts + prep.length // 2 - int(row.apex))))
        if not w.labels[i]:
            picked.append({"video": row.video, "row": i, "kind": "macro (negative)"})
            break
    videos = list(prep.videos["video"])
    for _ in range(100 * (n_micro + n_other)):  # bounded: a video may have no neutral window
        if len(picked) >= n_micro + n_other:
            break
        video = videos[int(rng.integers(len(videos)))]
        w = prep.windows[video]
        middles = w.starts + prep.length // 2
        inside = np.zeros(len(middles), bool)
        for onset, offset in prep.gt.loc[prep.gt["video"] == video, ["onset", "offset"]].to_numpy():
            inside |= (middles >= onset - prep.length) & (middles <= offset + prep.length)
        free = np.flatnonzero(~inside)
        if len(free):
            picked.append({"video": video, "row": int(rng.choice(free)), "kind": "neutral"})
    for p in picked:
        w = prep.windows[p["video"]]
        p["start"] = int(w.starts[p["row"]])
        p["title"] = f"{p['kind']}\n{p['video'][:16]} @{p['start']}"
    return picked


def window_frames(prep: Prepared, video: str, start: int) -> np.ndarray:
    """The gray frames of one window (L, H, W)."""
    return np.stack(list(prep.dataset.iter_frames(video, start, start + prep.length, gray=True)))


def dynamic_image_examples(prep: Prepared, setup: Setup, picked: list[dict]) -> list[dict]:
    """For each picked window: its onset frame, its region dynamic images (as computed
    for the network, from the frames) and the cached network input."""
    from melib import face
    from melib.features.dynamic_image import region_dynamic_images

    out = []
    for p in picked:
        w = prep.windows[p["video"]]
        frames = window_frames(prep, p["video"], p["start"])
        margin = region_margin(prep.spec, face.track_video(prep.dataset, p["video"]).box)
        with np.load(runtime.verified(w.index_path)) as z:
            marks = z["onset_marks"][p["row"]]
        regions = region_dynamic_images(
            frames, marks, size=setup.input_size, margin=margin, variant=setup.variant
        )
        out.append(
            {
                "title": p["title"],
                "kind": p["kind"],
                "frame": frames[0],
                "regions": regions,
                "composite": np.asarray(w.dynamic[p["row"]], np.float32),
            }
        )
    return out


def dynamic_image_figure(prep: Prepared, setup: Setup, picked: list[dict] | None = None):
    """Dynamic images of micro-expression windows beside non-micro ones: per window, its
    onset frame, the eye, nose and mouth dynamic images and the composite input."""
    from melib.visualization.dyngeonet import plot_dynamic_images

    picked = picked or pick_windows(prep, seed=setup.seed)
    panels = []
    for ex in dynamic_image_examples(prep, setup, picked):
        panels.append((ex["frame"], ex["title"]))
        panels += [(image, f"{name} DI") for name, image in ex["regions"].items()]
        panels.append((ex["composite"], "network input"))
    fig = plot_dynamic_images(panels, ncols=5, size=1.9)
    fig.suptitle(
        f"{dataset_label(prep.name)}: windows of L={prep.length} frames "
        f"(alpha_t {'2t-T-1' if setup.variant == 'bilen' else '2t-T+1'})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def landmark_figure(prep: Prepared, picked: list[dict]):
    """The paper's figure 2: the 45 lines on the onset and apex frames of a micro window."""
    import matplotlib.pyplot as plt

    from melib import face
    from melib.visualization.dyngeonet import plot_landmark_lines

    p = next((q for q in picked if q["kind"] == "micro"), picked[0])
    track = face.track_video(prep.dataset, p["video"])
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 4))
    for ax, (what, index) in zip(
        axes, (("onset (first frame)", p["start"]), ("apex (middle frame)", p["start"] + prep.length // 2))
    ):
        image = prep.dataset.read_frame(p["video"], index, gray=True)
        plot_landmark_lines(image, face.landmarks(image, track.box), ax=ax)
        ax.set_title(f"{what}: frame {index}", fontsize=9)
    fig.suptitle(f"{dataset_label(prep.name)} {p['video']}: the 45 lines of the ratio features", fontsize=10)
    fig.tight_layout()
    return fig


def geometry_figure(prepared: dict):
    """The 67 geometric values (ratio - 1 and deform) averaged over positive and negative
    windows of each dataset: where a micro-expression moves the landmarks."""
    import matplotlib.pyplot as plt

    from melib.features.geometry import N_RATIOS, feature_names

    names = feature_names()
    fig, axes = plt.subplots(len(prepared), 1, figsize=(12, 2.3 * len(prepared)), squeeze=False)
    for ax, (name, prep) in zip(axes[:, 0], prepared.items()):
        geo = np.concatenate([w.geometry for w in prep.windows.values()]).astype(np.float64)
        y = np.concatenate([w.labels for w in prep.windows.values()]).astype(bool)
        shown = geo.copy()
        shown[:, :N_RATIOS] = np.abs(shown[:, :N_RATIOS] - 1.0)
        x = np.arange(len(names))
        for mask, label, color in ((~y, "other windows", "0.6"), (y, "micro windows", "tab:red")):
            if mask.any():
                ax.bar(
                    x + (0.2 if label.startswith("micro") else -0.2),
                    shown[mask].mean(axis=0),
                    width=0.4,
                    color=color,
                    label=f"{label} ({int(mask.sum())})",
                )
        ax.axvline(N_RATIOS - 0.5, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("mean |ratio-1| / deform", fontsize=7)
        ax.set_title(dataset_label(name), fontsize=9)
        ax.legend(fontsize=7)
        ax.set_xticks(x[::3])
        ax.set_xticklabels(names[::3], rotation=90, fontsize=6)
    fig.tight_layout()
    return fig


def loss_figure(runs: dict):
    """Training loss per epoch of every fold, as a grid: one row per dataset (and
    protocol), one column per network."""
    from melib.visualization.panels import plot_loss_grid

    return plot_loss_grid(
        {(f"{dataset_label(r.dataset)} ({r.protocol})", r.method): r.histories for r in runs.values()}
    )


def frame_curve(starts, length: int, probs, n_frames: int) -> np.ndarray:
    """Window probabilities placed at their middle frames and interpolated between them."""
    middles = np.asarray(starts) + length // 2
    if not len(middles):
        return np.zeros(n_frames)
    return np.interp(np.arange(n_frames), middles, np.asarray(probs, np.float64))


def best_video(prep: Prepared, result: RunResult) -> str:
    """The scored video with the most micro-expressions (ties: name order)."""
    scored = prep.gt[(prep.gt["type"] == "micro") & prep.gt["video"].isin(list(result.probs))]
    counts = scored["video"].value_counts()
    if counts.empty:
        return sorted(result.probs)[0]
    return sorted(counts[counts == counts.max()].index)[0]


def timeline_figure(prepared: dict, runs: dict, setup: Setup, branch: str | None = None):
    """For each dataset, the held-out video with the most micro-expressions: window
    probabilities (at each window's middle frame), the threshold, the micro-expressions
    (green) and the spotted intervals (red) of one network (the chosen branch)."""
    import matplotlib.pyplot as plt

    from melib.visualization.training import plot_score_timeline

    branch = branch or setup.branch
    chosen = [(name, result) for (name, b), result in runs.items() if b == branch]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(11, 2.5 * len(chosen)), squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], chosen):
        prep = prepared[name]
        video = best_video(prep, result)
        w = prep.windows[video]
        spotted = spot_video(
            w.starts, prep.length, prep.stride, result.probs[video], setup.threshold, setup.merge, w.n_frames
        )
        plot_score_timeline(
            frame_curve(w.starts, prep.length, result.probs[video], w.n_frames),
            threshold=setup.threshold,
            truth=[tuple(r) for r in prep.micro(video)],
            spotted=list(zip(spotted["onset"], spotted["offset"])),
            ax=ax,
            title=f"{dataset_label(name)} {video}: {result.method} (L={prep.length})",
            fps=prep.dataset.fps,
        )
        ax.set_ylim(-0.05, 1.05)
    fig.tight_layout()
    return fig


def _cam_run(runs: dict, setup: Setup, dataset: str | None):
    for (name, branch), result in runs.items():
        if branch in ("fusion", "dyn") and (dataset is None or name == dataset) and branch == setup.branch:
            return name, result
    for (name, branch), result in runs.items():
        if branch in ("fusion", "dyn") and (dataset is None or name == dataset):
            return name, result
    raise ValueError("Grad-CAM needs a run with the VGG branch (branch 'fusion' or 'dyn')")


def cam_windows(prep: Prepared, result: RunResult, n: int = 4) -> tuple[str, list]:
    """The fold with the most micro windows and its ``n`` highest-scoring positive windows
    (one per expression where possible)."""
    counts = {}
    for video, fold in result.fold_of.items():
        counts[fold] = counts.get(fold, 0) + int(prep.windows[video].labels.sum())
    fold = sorted(counts, key=lambda f: (-counts[f], f))[0]
    chosen = []
    for video, f in sorted(result.fold_of.items()):
        if f != fold:
            continue
        w = prep.windows[video]
        for i in np.flatnonzero(w.labels > 0):
            chosen.append((float(result.probs[video][i]), video, int(i)))
    chosen.sort(key=lambda t: (-t[0], t[1], t[2]))
    picked = []
    for score, video, i in chosen:
        if any(
            v == video
            and abs(int(prep.windows[v].starts[j]) - int(prep.windows[video].starts[i])) < prep.length
            for _, v, j in picked
        ):
            continue
        picked.append((score, video, i))
        if len(picked) == n:
            break
    return fold, picked


def gradcam_figure(prepared: dict, runs: dict, setup: Setup, dataset: str | None = None, n: int = 4):
    """Grad-CAM on the VGG branch's last convolution for the top-scoring micro windows of
    one held-out fold (the logit is the target: warm = raises the micro score).
    Without a VGG-branch run (GeoNet alone) it says so and returns None."""
    from melib.models.dyngeonet import DynamicView, gradcam_layer, unpack_inputs
    from melib.visualization.cams import grad_cam, plot_cams

    if not any(branch in ("fusion", "dyn") for _, branch in runs):
        print("No Grad-CAM: only GeoNet ran (branch='geo' without ablations), and it has no image branch.")
        return None
    name, result = _cam_run(runs, setup, dataset)
    prep = prepared[name]
    fold, picked = cam_windows(prep, result, n)
    if not picked:
        raise ValueError(f"no micro-expression windows in fold {fold} of {name} to explain")
    model = load_fold_model(setup, result, fold)
    sets = [video_windows(prep.windows[v], "packed", result.stats[fold]) for _, v, _ in picked]
    x = torch.from_numpy(np.stack([s.input(i) for s, (_, _, i) in zip(sets, picked)]))
    dynamic, geometry = unpack_inputs(x, model.input_size, model.geo_dim)
    with cpu_threads(1):
        cams = grad_cam(DynamicView(model, geometry), dynamic, gradcam_layer(model))
    images = dynamic.numpy().transpose(0, 2, 3, 1)
    titles = [f"{v[:14]}\n@{int(prep.windows[v].starts[i])} p={s:.2f}" for s, v, i in picked]
    fig = plot_cams(
        images, {"Grad-CAM (VGG branch)": cams}, row_titles=titles, image_title="input (eyes, nose, mouth)"
    )
    fig.suptitle(f"{dataset_label(name)} {result.method}, fold {fold}", fontsize=9)
    fig.tight_layout()
    return fig


def fused_embedding(prep: Prepared, result: RunResult, setup: Setup, max_points: int = 600):
    """Fused features (or the branch's features) of one fold's held-out windows,
    labelled micro / macro / neutral by the window's middle frame."""
    from melib.visualization.embedding import subsample

    fold, _ = cam_windows(prep, result, 0)
    model = load_fold_model(setup, result, fold)
    stats = result.stats[fold]
    feats, labels = [], []
    for video in sorted(v for v, f in result.fold_of.items() if f == fold):
        w = prep.windows[video]
        middles = w.starts + prep.length // 2
        label = np.full(len(middles), "neutral", dtype=object)
        for kind in ("macro", "micro"):  # micro last: it wins where both overlap
            for onset, offset in prep.gt.loc[
                (prep.gt["video"] == video) & (prep.gt["type"] == kind), ["onset", "offset"]
            ].to_numpy():
                label[(middles >= onset) & (middles <= offset)] = kind
        feats.append((video, len(middles)))
        labels.append(label)
    labels_all = np.concatenate(labels)
    keep = subsample(labels_all, max_points, setup.seed)
    out, offset = [], 0
    for video, count in feats:
        rows = keep[(keep >= offset) & (keep < offset + count)] - offset
        if len(rows):
            data = WindowSet(
                [prep.windows[video]], np.zeros(len(rows)), rows, np.zeros(len(rows)), "packed", *stats
            )
            out.append(
                predict(
                    model,
                    data,
                    batch_size=predict_batch(setup.input_size, 512),
                    method="embed",
                    device=setup.device,
                )
            )
        offset += count
    return fold, np.concatenate(out), labels_all[keep]


def tsne_figure(prepared: dict, runs: dict, setup: Setup):
    """t-SNE of the fused DynGeoNet features (the chosen branch's features for the
    ablations) of one held-out fold per dataset."""
    import matplotlib.pyplot as plt

    from melib.visualization.embedding import plot_embedding, tsne

    chosen = [(name, result) for (name, branch), result in runs.items() if branch == setup.branch]
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.6 * len(chosen), 4.1), squeeze=False)
    palette = {"neutral": "0.7", "micro": "tab:red", "macro": "tab:blue"}
    for ax, (name, result) in zip(axes[0], chosen):
        fold, feats, labels = fused_embedding(prepared[name], result, setup, setup.limits.tsne_points)
        if len(labels) < 5:  # a plumbing run's few windows: say so rather than fail
            ax.text(0.5, 0.5, f"{len(labels)} windows: too few for t-SNE", ha="center", va="center")
            ax.set_title(f"{dataset_label(name)}, fold {fold}", fontsize=9)
            ax.set_axis_off()
            continue
        xy = tsne(feats, seed=setup.seed, max_iter=setup.limits.tsne_iter)
        plot_embedding(
            xy,
            labels,
            ax=ax,
            palette=palette,
            order=[c for c in ("neutral", "macro", "micro") if c in set(labels)],
            title=f"{dataset_label(name)}, fold {fold} ({len(labels)} windows)",
        )
        ax.title.set_fontsize(9)
    fig.suptitle(f"t-SNE of the {BRANCH_NAMES[setup.branch]} features before the classifier", fontsize=10)
    fig.tight_layout()
    return fig
