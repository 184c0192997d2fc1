"""LBCNN's figures: a frame's two inputs, the class timeline of a held-out video,
Grad-CAM on both branches, the t-SNE of the fused bilinear features, the loss curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from melib import runtime
from melib.features.lbcnn import CLASS_INDEX, CLASS_NAMES
from melib.models.lbcnn import LBCNN
from melib.pipelines.lbcnn.data import Prepared
from melib.pipelines.lbcnn.run import RunResult

__all__ = [
    "pick_examples",
    "input_figure",
    "timeline_figure",
    "load_fold_model",
    "branch_cams",
    "gradcam_figure",
    "tsne_figure",
    "loss_figure",
]


def pick_examples(prepared: dict[str, Prepared], name: str | None = None) -> list[dict]:
    """A micro, a macro and a neutral training frame (expression frames nearest the apex),
    from the first video that has a micro-expression (else the first video)."""
    name = name or next(iter(prepared))
    prep = prepared[name]
    ann = prep.dataset.annotations
    videos = list(prep.videos)
    with_micro = [v for v in videos if (ann[(ann["video"] == v)]["type"] == "micro").any()]
    examples = []
    for kind in ("micro", "macro", "neutral"):
        order = with_micro + [v for v in videos if v not in with_micro]
        for video in order:
            vs = prep.videos[video]
            s = vs.samples[vs.samples["label"] == CLASS_INDEX[kind]]
            if s.empty:
                continue
            if kind == "neutral":
                frame = int(s["frame"].iloc[len(s) // 2])
            else:
                row = ann[ann["video"] == video].iloc[int(s["expression"].iloc[0])]
                middle = (int(row["onset"]) + int(row["offset"])) // 2
                apex = int(row["apex"]) if pd.notna(row["apex"]) else middle
                frames = s[s["expression"] == s["expression"].iloc[0]]["frame"].to_numpy()
                frame = int(frames[np.argmin(np.abs(frames - apex))])
            examples.append(
                {
                    "dataset": name,
                    "video": video,
                    "subject": vs.subject,
                    "frame": frame,
                    "label": CLASS_INDEX[kind],
                    "kind": kind,
                    "input": vs.inputs_of([frame])[0],
                    "title": f"{kind}\n{video}\nframe {frame}",
                }
            )
            break
    return examples


def input_figure(examples: list[dict]):
    from melib.visualization.lbcnn import plot_inputs

    return plot_inputs(examples)


def timeline_figure(result: RunResult, name: str, video: str | None = None):
    """Per-frame classes of one held-out video against its ground truth (default: the
    video with the most ground-truth intervals)."""
    from melib.visualization.lbcnn import plot_class_timeline

    dr = result.datasets[name]
    if video is None:
        counts = dr.truth.groupby("video").size()
        video = str(counts.sort_values(ascending=False, kind="stable").index[0])
    p = dr.predictions[video]
    truth = [(int(r.onset), int(r.offset), r.type) for r in dr.truth[dr.truth["video"] == video].itertuples()]
    spotted = [
        (int(r.onset), int(r.offset), r.type) for r in dr.spotted[dr.spotted["video"] == video].itertuples()
    ]
    return plot_class_timeline(
        p["n_frames"],
        p["grid"],
        p["classes"],
        truth,
        spotted,
        stride=p["stride"],
        scores=p["scores"],
        fps=dr.fps,
        title=f"{name} {video} (held out in fold {p['fold']}): every {p['stride']} frame(s)",
    )


def load_fold_model(result: RunResult, name: str, subject: str) -> LBCNN:
    """The model of the fold that held ``subject`` out, from its checkpoint."""
    for f in result.datasets[name].folds:
        if subject in f["held_out"]:
            model = result.setup.make_model()
            state = runtime.load_torch(f["checkpoint"])
            model.load_state_dict(state["model"])
            return model.eval()
    raise KeyError(f"{name}: subject {subject!r} was held out by no fold")


def branch_cams(result: RunResult, examples: list[dict]) -> dict:
    """Grad-CAM of each example's own class on both branches, with the fold model that
    never saw its subject: ``{"global": (N, S, S), "local": (N, S, S)}``."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from melib.training import cpu_threads
    from melib.visualization.cams import grad_cam

    maps = {"global": [], "local": []}
    # One thread, like training: spinning OpenMP threads crawl on a shared 2-core box.
    with cpu_threads(1):
        for ex in examples:
            model = load_fold_model(result, ex["dataset"], ex["subject"])
            x = torch.from_numpy(np.asarray(ex["input"], dtype=np.float32)[None])
            for branch, layer in model.cam_layers().items():
                target = [ClassifierOutputTarget(ex["label"])]
                maps[branch].append(grad_cam(model, x, layer, targets=target)[0])
    return {k: np.stack(v) for k, v in maps.items() if v}


def gradcam_figure(result: RunResult, examples: list[dict]):
    from melib.visualization.lbcnn import plot_branch_cams

    cams = branch_cams(result, examples)
    return plot_branch_cams(
        np.stack([ex["input"] for ex in examples]), cams, titles=[ex["title"] for ex in examples]
    )


def tsne_figure(result: RunResult, seed: int = 0):
    """t-SNE of the fused bilinear features of held-out frames, coloured by true class."""
    from melib.visualization.lbcnn import CLASS_COLORS
    from melib.visualization.panels import plot_tsne_panels

    features = {
        name: (dr.embedding["features"], [CLASS_NAMES[i] for i in dr.embedding["labels"]])
        for name, dr in result.datasets.items()
        if dr.embedding
    }
    return plot_tsne_panels(
        features,
        seed=seed,
        palette=CLASS_COLORS,
        order=CLASS_NAMES,
        title="{name}: fused bilinear features (held out)",
    )


def loss_figure(result: RunResult):
    """Training loss per epoch of every fold, one panel per dataset."""
    from melib.visualization.panels import plot_loss_panels

    return plot_loss_panels(
        {name: result.histories(name) for name in result.datasets},
        panel=(5.0, 3.2),
        title="{name}: training loss per fold",
    )
