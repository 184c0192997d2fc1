"""SOFTNet's training samples: one 42x42x3 window per frame, min-max normalised, with
unit-step pseudo-labels, thinned negatives and the micro-expression augmentations
(Liong et al. 2021, section 2.3)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from melib.evaluation.postprocess import pseudo_labels
from melib.features.cache import load_features
from melib.pipelines.softnet.data import Prepared

__all__ = [
    "AUGMENTATIONS",
    "normalise",
    "augment",
    "WindowSet",
    "video_windows",
    "labels_for",
    "training_set",
]

AUGMENTATIONS = ("none", "flip", "blur", "noise")


def normalise(x: np.ndarray) -> np.ndarray:
    """Per-image, per-channel min-max to [0, 1] (a flat channel becomes 0)."""
    x = np.asarray(x, dtype=np.float32)
    lo = x.min(axis=(-3, -2), keepdims=True)
    span = x.max(axis=(-3, -2), keepdims=True) - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def augment(
    x: np.ndarray, kind: str, rng: np.random.Generator | None = None, noise_std: float = 1.0
) -> np.ndarray:
    """One of SOFTNet's micro-expression augmentations on an (H, W, C) input."""
    import cv2

    if kind == "none":
        return x
    if kind == "flip":
        return np.ascontiguousarray(x[:, ::-1])
    if kind == "blur":
        return cv2.GaussianBlur(x, (7, 7), 0)
    if kind == "noise":
        rng = rng or np.random.default_rng()
        return (x + rng.normal(0.0, noise_std, x.shape)).astype(np.float32)
    raise ValueError(f"augmentation {kind!r}: use one of {AUGMENTATIONS}")


class WindowSet(TorchDataset):
    """Training samples read lazily from per-video memory maps.

    Each item is (video file, row, target, augmentation). Normalisation and
    augmentation run per item; the noise of item ``i`` comes from a generator seeded
    by (seed, i), so an epoch's data do not depend on the order items are drawn in.
    """

    def __init__(
        self,
        paths: list,
        rows: np.ndarray,
        file_index: np.ndarray,
        targets: np.ndarray,
        augs: np.ndarray | None = None,
        seed: int = 0,
        noise_std: float = 1.0,
    ):
        self.paths = [str(p) for p in paths]
        self.rows = np.asarray(rows, np.int64)
        self.file_index = np.asarray(file_index, np.int64)
        self.targets = np.asarray(targets, np.float32)
        self.augs = np.zeros(len(self.rows), np.int8) if augs is None else np.asarray(augs, np.int8)
        self.seed = seed
        self.noise_std = noise_std
        self._maps: dict = {}

    def __len__(self) -> int:
        return len(self.rows)

    def _map(self, i: int) -> np.ndarray:
        if i not in self._maps:
            self._maps[i] = load_features(self.paths[i])
        return self._maps[i]

    def input(self, item: int) -> np.ndarray:
        x = np.array(self._map(self.file_index[item])[self.rows[item]], dtype=np.float32)
        aug = AUGMENTATIONS[self.augs[item]]
        rng = np.random.default_rng((self.seed, item)) if aug == "noise" else None
        return normalise(augment(x, aug, rng, self.noise_std))

    def __getitem__(self, item: int):
        x = torch.from_numpy(self.input(item).transpose(2, 0, 1).copy())
        return x, torch.tensor(self.targets[item])


def video_windows(prep: Prepared, video: str, kind: str, rows=None) -> WindowSet:
    """The windows of one video (all, or ``rows``), unaugmented, for scoring."""
    path = prep.paths[(video, kind)]
    rows = np.arange(len(load_features(path))) if rows is None else np.asarray(rows)
    return WindowSet([path], rows, np.zeros(len(rows)), np.zeros(len(rows)))


def labels_for(prep: Prepared, video: str, kind: str, function: str = "unit_step") -> np.ndarray:
    """The pseudo-label of every window of ``video`` for ``kind``."""
    return pseudo_labels(prep.n_frames(video), prep.intervals(video, kind), prep.k[kind], function)


def training_set(
    prep: Prepared,
    videos,
    kind: str,
    function: str,
    negative_keep: float = 0.5,
    negative_sampling: str = "every_other",
    augment_positives: bool = False,
    seed: int = 0,
    noise_std: float = 1.0,
) -> WindowSet:
    """The windows of ``videos`` with pseudo-labels, negatives thinned, positives augmented.

    ``every_other`` keeps negatives whose running count (over each video) is a multiple
    of round(1/negative_keep); ``random`` keeps each with probability ``negative_keep``.
    """
    rng = np.random.default_rng(seed)
    paths, rows, files, targets, augs = [], [], [], [], []
    stride = max(1, int(round(1 / negative_keep))) if negative_keep > 0 else 0
    for fi, video in enumerate(videos):
        paths.append(prep.paths[(video, kind)])
        y = labels_for(prep, video, kind, function)
        neg = np.flatnonzero(y == 0)
        if negative_sampling == "every_other":
            neg = neg[::stride] if stride else neg[:0]
        else:
            neg = neg[rng.random(len(neg)) < negative_keep]
        pos = np.flatnonzero(y > 0)
        keep = np.sort(np.concatenate([pos, neg]))
        rows.append(keep)
        files.append(np.full(len(keep), fi))
        targets.append(y[keep])
        augs.append(np.zeros(len(keep), np.int8))
        if augment_positives and len(pos):
            for code in (1, 2, 3):  # flip, blur, noise: one copy each
                rows.append(pos)
                files.append(np.full(len(pos), fi))
                targets.append(y[pos])
                augs.append(np.full(len(pos), code, np.int8))
    if not rows:
        return WindowSet([], np.zeros(0), np.zeros(0), np.zeros(0))
    return WindowSet(
        paths,
        np.concatenate(rows),
        np.concatenate(files),
        np.concatenate(targets),
        np.concatenate(augs),
        seed=seed,
        noise_std=noise_std,
    )
