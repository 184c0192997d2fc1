"""Bai's data: the labelled clips, their preprocessed frames (cached per clip, optionally
magnified), the N frames of a sequence, the torch datasets and the LOSO folds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset as TorchDataset

from melib import runtime
from melib.data.datasets import MEGC2019_EMOTION_MAP, load_from_data_root
from melib.evaluation.protocols import loso_splits
from melib.features.cache import safe_name
from melib.pipelines import common
from melib.pipelines.bai.config import PLUMBING_CLIPS_PER_CLASS, Setup
from melib.runtime import stable_hash
from melib.training import progress_bar

__all__ = [
    "Clips",
    "FrameSet",
    "SequenceSet",
    "folds_for",
    "frame_items",
    "frame_level_indices",
    "label_table",
    "plumbing_clips",
    "prepare",
    "read_clip",
    "sequence_indices",
    "to_tensor",
]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass
class Clips:
    """The labelled clips of one dataset and where their preprocessed frames are cached."""

    dataset: object  # melib.data.datasets.Dataset
    table: pd.DataFrame  # standard columns + sample, class, label, length
    classes: tuple
    fps: float
    frames: list = field(default_factory=list)  # per clip: .npy of (length, S, S, 3) uint8
    magnified: bool = False

    @property
    def name(self) -> str:
        """The dataset key (cache folders are per dataset)."""
        return self.dataset.name if self.dataset is not None else "clips"

    def class_counts(self) -> pd.DataFrame:
        counts = self.table.groupby(["subject", "class"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=[c for c in self.classes if c in counts.columns], fill_value=0)
        counts.loc["total"] = counts.sum()
        return counts

    def load(self, i: int) -> np.ndarray:
        """Clip ``i``'s frames, onset to offset, memory-mapped (length, S, S, 3) uint8."""
        return runtime.load_npy(self.frames[i], mmap_mode="r")


def label_table(annotations: pd.DataFrame, dataset: str, classes: str) -> tuple[pd.DataFrame, tuple]:
    """Keep the clips of the chosen classes and number them: SMIC's three classes, or
    CASME II / SAMM mapped to MEGC2019's negative / positive / surprise (``megc2019``),
    or every emotion label as it is (``all``)."""
    table = annotations.copy()
    emotion = table["emotion"].astype(str).str.lower()
    if classes == "megc2019" or dataset == "smic_hs":
        table["class"] = emotion.map(MEGC2019_EMOTION_MAP[dataset])
        names = tuple(c for c in ("negative", "positive", "surprise") if c in set(table["class"].dropna()))
    else:
        table["class"] = emotion
        names = tuple(sorted(set(emotion)))
    table = table[table["class"].notna()].reset_index(drop=True)
    table["label"] = table["class"].map({c: i for i, c in enumerate(names)}).astype(int)
    table["length"] = (table["offset"] - table["onset"] + 1).astype(int)
    return table, names


def plumbing_clips(table: pd.DataFrame, classes: tuple, limit_steps) -> tuple[pd.DataFrame, tuple]:
    """The clips of a plumbing run (``limit_steps`` set; otherwise ``table`` as it is):
    :data:`~melib.pipelines.bai.config.PLUMBING_CLIPS_PER_CLASS` per class from each of
    :data:`common.PLUMBING_MAX_FOLDS` subjects, those with the most classes first (ties in
    table order), so that each fold of leave-one-subject-out trains on every class the
    pair has. The classes are renumbered if a class is left without a clip."""
    if limit_steps is None:
        return table, classes
    coverage = table.groupby("subject", sort=False)["class"].nunique()
    subjects = coverage.sort_values(ascending=False, kind="stable").index[: common.PLUMBING_MAX_FOLDS]
    kept = table[table["subject"].isin(subjects)].groupby(["subject", "class"], sort=False)
    table = table.loc[sorted(kept.head(PLUMBING_CLIPS_PER_CLASS).index)].reset_index(drop=True)
    classes = tuple(c for c in classes if c in set(table["class"]))
    table["label"] = table["class"].map({c: i for i, c in enumerate(classes)}).astype(int)
    return table, classes


def sequence_indices(length: int, n: int) -> np.ndarray:
    """N frame positions from the first (onset) to the last (offset) frame of a clip,
    evenly spaced and rounded; a clip shorter than N repeats frames."""
    if length < 1 or n < 1:
        raise ValueError(f"a clip of {length} frames cannot give {n} frames")
    return np.round(np.linspace(0, length - 1, n)).astype(int)


def frame_level_indices(length: int, n: int, per_clip: int | None) -> np.ndarray:
    """The frames of a clip used at frame level: ``per_clip`` of its N-frame sequence,
    evenly spaced and away from the two ends (onset and offset look neutral), or the
    whole sequence when ``per_clip`` is None."""
    seq = sequence_indices(length, n)
    if per_clip is None or per_clip >= n:
        return seq
    inner = np.round(np.linspace(0, n - 1, per_clip + 2)[1:-1]).astype(int)
    return seq[inner]


def prepare(setup: Setup, *, magnified: bool | None = None, progress: bool = True) -> Clips:
    """Load the dataset's labelled clips and cache each clip's preprocessed frames
    (magnified when ``magnified``, by default when ``setup.magnify``)."""
    root = common.data_root_for(setup)
    ds = load_from_data_root(setup.dataset, root)
    table, names = label_table(ds.annotations, setup.dataset, setup.classes)
    if setup.data_root is None and len(names) < 2 and setup.classes != "all":
        # The tiny synthetic corpus has a handful of clips per dataset; when MEGC2019's
        # mapping leaves one class, the lesson still runs on the raw emotion labels.
        print(
            f"note: the synthetic {common.dataset_label(setup.dataset)} clips fall into {len(names)} "
            "MEGC2019 class(es) here; using every emotion label instead (classes='all')"
        )
        table, names = label_table(ds.annotations, setup.dataset, "all")
    table, names = plumbing_clips(table, names, setup.limit_steps)
    if table.empty or len(names) < 2:
        raise ValueError(
            f"{setup.dataset} under {root}: {len(table)} clips in {len(names)} classes after "
            f"mapping the emotions ({setup.classes!r}); need at least 2 classes. Fix: use "
            "classes='all' or another dataset"
        )
    if table["subject"].nunique() < 2:
        raise ValueError(
            f"{setup.dataset} under {root}: LOSO needs clips from 2 subjects, found "
            f"{table['subject'].nunique()}"
        )
    magnified = setup.magnify if magnified is None else magnified
    clips = Clips(ds, table, names, float(ds.fps), magnified=magnified)
    settings = setup.with_(magnify=magnified)
    clips.frames = cache_frames(clips, settings, progress=progress)
    return clips


def _frame_stamp(dataset, video: str) -> list:
    paths = dataset.frame_paths(video)
    st = paths[-1].stat()
    return [str(paths[0]), len(paths), st.st_size, st.st_mtime_ns]


def cache_frames(clips: Clips, setup: Setup, progress: bool = True) -> list[Path]:
    """One ``.npy`` per clip: its frames onset..offset, preprocessed (and magnified when
    ``setup.magnify``). Written atomically; a rerun reads them back."""
    folder = runtime.cache_dir("features", "bai", clips.name)
    paths = []
    rows = list(clips.table.itertuples())
    for row in progress_bar(rows, desc=f"frames{' + EVM' if setup.magnify else ''}", disable=not progress):
        key = stable_hash(
            setup.frame_key(), int(row.onset), int(row.offset), _frame_stamp(clips.dataset, row.video), "v1"
        )
        path = folder / f"{safe_name(row.sample)}-{key}.npy"
        if not runtime.cache_ok(path):
            frames = read_clip(
                clips.dataset, row.video, int(row.onset), int(row.offset), setup.alignment, setup.input_size
            )
            if setup.magnify:
                from melib.features.magnification import magnify

                frames = magnify(
                    frames, clips.fps, alpha=setup.alpha, low_hz=setup.low_hz, high_hz=setup.high_hz
                )
            runtime.save_npy(path, frames)
        paths.append(path)
    return paths


def read_clip(dataset, video: str, onset: int, offset: int, alignment: str, size: int) -> np.ndarray:
    """Frames onset..offset of a video as (T, size, size, 3) uint8.

    ``none``: the whole frame resized (the proposal drops cropping and alignment);
    ``crop``: the video's dlib reference box; ``align``: the frame rotated so that the
    reference frame's eyes are level, then that box.
    """
    import cv2

    from melib import face

    track = None if alignment == "none" else face.track_video(dataset, video)
    out = np.empty((offset - onset + 1, size, size, 3), np.uint8)
    for t, image in enumerate(dataset.iter_frames(video, onset, offset + 1)):
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        if alignment == "none":
            out[t] = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            continue
        if alignment == "align":
            image, _ = face.align(image, track.landmarks)
        out[t] = face.crop(image, track.box, size)
    return out


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float, ImageNet-normalised."""
    x = (np.asarray(frames, np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, -3)))


class FrameSet(TorchDataset):
    """(frame, label) pairs: ``items`` is a list of (clip, frame position); horizontal
    flips (p 0.5) when ``train``."""

    def __init__(self, clips: Clips, items: list, train: bool = False, seed: int = 0):
        self.clips, self.items, self.train = clips, list(items), train
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int):
        i, t = self.items[k]
        frame = np.array(self.clips.load(i)[t])
        if self.train and self.rng.random() < 0.5:
            frame = frame[:, ::-1]
        return to_tensor(frame), torch.tensor(int(self.clips.table["label"].iat[i]))


class SequenceSet(TorchDataset):
    """(N frames, label) pairs for end-to-end training."""

    def __init__(self, clips: Clips, indices, n_frames: int):
        self.clips, self.indices, self.n = clips, list(indices), n_frames

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = self.indices[k]
        frames = self.clips.load(i)
        seq = np.array(frames[sequence_indices(len(frames), self.n)])
        return to_tensor(seq), torch.tensor(int(self.clips.table["label"].iat[i]))


def frame_items(clips: Clips, indices, n_frames: int, per_clip: int | None) -> list:
    """(clip, frame position) pairs of the given clips' frame-level frames."""
    return [
        (int(i), int(t))
        for i in indices
        for t in frame_level_indices(int(clips.table["length"].iat[i]), n_frames, per_clip)
    ]


# ------------------------------------------------------------------------ folds


def folds_for(clips: Clips, setup: Setup) -> dict:
    """``{fold name: Fold}`` (subject-grouped when the profile caps the folds)."""
    folds = loso_splits(clips.table["subject"], max_folds=setup.max_folds)
    out = {}
    for f in folds:
        name = "+".join(safe_name(h) for h in f.held_out)
        if len(name) > 60:
            name = f"{safe_name(f.held_out[0])}+{len(f.held_out) - 1}more-{stable_hash(f.held_out, length=6)}"
        out[name] = f
    return out
