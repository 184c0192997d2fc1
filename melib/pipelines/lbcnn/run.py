"""LBCNN training and testing: one model per LOSO fold on class-balanced frames, every
grid frame of the held-out videos classified, runs of frames turned into intervals."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset as TorchDataset

from melib import runtime
from melib.evaluation import postprocess
from melib.evaluation.protocols import loso_splits
from melib.features.lbcnn import CLASS_NAMES, VideoSamples, frame_input
from melib.pipelines import common
from melib.pipelines.lbcnn.config import PLUMBING_GRID_FRAMES, Setup
from melib.pipelines.lbcnn.data import Prepared
from melib.pipelines.lbcnn.spotting import spot_video
from melib.runtime import stable_hash
from melib.training import fold_seed, predict, train_folds

__all__ = ["SampleSet", "balanced_items", "DatasetRunResult", "RunResult", "run_dataset", "run"]


class SampleSet(TorchDataset):
    """(input, target) pairs read from the per-video memory maps on demand."""

    def __init__(self, items: list[tuple[VideoSamples, int, int]], loss: str):
        self.items = items
        self.loss = loss

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        vs, row, label = self.items[i]
        x = torch.from_numpy(np.asarray(vs.inputs[row], dtype=np.float32))
        if self.loss == "mse":
            y = torch.zeros(len(CLASS_NAMES), dtype=torch.float32)
            y[label] = 1.0
            return x, y
        return x, torch.tensor(label, dtype=torch.long)


def balanced_items(
    videos: list[VideoSamples], balance: str, max_per_class: int | None, seed: int
) -> list[tuple[VideoSamples, int, int]]:
    """Class-balanced training items from the sampled frames of ``videos``.

    ``oversample``: every class drawn to the size of the largest (capped at
    ``max_per_class``), without replacement where a class has enough frames, with
    replacement where it has fewer. ``undersample``: every class cut to the smallest.
    """
    pools: dict[int, list] = {c: [] for c in range(len(CLASS_NAMES))}
    for vs in videos:
        rows = vs.rows(vs.samples["frame"].to_numpy())
        for row, label in zip(rows, vs.samples["label"].to_numpy()):
            pools[int(label)].append((vs, int(row), int(label)))
    present = {c: p for c, p in pools.items() if p}
    if not present:
        raise ValueError("no training samples: the training videos have no sampled frames")
    sizes = [len(p) for p in present.values()]
    target = max(sizes) if balance == "oversample" else min(sizes)
    if max_per_class is not None:
        target = min(target, int(max_per_class))
    rng = np.random.default_rng(seed)
    items = []
    for pool in present.values():
        pick = rng.choice(len(pool), size=target, replace=len(pool) < target)
        items += [pool[i] for i in np.sort(pick)]
    return items


def _grid_inputs(prep: Prepared, vs: VideoSamples, chunk: int = 256, grid: np.ndarray | None = None):
    """Batches of the inputs of the grid frames (``grid``: those of ``vs.grid`` to
    classify, default all), from the cache or decoded on the fly."""
    grid = vs.grid if grid is None else grid
    for start in range(0, len(grid), chunk):
        frames = grid[start : start + chunk]
        try:
            yield vs.inputs_of(frames)
        except KeyError:
            size = vs.inputs.shape[-1]
            yield np.stack(
                [
                    frame_input(prep.dataset.read_frame(vs.video, int(f)), vs.face_box, vs.rois, size)
                    for f in frames
                ]
            )


def _test_grid(vs: VideoSamples, setup: Setup) -> np.ndarray:
    """The grid frames a held-out video is classified at: all of them, or the first
    :data:`PLUMBING_GRID_FRAMES` in a plumbing run."""
    return vs.grid[:PLUMBING_GRID_FRAMES] if common.is_plumbing(setup) else vs.grid


def _scores(outputs: np.ndarray, loss: str) -> np.ndarray:
    """Class scores in [0, 1]: softmax of the logits (CE), or the regressed one-hot (MSE)."""
    if loss == "ce":
        z = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return np.clip(outputs, 0.0, 1.0)


@dataclass
class DatasetRunResult:
    """One dataset of a :class:`RunResult`: its folds, per-frame classes and intervals."""

    name: str
    fps: float
    folds: list[dict]
    predictions: dict[str, dict]  # video -> grid, classes, scores, n_frames, stride, subject, fold
    spotted: pd.DataFrame
    truth: pd.DataFrame
    embedding: dict = field(default_factory=dict)  # features, labels, videos, frames


@dataclass
class RunResult:
    """Every dataset of a run, trained and tested."""

    setup: Setup
    datasets: dict[str, DatasetRunResult]

    def histories(self, name: str) -> dict:
        return {f["fold"]: f["history"] for f in self.datasets[name].folds}


def _experiment_key(setup: Setup, prep: Prepared) -> dict:
    ds = prep.dataset
    return {
        "dataset": prep.name,
        "root": str(ds.root),
        "model": setup.model_kwargs(),
        "inputs": asdict(setup.input_settings),
        "sampling": asdict(prep.sampling),
        "balance": setup.balance,
        "max_per_class": setup.max_per_class,
        "annotations": stable_hash(
            ds.annotations[["video", "onset", "offset", "type"]].to_dict(orient="list"), length=12
        ),
    }


def _embedding_rows(vs: VideoSamples, per_class: int, seed: int) -> np.ndarray:
    """Grid positions of at most ``per_class`` frames of each true class of a video."""
    truth = vs.truth[vs.grid]
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(truth == c)
        if len(idx) > per_class:
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        keep.append(idx)
    return np.sort(np.concatenate(keep))


def _sketch(features: np.ndarray, dim: int = 4096, seed: int = 0) -> np.ndarray:
    """Count-sketch features wider than ``dim`` down to ``dim`` (inner products are kept
    in expectation), so that ResNet-18's 2 x 512² bilinear vectors fit t-SNE's memory."""
    features = np.asarray(features, dtype=np.float32)
    if features.shape[1] <= dim:
        return features
    rng = np.random.default_rng(seed)
    bucket = rng.integers(0, dim, size=features.shape[1])
    sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=features.shape[1])
    sketched = [np.bincount(bucket, weights=row * sign, minlength=dim) for row in features]
    return np.stack(sketched).astype(np.float32)


def _embedding_inputs(prep: Prepared, vs: VideoSamples, frames: np.ndarray) -> np.ndarray:
    try:
        return vs.inputs_of(frames)
    except KeyError:
        return np.stack(
            [
                frame_input(
                    prep.dataset.read_frame(vs.video, int(f)), vs.face_box, vs.rois, vs.inputs.shape[-1]
                )
                for f in frames
            ]
        )


def run_dataset(prep: Prepared, setup: Setup, *, progress: bool = True) -> DatasetRunResult:
    """LOSO training and per-frame classification of one dataset."""
    videos = list(prep.videos.values())
    subjects = [vs.subject for vs in videos]
    folds = loso_splits(subjects, max_folds=setup.max_folds)
    names = ["+".join(f.held_out) for f in folds]
    by_name = dict(zip(names, folds))
    ckpt_dir = runtime.cache_dir("checkpoints", "lbcnn", prep.name)
    key = _experiment_key(setup, prep)
    limits = postprocess.length_limits(prep.name, prep.dataset.fps)
    n_videos_folds = max(1, len(folds))
    per_fold_tsne = max(1, int(math.ceil(setup.tsne_per_class / n_videos_folds)))

    def make_data(fold_name: str):
        train = [videos[i] for i in by_name[fold_name].train]
        items = balanced_items(train, setup.balance, setup.max_per_class, fold_seed(setup.seed, fold_name))
        return SampleSet(items, setup.train.loss)

    fold_rows, predictions, spotted = [], {}, []
    emb_feats, emb_labels, emb_videos, emb_frames = [], [], [], []
    for result in train_folds(
        names,
        setup.make_model,
        make_data,
        setup.train,
        ckpt_dir,
        key,
        progress=progress,
        desc=f"LBCNN {prep.name}",
    ):
        fold = by_name[result.fold]
        fold_rows.append(
            {
                "fold": result.fold,
                "held_out": list(fold.held_out),
                "checkpoint": str(result.checkpoint),
                "history": result.history,
                "n_train": result.info.get("n_train"),
            }
        )
        model = result.model
        for i in fold.test:
            vs = videos[i]
            grid = _test_grid(vs, setup)
            outs = [
                predict(model, x, batch_size=256, device=setup.device)
                for x in _grid_inputs(prep, vs, grid=grid)
            ]
            scores = _scores(np.concatenate(outs), setup.train.loss)
            classes = scores.argmax(axis=1)
            predictions[vs.video] = {
                "subject": vs.subject,
                "fold": result.fold,
                "grid": grid,
                "classes": classes,
                "scores": scores,
                "n_frames": vs.n_frames,
                "stride": vs.stride,
            }
            found = spot_video(
                classes,
                scores,
                grid,
                vs.n_frames,
                vs.stride,
                limits,
                setup.min_run_length,
                setup.length_rule,
            )
            found.insert(0, "video", vs.video)
            found["subject"], found["fold"] = vs.subject, result.fold
            spotted.append(found)
            rows = _embedding_rows(
                vs, max(1, per_fold_tsne // max(1, len(fold.test))), fold_seed(setup.seed, vs.video)
            )
            if len(rows):
                frames = vs.grid[rows]
                x = _embedding_inputs(prep, vs, frames)
                emb_feats.append(
                    _sketch(predict(model, x, device=setup.device, method="embed"), seed=setup.seed)
                )
                emb_labels.append(vs.truth[frames])
                emb_videos += [vs.video] * len(frames)
                emb_frames.append(frames)
        del model, result
    spotted_df = (
        pd.concat(spotted, ignore_index=True)
        if spotted
        else pd.DataFrame(columns=["video", "onset", "offset", "type", "score", "subject", "fold"])
    )
    truth = prep.dataset.annotations[["subject", "video", "onset", "offset", "type"]]
    if common.is_plumbing(setup):  # a plumbing run scores only the videos it prepared
        truth = truth[truth["video"].isin(prep.videos)]
    truth = truth.reset_index(drop=True)
    embedding = {}
    if emb_feats:
        embedding = {
            "features": np.concatenate(emb_feats),
            "labels": np.concatenate(emb_labels),
            "videos": np.asarray(emb_videos),
            "frames": np.concatenate(emb_frames),
        }
    return DatasetRunResult(
        prep.name, float(prep.dataset.fps), fold_rows, predictions, spotted_df, truth, embedding
    )


def run(prepared: dict[str, Prepared], setup: Setup, *, progress: bool = True) -> RunResult:
    """Train and test every dataset of the setup (LOSO, a checkpoint per fold)."""
    return RunResult(
        setup, {name: run_dataset(prepared[name], setup, progress=progress) for name in setup.datasets}
    )
