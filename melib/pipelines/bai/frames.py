"""Frame level (Bai 2020, section 3.1): a frame classifier per LOSO fold
(:func:`run_frame_level`), then every clip encoded once by each fold's CNN
(:func:`encode_folds`), so that the decoders can train on cached features."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from melib import runtime
from melib.evaluation.recognition import evaluate_recognition
from melib.features.cache import safe_name
from melib.models.bai import FrameClassifier, stage_channels
from melib.pipelines.bai.config import Setup
from melib.pipelines.bai.data import (
    Clips,
    FrameSet,
    folds_for,
    frame_items,
    sequence_indices,
    to_tensor,
)
from melib.runtime import stable_hash
from melib.training import predict, progress_bar, train_folds

__all__ = [
    "Encoded",
    "FrameRunResult",
    "encode_clips",
    "encode_folds",
    "run_frame_level",
    "stage_dim",
]

# ------------------------------------------------------------------ frame level (3.1)


@dataclass
class FrameRunResult:
    """One frame-level LOSO run (one experiment)."""

    name: str
    experiment: str
    layer: str
    setup: Setup
    predictions: pd.DataFrame  # one row per held-out frame (sample = clip#frame)
    clip_predictions: pd.DataFrame  # mean logits over a clip's frames
    evaluation: object
    clip_evaluation: object
    histories: dict
    checkpoints: dict
    folds: dict
    trainable: tuple
    seconds: float = 0.0
    trained_folds: int = 0
    models: dict = field(default_factory=dict, repr=False)  # fold -> trained model, when kept

    def model(self, fold: str, n_classes: int) -> FrameClassifier:
        """The fold's trained classifier (kept in memory, else read from its checkpoint)."""
        if fold in self.models:
            return self.models[fold].eval()
        model = FrameClassifier(
            self.experiment, self.layer, n_classes, fc=self.setup.fc, weights_path=self.setup.weights_path
        )
        state = runtime.load_torch(self.checkpoints[fold])
        model.load_state_dict(state["model"])
        return model.eval()


def _frame_key(clips: Clips, setup: Setup, experiment: str, layer: str, folds: dict) -> dict:
    return {
        "dataset": clips.name,
        "samples": list(map(str, clips.table["sample"])),
        "classes": list(clips.classes),
        "frames": [Path(p).name for p in clips.frames],
        "experiment": experiment,
        "layer": layer,
        "fc": list(setup.fc),
        "weights": setup.weights_path,
        "n_frames": setup.n_frames,
        "per_clip": setup.frames_per_clip,
        "folds": {k: list(f.held_out) for k, f in folds.items()},
        "augment": "hflip",
        "version": 1,
    }


def run_frame_level(
    clips: Clips,
    setup: Setup,
    layer: str,
    experiment: str | None = None,
    keep_models: bool = True,
    progress: bool = True,
) -> FrameRunResult:
    """Train one frame classifier per fold (fresh from the initial weights) and predict
    the held-out frames; clip predictions average the logits of a clip's frames.

    ``keep_models`` keeps the fold models in memory (about 100 MB each) for encoding
    and Grad-CAM: building a ResNet-50 costs seconds on a busy CPU."""
    experiment = experiment or setup.experiment
    start = time.perf_counter()
    folds = folds_for(clips, setup)
    n_classes = len(clips.classes)
    key = _frame_key(clips, setup, experiment, layer, folds)

    def make_model():
        return FrameClassifier(experiment, layer, n_classes, fc=setup.fc, weights_path=setup.weights_path)

    def make_data(fold):
        items = frame_items(clips, folds[fold].train, setup.n_frames, setup.frames_per_clip)
        return FrameSet(clips, items, train=True, seed=setup.seed)

    folder = runtime.cache_dir("checkpoints", "bai", clips.name, "frames")
    rows, clip_rows, histories, checkpoints, trained, trainable, models = [], [], {}, {}, 0, (), {}
    for result in train_folds(
        list(folds),
        make_model,
        make_data,
        setup.frame_train_config(),
        folder,
        key,
        progress=progress,
        desc=f"frame CNN, experiment {experiment}",
    ):
        trained += not result.skipped
        histories[result.fold], checkpoints[result.fold] = result.history, result.checkpoint
        trainable = result.model.trainable_stages()
        if keep_models:
            models[result.fold] = result.model.cpu().eval()
        test = folds[result.fold].test
        items = frame_items(clips, test, setup.n_frames, setup.frames_per_clip)
        logits = predict(result.model, FrameSet(clips, items), batch_size=32, device=setup.device)
        for (i, t), out in zip(items, logits):
            row = clips.table.iloc[i]
            rows.append(
                {
                    "sample": f"{row['sample']}#{t}",
                    "clip": row["sample"],
                    "subject": row["subject"],
                    "true": row["class"],
                    "predicted": clips.classes[int(out.argmax())],
                    "fold": result.fold,
                    "logits": out,
                }
            )
    frames = pd.DataFrame(rows)
    for clip, group in frames.groupby("clip", sort=False):
        mean = np.mean(np.stack(group["logits"].to_list()), axis=0)
        first = group.iloc[0]
        clip_rows.append(
            {
                "sample": clip,
                "subject": first["subject"],
                "true": first["true"],
                "predicted": clips.classes[int(mean.argmax())],
                "fold": first["fold"],
            }
        )
    clip_frame = pd.DataFrame(clip_rows)
    labels = list(clips.classes)
    return FrameRunResult(
        f"experiment {experiment}",
        experiment,
        layer,
        setup,
        frames.drop(columns=["logits"]),
        clip_frame,
        evaluate_recognition(frames[["sample", "subject", "true", "predicted"]], labels=labels),
        evaluate_recognition(clip_frame.drop(columns=["fold"]), labels=labels),
        histories,
        checkpoints,
        folds,
        trainable,
        time.perf_counter() - start,
        trained,
        models,
    )


# ---------------------------------------------------------------- sequence level (3.2)


@torch.no_grad()
def encode_clips(
    model: FrameClassifier, clips: Clips, n_values, maps_n: int | None = None, device: str = "auto"
) -> tuple[dict, np.ndarray | None]:
    """Per N: (n_clips, N, D) fc2 frame vectors of every clip's N-frame sequence; with
    ``maps_n`` also the last kept stage's maps (n_clips, maps_n, C, h, w) float16 for the
    attention decoder. Each distinct frame goes through the CNN once."""
    from melib.training import cpu_threads

    dev = runtime.resolve_device(device)
    model = model.to(dev).eval()
    n_values = sorted(set(int(n) for n in n_values) | ({int(maps_n)} if maps_n else set()))
    feats = {n: None for n in n_values}
    maps = None
    with cpu_threads(1):
        for i in range(len(clips.table)):
            frames = clips.load(i)
            seqs = {n: sequence_indices(len(frames), n) for n in n_values}
            union = np.unique(np.concatenate(list(seqs.values())))
            m = model.feature_maps(to_tensor(np.array(frames[union])).to(dev))
            v = model.head(model.pool(m)).cpu().numpy()
            where = {t: k for k, t in enumerate(union)}
            for n, seq in seqs.items():
                if feats[n] is None:
                    feats[n] = np.zeros((len(clips.table), n, v.shape[1]), np.float32)
                feats[n][i] = v[[where[t] for t in seq]]
            if maps_n:
                mm = m.cpu().numpy().astype(np.float16)
                if maps is None:
                    maps = np.zeros((len(clips.table), maps_n) + mm.shape[1:], np.float16)
                maps[i] = mm[[where[t] for t in seqs[int(maps_n)]]]
    return feats, maps


@dataclass
class Encoded:
    """Per fold, the cached frame features (paths of .npz files)."""

    paths: dict  # fold -> Path
    n_values: tuple
    maps_n: int | None

    def load(self, fold: str, n: int) -> np.ndarray:
        return runtime.load_npz(self.paths[fold])[f"n{n}"]

    def load_maps(self, fold: str) -> np.ndarray:
        return runtime.load_npz(self.paths[fold])["maps"].astype(np.float32)


def encode_folds(
    clips: Clips,
    frame_run: FrameRunResult,
    setup: Setup,
    n_values=None,
    maps_n: int | None = None,
    progress: bool = True,
) -> Encoded:
    """Encode every clip with every fold's frame CNN (cached per fold and settings)."""
    n_values = tuple(sorted(set(n_values or setup.limits.n_sweep) | {setup.n_frames}))
    folder = runtime.cache_dir("features", "bai", clips.name, "encoded")
    paths = {}
    for fold in progress_bar(list(frame_run.checkpoints), desc="encode frames", disable=not progress):
        key = stable_hash(
            Path(frame_run.checkpoints[fold]).name,
            [Path(p).name for p in clips.frames],
            n_values,
            maps_n,
            "v1",
        )
        path = folder / f"{safe_name(fold)}-{key}.npz"
        if not runtime.cache_ok(path):
            feats, maps = encode_clips(
                frame_run.model(fold, len(clips.classes)), clips, n_values, maps_n, setup.device
            )
            arrays = {f"n{n}": v for n, v in feats.items()}
            if maps is not None:
                arrays["maps"] = maps
            runtime.save_npz(path, **arrays)
        paths[fold] = path
    return Encoded(paths, n_values, maps_n)


def stage_dim(frame_run: FrameRunResult) -> int:
    """Channels of the maps the attention decoder reads: the last stage the frame model keeps."""
    return stage_channels(frame_run.layer if frame_run.experiment == "III" else "layer4")
