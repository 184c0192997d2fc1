"""DynGeoNet's per-window features of a long video, cached on disk one video at a time.

A window is ``L`` consecutive frames starting at ``start``; its onset is the first
frame and its apex the middle one (``start + L // 2``), as in the paper (Tran et al. 2021, section 4.1).
For every window of a video this module stores:

* ``-dynamic.npy``: (n, 3, S, S) float16, the network input of
  :func:`melib.features.dynamic_image.region_composite` (eye, nose and mouth dynamic
  images, boxes placed by the onset frame's landmarks);
* ``-apex.npy``: (n, S, S) uint8, the apex frame's face crop (the video's reference dlib
  box), the input of the VGG16-on-frames baseline;
* ``-index.npz``: the window starts, the 67-d geometric vectors
  (:func:`melib.features.geometry.geometric_features`, onset vs apex) and the onset
  landmarks. It is written last, so a complete set is one whose index exists.

The files sit under ``cache_dir("features", "dyngeonet", <dataset>, <spec key>)`` and
their names carry the frame folder's stamp, so regenerated frames are never read from an
old cache. A spec with ``max_windows`` (plumbing runs) keeps a block of at most that many
consecutive windows per video (:func:`window_starts`); its files sit in a folder of their
own and their names carry the block's first start. Workers receive a picklable :class:`WindowJob`; this module imports no
PyTorch, which keeps worker start-up short.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melib import face, runtime
from melib.features.cache import safe_name, video_stamp, write_memmap
from melib.features.dynamic_image import region_composite
from melib.features.geometry import geometric_features
from melib.features.video import open_dataset
from melib.runtime import stable_hash

__all__ = ["WindowSpec", "WindowJob", "window_starts", "window_files", "extract_windows", "region_margin"]

CACHE_VERSION = 1


@dataclass(frozen=True)
class WindowSpec:
    """What defines one video's cached window features."""

    length: int
    stride: int
    size: int
    margin: int = 12  # region margin in px for a 128-px face box (scaled with the box)
    variant: str = "bilen"
    layout: str = "tiles"
    normalize: str = "interocular"
    max_windows: int | None = None  # plumbing runs: a block of at most this many windows per video

    def key(self) -> str:
        if self.max_windows is None:  # the key an uncapped spec had before max_windows existed
            fields = {
                f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "max_windows"
            }
            return stable_hash({"__class__": type(self).__name__, **fields}, CACHE_VERSION)
        return stable_hash(self, CACHE_VERSION)


@dataclass(frozen=True)
class WindowJob:
    """Picklable recipe of one video's feature files, for the worker processes."""

    dataset: str
    root: str
    video: str
    spec: WindowSpec
    starts: tuple
    dynamic_path: str
    crops_path: str
    index_path: str


def window_starts(n_frames: int, spec: WindowSpec, anchor: int | None = None) -> np.ndarray:
    """Start frames of a video's windows: every ``spec.stride`` frames, or with
    ``spec.max_windows`` a block of that many consecutive ones whose middle frames are
    centred on ``anchor`` (e.g. a micro-expression's onset, so that the block holds
    positive and negative windows; None: the video's first windows)."""
    # every window [s, s + length - 1] inside the video (as evaluation.postprocess.sliding_windows)
    starts = np.arange(0, max(n_frames - spec.length + 1, 0), spec.stride, dtype=np.int64)
    if spec.max_windows is None or len(starts) <= spec.max_windows:
        return starts
    if anchor is None:
        return starts[: spec.max_windows]
    first = anchor - spec.length // 2 - (spec.max_windows // 2) * spec.stride
    i = int(np.searchsorted(starts, first))
    i = min(max(i, 0), len(starts) - spec.max_windows)
    return starts[i : i + spec.max_windows]


def window_files(ds, video: str, spec: WindowSpec, first: int = 0) -> tuple[Path, Path, Path]:
    """The (dynamic, apex crops, index) files of one video's windows (``first``: the
    first window's start, which names the files of a capped spec's block)."""
    folder = runtime.cache_dir("features", "dyngeonet", ds.name, spec.key())
    stem = f"{safe_name(video)}-{video_stamp(ds, video)}"
    if spec.max_windows is not None:
        stem += f"-from{int(first)}"
    return folder / f"{stem}-dynamic.npy", folder / f"{stem}-apex.npy", folder / f"{stem}-index.npz"


def region_margin(spec: WindowSpec, box: face.Box) -> int:
    """The region margin in pixels for this face box (``spec.margin`` per 128 px)."""
    return max(1, int(round(spec.margin * box.width / 128.0)))


def extract_windows(job: WindowJob) -> str:
    """Compute one video's window features (module level: it runs in worker processes).

    Frames are read once, in order, into a ring buffer of L frames. dlib landmarks are
    predicted (inside the video's reference face box) only on the frames a window needs:
    its first frame (onset, which also places the region boxes) and its middle (apex).
    """
    ds = open_dataset(job.dataset, job.root)
    spec = job.spec
    starts = np.asarray(job.starts, np.int64)
    n_frames = ds.n_frames(job.video)
    if not len(starts):
        raise ValueError(
            f"{job.dataset}/{job.video}: {n_frames} frames is shorter than the window "
            f"L={spec.length}. Fix: pass a smaller L, or leave the video out."
        )
    track = face.track_video(ds, job.video)
    margin = region_margin(spec, track.box)
    half = spec.length // 2
    needed = set(starts.tolist()) | set((starts + half).tolist())
    marks: dict[int, np.ndarray] = {}
    buffer: deque = deque(maxlen=spec.length)
    size = spec.size
    read = 0
    with (
        write_memmap(job.dynamic_path, (len(starts), 3, size, size), np.float16) as dyn,
        write_memmap(job.crops_path, (len(starts), size, size), np.uint8) as crops,
    ):
        nxt = 0
        for index, frame in enumerate(ds.iter_frames(job.video, gray=True)):
            read = index + 1
            buffer.append(frame)
            if index in needed:
                marks[index] = face.landmarks(frame, track.box)
            while nxt < len(starts) and starts[nxt] + spec.length - 1 == index:
                s = int(starts[nxt])
                dyn[nxt] = region_composite(
                    list(buffer), marks[s], size=size, margin=margin, variant=spec.variant, layout=spec.layout
                )
                crops[nxt] = face.crop(buffer[half], track.box, size, gray=True)
                nxt += 1
        if nxt != len(starts):
            raise ValueError(
                f"{job.dataset}/{job.video}: read {read} frames but the windows need "
                f"{int(starts[-1]) + spec.length}; a frame file is missing or unreadable. "
                "Fix: re-extract the video's frames."
            )
    onset = np.stack([marks[int(s)] for s in starts])
    apex = np.stack([marks[int(s) + half] for s in starts])
    geometry = geometric_features(onset, apex, normalize=spec.normalize)
    runtime.save_npz(job.index_path, starts=starts, geometry=geometry, onset_marks=onset.astype(np.float32))
    return job.video
