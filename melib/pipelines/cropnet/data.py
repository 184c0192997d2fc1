"""CropNet's data: the two protocols as labelled tables, one preprocessed image per clip
(cached), and the PyTorch dataset with the paper's augmentations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset as TorchDataset

from melib.data.datasets import load_from_data_root
from melib.features.residual_sums import load_image, preprocess_table
from melib.pipelines import common
from melib.pipelines.cropnet.config import CLASSES, IMAGENET_MEAN, IMAGENET_STD, METHOD_LABELS, Setup

__all__ = [
    "ProtocolData",
    "load_protocol",
    "plumbing_clips",
    "prepare_images",
    "clip_frames",
    "augmentation",
    "ImageSet",
    "denormalise",
]


@dataclass
class ProtocolData:
    """One protocol's clips: the loaded dataset and a table with an integer ``label``."""

    protocol: str
    dataset: object
    table: pd.DataFrame  # standard columns + class, label, fold_key
    classes: tuple

    def class_counts(self) -> pd.DataFrame:
        counts = self.table.groupby(["dataset", "class"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=[c for c in self.classes if c in counts.columns])
        counts.index = [common.dataset_label(i) for i in counts.index]
        counts["subjects"] = self.table.groupby("dataset")["fold_key"].nunique().to_numpy()
        counts.loc["total"] = counts.sum()
        return counts


def load_protocol(setup: Setup, protocol: str | None = None) -> ProtocolData:
    """``casme2_5class``: CASME II's others/disgust/happiness/repression/surprise clips;
    ``megc2019``: the composite's negative/positive/surprise clips."""
    protocol = protocol or setup.protocol
    root = common.data_root_for(setup)
    if protocol == "casme2_5class":
        ds = load_from_data_root("casme2", root)
        table = ds.annotations.copy()
        table["class"] = table["emotion"].str.lower()
        table = table[table["class"].isin(CLASSES[protocol])]
        table["fold_key"] = table["subject"].astype(str)
    else:
        ds = load_from_data_root("megc2019", root)
        table = ds.annotations.copy()
        table["class"] = table["emotion"]
        table["fold_key"] = table["dataset"].astype(str) + "/" + table["subject"].astype(str)
    classes = CLASSES[protocol]
    table = plumbing_clips(table.reset_index(drop=True), setup.limit_steps)
    table["label"] = table["class"].map({c: i for i, c in enumerate(classes)}).astype(int)
    if table["fold_key"].nunique() < 2:
        raise ValueError(
            f"{protocol}: LOSO needs clips from at least 2 subjects in {root}, found "
            f"{table['fold_key'].nunique()}"
        )
    return ProtocolData(protocol, ds, table, classes)


def plumbing_clips(table: pd.DataFrame, limit_steps) -> pd.DataFrame:
    """For a plumbing run (``limit_steps`` set): at most ``PLUMBING_CLIPS_PER_CLASS`` (2)
    clips per dataset and class, from distinct subjects first (``common.plumbing_videos``
    applied to each class), in table order; ``table`` itself otherwise."""
    if limit_steps is None:
        return table
    kept = [
        common.plumbing_videos(group, limit_steps, subject="fold_key").index
        for _, group in table.groupby(["dataset", "class"], sort=False)
    ]
    chosen = sorted(i for index in kept for i in index)
    return table.loc[chosen].reset_index(drop=True)


def prepare_images(
    data: ProtocolData,
    setup: Setup,
    method: str | None = None,
    n_key: int | None = None,
    progress: bool = True,
) -> list[Path]:
    """Cache paths of one preprocessed image per clip (computed where missing)."""
    settings = setup.image_settings(method, n_key)
    return preprocess_table(
        data.dataset,
        data.table,
        settings,
        progress=progress,
        desc=f"{METHOD_LABELS[settings.method]} images ({data.protocol})",
    )


def clip_frames(data: ProtocolData, setup: Setup, index: int) -> dict:
    """The start and the last key frame of one clip (face crops), for figures."""
    from melib import face
    from melib.features.residual_sums import key_frames, select_clip

    row = data.table.iloc[index]
    video = str(row["video"])
    track = face.track_video(data.dataset, video)
    start, end = select_clip(row["onset"], row["apex"], row["offset"])
    keys = key_frames(start, end, setup.n_key)

    def read(i):
        return face.crop(data.dataset.read_frame(video, i), track.box, setup.input_size, gray=False)

    return {f"start (frame {start})": read(start), f"last key frame ({keys[-1]})": read(keys[-1])}


def augmentation():
    """The paper's four augmentations, in its order (section 3.2.1)."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.ColorJitter(
                brightness=(0.2, 1.8), contrast=(0.2, 1.8), saturation=(0.2, 1.8), hue=(-0.5, 0.5)
            ),
            v2.RandomGrayscale(p=0.2),
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomRotation(degrees=15),
        ]
    )


class ImageSet(TorchDataset):
    """(image, label) pairs read from the per-clip cache; augmented when ``train``."""

    def __init__(self, paths, labels, train: bool = False):
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = augmentation() if train else None
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(load_image(self.paths[i]))).permute(2, 0, 1)
        if self.transform is not None:
            x = self.transform(x)
        return (x.float() / 255 - self.mean) / self.std

    def __getitem__(self, i: int):
        return self.image(i), torch.tensor(self.labels[i])


def denormalise(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) network input → (H, W, 3) float image in [0, 1] for display."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
