"""Windows and their cached features (:func:`prepare`), and the PyTorch datasets the
networks train on (:func:`training_set`, :func:`video_windows`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset as TorchDataset

from melib import runtime
from melib.evaluation.postprocess import window_labels
from melib.features.cache import load_features, map_jobs
from melib.features.dyngeonet_windows import (
    WindowJob,
    WindowSpec,
    extract_windows,
    window_files,
    window_starts,
)
from melib.features.video import open_dataset
from melib.pipelines import common
from melib.pipelines.dyngeonet.config import PAPER_L, Setup

__all__ = [
    "VideoWindows",
    "Prepared",
    "prepare",
    "corpus_table",
    "geometry_stats",
    "WindowSet",
    "training_set",
    "video_windows",
]


@dataclass
class VideoWindows:
    """One video's windows: starts, labels and the cached features (memory maps)."""

    video: str
    subject: str
    n_frames: int
    starts: np.ndarray
    labels: np.ndarray  # 1: positive window (micro-expression), 0: not
    geometry: np.ndarray  # (n, 67)
    dynamic: np.ndarray  # (n, 3, S, S) float16 memory map
    apex_crops: np.ndarray  # (n, S, S) uint8 memory map
    stamp: str  # the cache file name (carries the frame stamp and the spec)
    index_path: Path | None = None  # the cached index (starts, geometry, onset landmarks)


@dataclass
class Prepared:
    """One dataset cut into windows, with ground truth and cached features."""

    name: str
    dataset: object
    root: Path
    length: int
    stride: int
    videos: pd.DataFrame  # subject, video, n_frames
    gt: pd.DataFrame  # standard annotations of these videos (micro and macro)
    windows: dict  # video -> VideoWindows
    spec: WindowSpec

    @property
    def subjects(self) -> list[str]:
        return sorted(self.videos["subject"].unique())

    def micro(self, video: str) -> np.ndarray:
        g = self.gt[(self.gt["video"] == video) & (self.gt["type"] == "micro")]
        return g[["onset", "offset"]].to_numpy(dtype=np.int64)

    def videos_of(self, subjects) -> list[str]:
        return list(self.videos.loc[self.videos["subject"].isin(list(subjects)), "video"])


def prepare(setup: Setup, *, progress: bool = True) -> dict:
    """Load each dataset, cut windows and extract (or read back) their features.

    Returns ``{dataset: Prepared}``. Only videos whose files are missing are computed,
    in ``setup.workers`` processes, longest videos first. A plumbing run keeps at most
    two videos per dataset (``common.plumbing_videos``) and a block of windows per video
    (:func:`melib.features.dyngeonet_windows.window_starts`).
    """
    root = common.data_root_for(setup)
    opened, files, jobs, total = {}, {}, [], 0
    for name in setup.datasets:
        ds = opened[name] = open_dataset(name, str(root / name))
        spec = setup.spec(name)
        for video in _videos(ds, setup)["video"]:
            total += 1
            starts = window_starts(ds.n_frames(video), spec, _anchor(ds, video, spec))
            files[(name, video)] = window_files(ds, video, spec, first=starts[0] if len(starts) else 0)
            if not all(runtime.cache_ok(p) for p in files[(name, video)]):
                jobs.append(
                    WindowJob(
                        name,
                        str(root / name),
                        video,
                        spec,
                        tuple(starts.tolist()),
                        *(str(p) for p in files[(name, video)]),
                    )
                )
    jobs.sort(key=lambda j: -len(j.starts) * j.spec.length)
    map_jobs(
        extract_windows, jobs, workers=setup.workers, progress=progress, total=total, desc="window features"
    )
    return {name: _prepared(opened[name], root / name, setup, files) for name in setup.datasets}


def _videos(ds, setup: Setup) -> pd.DataFrame:
    """The dataset's videos: every one, or at most two (distinct subjects first) in a plumbing run."""
    return common.plumbing_videos(ds.videos, setup.limit_steps)


def _anchor(ds, video: str, spec: WindowSpec) -> int | None:
    """Where a capped spec centres a video's block of windows: the onset of its first
    micro-expression (positive and negative windows), else of its first expression."""
    if spec.max_windows is None:
        return None
    gt = ds.annotations[ds.annotations["video"] == video].sort_values("onset")
    for rows in (gt[gt["type"] == "micro"], gt):
        if len(rows):
            return int(rows["onset"].iloc[0])
    return None


def _prepared(ds, root: Path, setup: Setup, files: dict) -> Prepared:
    spec = setup.spec(ds.name)
    videos = (
        _videos(ds, setup)[["subject", "video", "n_frames"]]
        .sort_values(["subject", "video"])
        .reset_index(drop=True)
    )
    gt = ds.annotations[ds.annotations["video"].isin(videos["video"])].reset_index(drop=True)
    prep = Prepared(
        name=ds.name,
        dataset=ds,
        root=root,
        length=spec.length,
        stride=spec.stride,
        videos=videos,
        gt=gt,
        windows={},
        spec=spec,
    )
    for subject, video, n_frames in videos.itertuples(index=False):
        dyn_path, crops_path, index_path = files[(ds.name, video)]
        index = runtime.load_npz(index_path)
        starts, geometry = index["starts"], index["geometry"]
        labels = window_labels(
            starts, spec.length, prep.micro(video), rule=setup.positive_rule, iou_threshold=setup.positive_iou
        )
        prep.windows[video] = VideoWindows(
            video=video,
            subject=str(subject),
            n_frames=int(n_frames),
            starts=starts,
            labels=labels,
            geometry=geometry,
            dynamic=load_features(dyn_path),
            apex_crops=load_features(crops_path),
            stamp=dyn_path.name,
            index_path=index_path,
        )
    return prep


def corpus_table(prepared: dict) -> pd.DataFrame:
    """Subjects, videos, frames, expressions and windows of each prepared dataset."""
    rows = []
    for name, prep in prepared.items():
        labels = np.concatenate([w.labels for w in prep.windows.values()])
        rows.append(
            {
                **common.corpus_row(name, prep),
                "L (ours)": prep.length,
                "L (paper)": PAPER_L.get(name),
                "stride": prep.stride,
                "windows": len(labels),
                "positive windows": int(labels.sum()),
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


# ---------------------------------------------------------------------- training data


def geometry_stats(sources: list[VideoWindows]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the 67 geometric values over the given (training) videos."""
    geo = np.concatenate([w.geometry for w in sources]).astype(np.float64)
    mean, std = geo.mean(axis=0), geo.std(axis=0)
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


class WindowSet(TorchDataset):
    """Windows read lazily from the per-video memory maps.

    ``mode="packed"``: one flat tensor ``[dynamic image (3*S*S), standardised geometry
    (67)]``, the packing :class:`melib.models.dyngeonet.DynGeoNet` reads; ``mode="frames"``: the apex
    face crop in [0, 1] on 3 channels, for the VGG16-on-frames baseline.
    """

    def __init__(
        self,
        sources: list[VideoWindows],
        file_index,
        rows,
        targets,
        mode: str = "packed",
        geo_mean=None,
        geo_std=None,
    ):
        if mode not in ("packed", "frames"):
            raise ValueError(f"mode={mode!r}: use 'packed' or 'frames'")
        self.sources = sources
        self.file_index = np.asarray(file_index, np.int64)
        self.rows = np.asarray(rows, np.int64)
        self.targets = np.asarray(targets, np.float32)
        self.mode = mode
        self.geo_mean = geo_mean
        self.geo_std = geo_std

    def __len__(self) -> int:
        return len(self.rows)

    def input(self, item: int) -> np.ndarray:
        src = self.sources[self.file_index[item]]
        row = self.rows[item]
        if self.mode == "frames":
            crop = np.asarray(src.apex_crops[row], np.float32) / 255.0
            return np.repeat(crop[None], 3, axis=0)
        dyn = np.asarray(src.dynamic[row], np.float32).ravel()
        geo = (src.geometry[row] - self.geo_mean) / self.geo_std
        return np.concatenate([dyn, geo.astype(np.float32)])

    def __getitem__(self, item: int):
        return torch.from_numpy(self.input(item)), torch.tensor(self.targets[item])


def training_set(
    sources: list[VideoWindows],
    negatives_per_positive: float | None,
    seed: int,
    mode: str = "packed",
    stats=None,
    min_negatives: int = 32,
) -> WindowSet:
    """Every positive window of ``sources`` and negatives drawn at random (all of them
    when ``negatives_per_positive`` is None), at least ``min_negatives`` of them."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([w.labels for w in sources])
    files = np.concatenate([np.full(len(w.labels), i) for i, w in enumerate(sources)])
    rows = np.concatenate([np.arange(len(w.labels)) for w in sources])
    pos = np.flatnonzero(labels > 0)
    neg = np.flatnonzero(labels == 0)
    if negatives_per_positive is not None:
        n_neg = min(len(neg), max(int(round(negatives_per_positive * len(pos))), min_negatives))
        neg = np.sort(rng.choice(neg, size=n_neg, replace=False))
    keep = np.sort(np.concatenate([pos, neg]))
    mean, std = stats if stats is not None else geometry_stats(sources)
    return WindowSet(sources, files[keep], rows[keep], labels[keep], mode, mean, std)


def video_windows(sources: VideoWindows, mode: str, stats) -> WindowSet:
    """All windows of one video, in order, for scoring."""
    n = len(sources.labels)
    return WindowSet([sources], np.zeros(n), np.arange(n), sources.labels, mode, *stats)
