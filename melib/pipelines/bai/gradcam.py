"""The specific layer l_s (Bai 2020, section 3.1): Grad-CAM on every ResNet-50 stage
of the untrained network, and a stated criterion in place of the proposal's "closest to
the facial features"; the same maps after training (the proposal's figure 4)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from melib import runtime
from melib.models.bai import FrameClassifier
from melib.pipelines import common
from melib.pipelines.bai.config import Setup
from melib.pipelines.bai.data import Clips, to_tensor

__all__ = [
    "FEATURE_REGIONS",
    "LAYER_CRITERION",
    "LayerChoice",
    "cam_examples",
    "cam_shift_table",
    "cams_after_training",
    "choose_specific_layer",
    "feature_mask",
    "landmarks_in_input",
    "region_share",
    "score_layers",
    "stage_cams",
]

STAGE_STRIDES = {"conv1": 4, "layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}  # ResNet-50 down-sampling
# The landmark regions of melib.face.regions that the l_s criterion counts as
# "facial features" (the proposal: eyes, eyebrows, nose wings, mouth corners).
FEATURE_REGIONS = ("eyes_brows", "nose", "mouth")
LAYER_CRITERION = (
    "l_s = the ResNet-50 stage whose Grad-CAM puts the largest share of its mass inside the landmark "
    "regions eyes+brows, nose and mouth (melib.face.regions, union of boxes), averaged over the apex "
    "frames of the first clips of each class; Grad-CAM explains the network's own top class (no labels); "
    "ties go to the shallower stage"
)


def landmarks_in_input(clips: Clips, i: int, alignment: str, size: int) -> np.ndarray:
    """Clip ``i``'s reference landmarks (68, 2) in the coordinates of its cached frames."""
    from melib import face

    row = clips.table.iloc[i]
    track = face.track_video(clips.dataset, row["video"])
    marks = track.landmarks
    if alignment == "none":
        h, w = track.frame_shape[:2]
        return (marks * np.array([size / w, size / h], np.float32)).astype(np.float32)
    if alignment == "align":
        marks = face.transform_points(marks, face.alignment_matrix(marks))
    return face.points_to_crop(marks, track.box, size)


def feature_mask(marks: np.ndarray, size: int) -> np.ndarray:
    """Boolean (size, size) mask: the union of the eyes+brows, nose and mouth boxes.

    The margin scales with the input (12 px on a 128 px face crop in SOFTNet)."""
    from melib import face

    margin = max(1, int(round(size * 0.03)))
    boxes = face.regions(marks, margin=margin)
    mask = np.zeros((size, size), bool)
    for name in FEATURE_REGIONS:
        mask[boxes[name].clip((size, size)).slices()] = True
    return mask


def cam_examples(clips: Clips, setup: Setup, n: int | None = None) -> list[int]:
    """Clips whose apex frames feed the l_s criterion: round-robin over the classes
    (first clips of each class in table order), ``n`` in all."""
    n = n or setup.limits.cam_clips
    by_class = [list(np.flatnonzero(clips.table["label"].to_numpy() == c)) for c in range(len(clips.classes))]
    picked = []
    while len(picked) < min(n, len(clips.table)):
        for members in by_class:
            if members and len(picked) < n:
                picked.append(int(members.pop(0)))
    return picked


def apex_frames(clips: Clips, indices) -> np.ndarray:
    """(K, S, S, 3) uint8 apex frames of the given clips."""
    out = []
    for i in indices:
        row = clips.table.iloc[i]
        apex = int(np.clip(row["apex"] - row["onset"], 0, row["length"] - 1))
        out.append(np.array(clips.load(i)[apex]))
    return np.stack(out)


def stage_cams(model: FrameClassifier, frames: np.ndarray, targets=None) -> dict:
    """``{stage: (K, S, S) Grad-CAM}`` for every kept stage; ``targets``: class per
    frame (default: the model's own top class, so no label is needed)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from melib.training import cpu_threads
    from melib.visualization.cams import layer_cams

    x = to_tensor(frames)
    # A copy: frozen stages have requires_grad off, and Grad-CAM needs their activations'
    # gradients.
    model = copy.deepcopy(model).cpu().eval()
    for p in model.parameters():
        p.requires_grad_(True)
    if targets is None:
        with torch.no_grad(), cpu_threads(1):
            targets = model(x).argmax(1).tolist()
    with cpu_threads(1):
        return layer_cams(
            model, x, model.stage_modules(), targets=[ClassifierOutputTarget(int(t)) for t in targets]
        )


def region_share(cams: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per frame, the share of CAM mass inside the mask; an all-zero CAM counts as
    uniform (its share is the mask's area share)."""
    cams = np.asarray(cams, np.float64)
    masks = np.asarray(masks, bool)
    total = cams.sum(axis=(1, 2))
    inside = (cams * masks).sum(axis=(1, 2))
    area = masks.mean(axis=(1, 2))
    return np.where(total > 0, inside / np.where(total > 0, total, 1), area)


@dataclass
class LayerChoice:
    """The outcome of :func:`choose_specific_layer`."""

    layer: str
    scores: pd.DataFrame  # per stage: CAM share inside the regions, area share, lift
    clips: list
    frames: np.ndarray
    masks: np.ndarray
    cams: dict
    given: bool = False  # True when the user fixed l_s (scores are still computed)


def initial_model(setup: Setup, n_classes: int) -> FrameClassifier:
    """The network before any training (VGGFace2 weights or torchvision's random init),
    all stages kept, with a freshly initialised fc1-fc3; seeded by ``setup.seed``."""
    runtime.seed_everything(setup.seed)
    # Experiment II from conv1 freezes nothing, so gradients reach every stage for Grad-CAM.
    return FrameClassifier("II", "conv1", n_classes, fc=setup.fc, weights_path=setup.weights_path)


def score_layers(cams: dict, masks: np.ndarray) -> pd.DataFrame:
    """Per stage: the mean CAM share inside the regions, the regions' area share and their ratio (lift)."""
    area = float(np.mean(masks))
    rows = []
    for stage, c in cams.items():
        share = float(np.mean(region_share(c, masks)))
        side = -(-int(c.shape[1]) // STAGE_STRIDES[stage])
        rows.append(
            {
                "stage": stage,
                "feature map": f"{side}x{side}",
                "CAM share in regions": share,
                "area share of regions": area,
                "lift": share / area if area else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("stage")


def choose_specific_layer(clips: Clips, setup: Setup) -> LayerChoice:
    """Grad-CAM on every stage of the untrained network; l_s by :data:`LAYER_CRITERION`.

    Deterministic for a seed: the network is built right after seeding, the frames are
    the first clips of each class, and Grad-CAM has no randomness.
    """
    indices = cam_examples(clips, setup)
    frames = apex_frames(clips, indices)
    masks = np.stack(
        [
            feature_mask(landmarks_in_input(clips, i, setup.alignment, setup.input_size), setup.input_size)
            for i in indices
        ]
    )
    model = initial_model(setup, len(clips.classes))
    cams = stage_cams(model, frames)
    scores = score_layers(cams, masks)
    best = str(scores["CAM share in regions"].idxmax())  # idxmax keeps the first (shallowest) of ties
    scores["chosen"] = ["l_s" if s == best else "" for s in scores.index]
    layer = best if setup.specific_layer == "auto" else setup.specific_layer
    return LayerChoice(
        layer, common.round_table(scores), indices, frames, masks, cams, given=setup.specific_layer != "auto"
    )


def cams_after_training(frame_run, clips: Clips, choice: LayerChoice) -> dict:
    """The same frames' Grad-CAMs per stage, each by the model of the fold that held
    its clip out (after training), for the stages that model keeps. ``frame_run`` is a
    :class:`~melib.pipelines.bai.frames.FrameRunResult` (only its ``folds`` and ``model``
    are used, so this module does not import the training code)."""
    fold_of = {}
    for fold, f in frame_run.folds.items():
        for i in f.test:
            fold_of[int(i)] = fold
    out = {}
    for k, i in enumerate(choice.clips):
        model = frame_run.model(fold_of[i], len(clips.classes))
        cams = stage_cams(model, choice.frames[k : k + 1])
        for stage, c in cams.items():
            out.setdefault(stage, []).append(c[0])
    return {stage: np.stack(v) for stage, v in out.items()}


def cam_shift_table(choice: LayerChoice, after: dict) -> pd.DataFrame:
    """CAM share inside the landmark regions per stage, before and after training."""
    before = score_layers(choice.cams, choice.masks)["CAM share in regions"]
    after_scores = score_layers(after, choice.masks)["CAM share in regions"]
    out = pd.DataFrame({"before training": before, "after training": after_scores})
    out["area share of regions"] = float(np.mean(choice.masks))
    return common.round_table(out)
