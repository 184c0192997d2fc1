"""LBCNN's inputs: labelled frames of long videos, each a face crop plus its four regions.

Frame labels (CONTRIBUTING: 0-based frame indices, inclusive intervals)
    0 neutral, 1 micro, 2 macro (:data:`CLASS_NAMES`). A frame inside an annotated
    interval takes that interval's type; where a micro and a macro interval overlap,
    micro wins (it is the rarer class and the one the paper cares about).

Samples (the paper: "uniformly sample the micro-expression, macro-expression, and
natural images in the long video according to the provided tag file")
    * expression frames: evenly spaced from onset to offset (both ends included), about
      one per ``stride`` frames and at least ``min_expression_samples``;
    * neutral frames: the frames of the video's ``stride`` grid (0, s, 2s, ...) that lie
      at least ``neutral_gap`` frames away from every expression interval, so that
      onsets and offsets, whose label is uncertain, are never trained as neutral;
    * the same grid is what the trained model classifies at test time.

Input of one frame (:func:`frame_input`), a (6, S, S) uint8 array
    * channels 0-2: the RGB face crop, the video's dlib reference box (one box per
      video, from its first frame with a face, :func:`melib.face.track_video`);
    * channels 3-5: the RGB mosaic of the four regions of interest, 2x2 with the
      image-left eyebrow and the image-right eyebrow on top, the nose and the mouth
      below, each resized to S/2 x S/2. The regions come from the reference frame's 68
      landmarks (MDMD, whose face and ROI detection the paper reuses, also fixes them on
      the first frame), grown by ``roi_margin`` pixels per 128 px of face box width.
    The mosaic is our reading of how four regions enter one B-CNN: the paper's Fig. 1
    sends "the regions of interest" through one local BCNN without saying how.

Cache
    One pair of files per (video, settings): ``<video>-<hash>.npy`` holds the inputs of
    every sampled frame (memory-mapped, never loaded whole) and ``<video>-<hash>.npz``
    their frame numbers and labels. The hash covers the settings, the video's intervals
    and the frame folder's stamp. Both are written atomically, the index last, so a file
    pair exists only when complete.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from melib import face, runtime
from melib.features.cache import map_jobs, safe_name, write_memmap
from melib.runtime import stable_hash

__all__ = [
    "CLASS_NAMES",
    "CLASS_INDEX",
    "ROI_NAMES",
    "InputSettings",
    "SamplingSettings",
    "frame_labels",
    "neutral_mask",
    "expression_frames",
    "grid_frames",
    "sample_frames",
    "roi_boxes",
    "roi_mosaic",
    "frame_input",
    "VideoSamples",
    "video_samples",
    "prepare_videos",
]

CLASS_NAMES = ("neutral", "micro", "macro")
CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}
# Names as melib.face gives them (image-left / image-right), in mosaic order.
ROI_NAMES = ("brow_left", "brow_right", "nose", "mouth")
CACHE_VERSION = 1


@dataclass(frozen=True)
class InputSettings:
    """Geometry of one frame's input. ``input_size`` is the paper's 224 in ``full``."""

    input_size: int = 224
    roi_margin: int = 12  # pixels for a 128-px face box; scaled with the box
    face_scale: float = 1.0  # the dlib box grown (>1) or shrunk about its centre


@dataclass(frozen=True)
class SamplingSettings:
    """Which frames of a video are sampled, in frames of that video."""

    stride: int = 1
    neutral_gap: int = 15
    min_expression_samples: int = 3
    cache_grid: bool = True  # also cache the inputs of every grid frame (for testing)


# --------------------------------------------------------------------------- labels


def _intervals(annotations: pd.DataFrame) -> list[tuple[int, int, str]]:
    return [(int(r.onset), int(r.offset), str(r.type)) for r in annotations.itertuples()]


def frame_labels(n_frames: int, annotations: pd.DataFrame) -> np.ndarray:
    """Per-frame class index (0 neutral, 1 micro, 2 macro) from a video's intervals."""
    labels = np.zeros(int(n_frames), dtype=np.int64)
    # macro first, so that micro overwrites where the two overlap
    for kind in ("macro", "micro"):
        for onset, offset, t in _intervals(annotations):
            if t == kind:
                labels[max(onset, 0) : offset + 1] = CLASS_INDEX[kind]
    return labels


def neutral_mask(n_frames: int, annotations: pd.DataFrame, gap: int) -> np.ndarray:
    """True for frames at least ``gap`` frames from every interval (and outside it)."""
    near = np.zeros(int(n_frames), dtype=bool)
    for onset, offset, _ in _intervals(annotations):
        near[max(onset - gap, 0) : max(offset + gap + 1, 0)] = True
    return ~near


def expression_frames(onset: int, offset: int, stride: int = 1, min_count: int = 3) -> np.ndarray:
    """Evenly spaced frames from ``onset`` to ``offset`` inclusive, ends included."""
    if offset < onset:
        raise ValueError(f"expression interval [{onset}, {offset}]: onset after offset")
    length = offset - onset + 1
    count = min(length, max(min_count, (length - 1) // max(stride, 1) + 1))
    return np.unique(np.round(np.linspace(onset, offset, count)).astype(np.int64))


def grid_frames(n_frames: int, stride: int) -> np.ndarray:
    """The frames a video is classified at: 0, s, 2s, ... (each stands for s frames)."""
    if stride < 1:
        raise ValueError(f"sampling stride must be >= 1, got {stride}")
    return np.arange(0, int(n_frames), int(stride), dtype=np.int64)


def sample_frames(n_frames: int, annotations: pd.DataFrame, sampling: SamplingSettings) -> pd.DataFrame:
    """Training samples of one video: ``frame, label, expression`` (row of the interval
    in ``annotations`` for expression frames, -1 for neutral ones), sorted by frame."""
    labels = frame_labels(n_frames, annotations)
    rows = []
    for position, (onset, offset, kind) in enumerate(_intervals(annotations)):
        for f in expression_frames(onset, offset, sampling.stride, sampling.min_expression_samples):
            if labels[f] == CLASS_INDEX[kind]:  # a macro frame that micro overwrote is skipped
                rows.append((int(f), CLASS_INDEX[kind], position))
    grid = grid_frames(n_frames, sampling.stride)
    for f in grid[neutral_mask(n_frames, annotations, sampling.neutral_gap)[grid]]:
        rows.append((int(f), 0, -1))
    table = pd.DataFrame(rows, columns=["frame", "label", "expression"])
    return table.drop_duplicates("frame").sort_values("frame", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- inputs


def roi_boxes(track: face.FaceTrack, settings: InputSettings) -> dict[str, face.Box]:
    """The four regions, in frame coordinates, from the reference landmarks."""
    margin = max(1, int(round(settings.roi_margin * track.box.width / 128.0)))
    boxes = face.regions(track.landmarks, margin)
    return {name: boxes[name] for name in ROI_NAMES}


def roi_mosaic(crops: list[np.ndarray], size: int) -> np.ndarray:
    """2x2 mosaic (size x size) of four region crops, in :data:`ROI_NAMES` order."""
    half, rest = size // 2, size - size // 2
    out = np.zeros((size, size) + crops[0].shape[2:], dtype=crops[0].dtype)
    cells = [(0, 0, half, half), (0, half, half, rest), (half, 0, rest, half), (half, half, rest, rest)]
    import cv2

    for image, (top, left, h, w) in zip(crops, cells):
        out[top : top + h, left : left + w] = cv2.resize(
            image, (w, h), interpolation=cv2.INTER_AREA if image.shape[1] > w else cv2.INTER_LINEAR
        )
    return out


def frame_input(image: np.ndarray, face_box: face.Box, rois: dict[str, face.Box], size: int) -> np.ndarray:
    """(6, size, size) uint8: the RGB face crop, then the RGB region mosaic."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    glob = face.crop(image, face_box, size)
    mosaic = roi_mosaic([face.crop(image, rois[name], None) for name in ROI_NAMES], size)
    return np.concatenate([glob, mosaic], axis=2).transpose(2, 0, 1).copy()


# --------------------------------------------------------------------------- per video


@dataclass
class VideoSamples:
    """One video's cached inputs: ``inputs[i]`` is the input of ``frames[i]``.

    ``samples`` lists the training samples (``frame, label, expression``); ``grid`` the
    frames classified at test time; ``inputs`` is a read-only memory map; ``truth`` the
    class of every frame of the video.
    """

    dataset: str
    subject: str
    video: str
    n_frames: int
    fps: float
    frames: np.ndarray
    inputs: np.ndarray
    samples: pd.DataFrame
    grid: np.ndarray
    stride: int
    face_box: face.Box
    rois: dict
    truth: np.ndarray  # class of every frame of the video (frame_labels)

    def rows(self, frames) -> np.ndarray:
        """Positions in ``inputs`` of the given frame numbers (all must be cached)."""
        frames = np.asarray(frames, dtype=np.int64)
        pos = np.searchsorted(self.frames, frames)
        bad = (pos >= len(self.frames)) | (self.frames[np.minimum(pos, len(self.frames) - 1)] != frames)
        if bad.any():
            raise KeyError(
                f"{self.video}: frame {int(frames[bad][0])} is not cached; rebuild "
                "the samples with cache_grid=True or read it with frame_input"
            )
        return pos

    def inputs_of(self, frames) -> np.ndarray:
        return np.asarray(self.inputs[self.rows(frames)])


def _frame_stamp(dataset, video: str) -> list[str]:
    paths = dataset.frame_paths(video)
    stamp = [str(paths[0].resolve()), str(len(paths))]
    for p in (paths[0], paths[-1]):
        st = p.stat()
        stamp += [str(st.st_size), str(st.st_mtime_ns)]
    return stamp


def _cache_files(dataset, video: str, annotations, settings, sampling) -> tuple[Path, Path]:
    key = stable_hash(
        asdict(settings),
        asdict(sampling),
        _intervals(annotations),
        _frame_stamp(dataset, video),
        CACHE_VERSION,
        length=16,
    )
    folder = runtime.cache_dir("features", "lbcnn", dataset.name)
    stem = f"{safe_name(video)}-{key}"
    return folder / f"{stem}.npy", folder / f"{stem}.npz"


def video_samples(
    dataset,
    video: str,
    settings: InputSettings,
    sampling: SamplingSettings,
    track: face.FaceTrack | None = None,
) -> VideoSamples:
    """Sample one video and cache its inputs (or read them from the cache)."""
    annotations = dataset.video_annotations(video)
    n_frames = dataset.n_frames(video)
    data_path, index_path = _cache_files(dataset, video, annotations, settings, sampling)
    track = track or face.track_video(dataset, video)
    face_box = track.box.scaled(settings.face_scale) if settings.face_scale != 1.0 else track.box
    rois = roi_boxes(track, settings)
    samples = sample_frames(n_frames, annotations, sampling)
    grid = grid_frames(n_frames, sampling.stride)
    if not (runtime.cache_ok(index_path) and runtime.cache_ok(data_path)):
        wanted = samples["frame"].to_numpy()
        if sampling.cache_grid:
            wanted = np.union1d(wanted, grid)
        wanted = np.unique(wanted)
        size = settings.input_size
        with write_memmap(data_path, (len(wanted), 6, size, size), np.uint8) as mm:
            for row, f in enumerate(wanted):
                mm[row] = frame_input(dataset.read_frame(video, int(f)), face_box, rois, size)
        runtime.save_npz(index_path, frames=wanted)
    frames = runtime.load_npz(index_path)["frames"]
    row = dataset.videos[dataset.videos["video"] == video].iloc[0]
    out = VideoSamples(
        dataset=dataset.name,
        subject=str(row["subject"]),
        video=video,
        n_frames=n_frames,
        fps=float(row["fps"]),
        frames=frames,
        inputs=runtime.load_npy(data_path, mmap_mode="r"),
        samples=samples,
        grid=grid,
        stride=sampling.stride,
        face_box=face_box,
        rois=rois,
        truth=frame_labels(n_frames, annotations),
    )
    return out


def _prepare_job(job) -> str:
    dataset, video, settings, sampling = job
    video_samples(dataset, video, settings, sampling)
    return video


def prepare_videos(
    dataset,
    settings: InputSettings,
    sampling: SamplingSettings,
    videos=None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, VideoSamples]:
    """:func:`video_samples` for every video (or ``videos``), filling the cache first.

    Videos that have annotations but no detectable face fail with the video's name.
    """
    videos = list(dataset.videos["video"] if videos is None else videos)
    map_jobs(
        _prepare_job,
        [(dataset, v, settings, sampling) for v in videos],
        workers=workers,
        desc=f"LBCNN inputs {dataset.name}",
        progress=progress,
    )
    return {v: video_samples(dataset, v, settings, sampling) for v in videos}
