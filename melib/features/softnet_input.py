"""SOFTNet's 42x42x3 input: (|u|, |v|, strain) of the eye/brow and mouth regions.

Steps, on one flow field of a face crop with its 68 dlib landmarks (0-based indices,
(x, y) pixel coordinates in the crop):

1. optical strain from the raw flow;
2. head motion removed by subtracting the mean flow of a small patch on the nose
   bridge (landmark 28), then |u| and |v|;
3. both eyes masked to 0 (blinks dominate flow otherwise);
4. the eye/brow block and the mouth block cut out, each resized to 42 wide x 21 high,
   and stacked vertically.

The pixel margins (nose patch, eye margin, block margin) are the paper's values for a
128x128 crop. For any other crop size they are scaled by ``crop_size / 128`` so that
they cover the same part of the face (see :meth:`SoftnetInputSettings.scaled`).

On the blocks: the paper describes three pieces (left eye 21x21, right eye 21x21,
mouth 21x42); the code cuts one block spanning both eyes and resizes it to 42x21.
Resizing a box to 42 wide is the same as resizing each half to 21 wide, so the two
coincide when the split is at the box's centre; we implement the single block.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melib import runtime
from melib.features.cache import map_jobs, write_memmap
from melib.features.flow import FlowSettings, make_flow, optical_strain
from melib.runtime import stable_hash

__all__ = [
    "SoftnetInputSettings",
    "remove_head_motion",
    "softnet_regions",
    "softnet_input",
    "softnet_input_parts",
    "SoftnetFeatureSpec",
    "video_feature_rows",
    "FeatureJob",
    "run_feature_job",
    "compute_features",
]


@dataclass(frozen=True)
class SoftnetInputSettings:
    """Geometry of the SOFTNet input; pixel values refer to a 128x128 crop."""

    crop_size: int = 128
    nose_landmark: int = 28
    nose_half: int = 5  # 11x11 patch: the paper's "five pixels margin"
    eye_margin: int = 15
    block_margin: int = 12
    out_width: int = 42
    block_height: int = 21
    strain_scheme: str = "central"

    def scaled(self) -> dict:
        """Pixel margins for this crop size (rounded, at least 1 where non-zero)."""
        f = self.crop_size / 128.0

        def sc(x: int) -> int:
            return max(1, int(round(x * f))) if x else 0

        return {
            "nose_half": sc(self.nose_half),
            "eye_margin": sc(self.eye_margin),
            "block_margin": sc(self.block_margin),
        }


def remove_head_motion(flow: np.ndarray, landmarks: np.ndarray, index: int = 28, half: int = 5) -> np.ndarray:
    """Subtract the mean flow of the (2*half+1)² patch centred on ``landmarks[index]``.

    The nose bridge barely moves with expressions, so its flow approximates the rigid
    head motion; subtracting it per channel leaves the facial deformation.
    """
    h, w = flow.shape[:2]
    x, y = np.round(landmarks[index]).astype(int)
    r0, r1 = max(0, y - half), min(h, y + half + 1)
    c0, c1 = max(0, x - half), min(w, x + half + 1)
    if r0 >= r1 or c0 >= c1:
        raise ValueError(f"landmark {index} at ({x}, {y}) lies outside the {w}x{h} flow field")
    mean = flow[r0:r1, c0:c1].reshape(-1, flow.shape[2]).mean(axis=0)
    return flow - mean


def softnet_regions(
    landmarks: np.ndarray, shape: tuple[int, int], settings: SoftnetInputSettings | None = None
) -> dict:
    """The per-video geometry: eye mask and the two block boxes (computed once per
    video, since SOFTNet takes landmarks once, on the reference frame).

    ``melib.face`` draws both: the eye polygons grown by the margin (a morphological
    dilation, so the margin is the same in every direction) and SOFTNet's boxes.
    """
    from melib.face import eye_mask, regions

    s = settings or SoftnetInputSettings()
    px = s.scaled()
    boxes = regions(landmarks, px["block_margin"])
    return {
        "eye_mask": eye_mask(shape, landmarks, px["eye_margin"]),
        "eyes": boxes["eyes_brows"],
        "mouth": boxes["mouth"],
    }


def softnet_input_parts(
    flow: np.ndarray,
    landmarks: np.ndarray,
    settings: SoftnetInputSettings | None = None,
    geometry: dict | None = None,
) -> dict:
    """Intermediate maps for display: raw u, v, strain, and the masked |u|, |v|, strain."""
    s = settings or SoftnetInputSettings()
    flow = np.asarray(flow, dtype=np.float32)
    geometry = geometry or softnet_regions(landmarks, flow.shape[:2], s)
    strain = optical_strain(flow[..., 0], flow[..., 1], scheme=s.strain_scheme)
    still = np.abs(remove_head_motion(flow, landmarks, s.nose_landmark, s.scaled()["nose_half"]))
    stack = np.dstack([still[..., 0], still[..., 1], strain])
    stack[geometry["eye_mask"]] = 0.0
    return {
        "u": flow[..., 0],
        "v": flow[..., 1],
        "strain": strain,
        "masked": stack,
        "eye_mask": geometry["eye_mask"],
    }


def softnet_input(
    flow: np.ndarray,
    landmarks: np.ndarray,
    settings: SoftnetInputSettings | None = None,
    geometry: dict | None = None,
) -> np.ndarray:
    """The (42, 42, 3) float32 SOFTNet input (|u|, |v|, strain) for one flow field.

    ``geometry`` (from :func:`softnet_regions`) saves recomputing the mask and boxes for
    every frame of a video. Blocks reaching outside the crop are zero-padded.
    """
    from melib.face import crop

    s = settings or SoftnetInputSettings()
    geometry = geometry or softnet_regions(landmarks, np.shape(flow)[:2], s)
    stack = softnet_input_parts(flow, landmarks, s, geometry)["masked"]
    size = (s.out_width, s.block_height)
    top = crop(stack, geometry["eyes"], size)
    bottom = crop(stack, geometry["mouth"], size)
    return np.vstack([top, bottom]).astype(np.float32)


# --------------------------------------------------------------------------- videos

FEATURE_VERSION = 1  # bump when the extraction code changes what it writes


@dataclass(frozen=True)
class SoftnetFeatureSpec:
    """Everything that determines a video's SOFTNet feature file (its cache key)."""

    k: int
    flow: FlowSettings = FlowSettings()
    geometry: SoftnetInputSettings = SoftnetInputSettings()

    def key(self) -> str:
        return stable_hash(self, FEATURE_VERSION)


def video_feature_rows(
    crops: Iterable[np.ndarray],
    n_frames: int,
    landmarks: np.ndarray,
    spec: SoftnetFeatureSpec,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """SOFTNet inputs of one video: row ``i`` is the flow from frame ``i`` to ``i+k``.

    ``crops`` yields the video's face crops in order (``crop_size`` square, gray or BGR);
    ``landmarks`` are in crop coordinates. Only the last k+1 crops are kept in memory,
    and the rows go straight into ``out`` (e.g. a memory map) of shape
    ``(n_frames - k, 42, 42, 3)``.
    """
    k = int(spec.k)
    n_rows = n_frames - k
    if k < 1 or n_rows < 1:
        raise ValueError(f"k={k} needs a video longer than k frames; this one has {n_frames}")
    shape = (n_rows, 2 * spec.geometry.block_height, spec.geometry.out_width, 3)
    if out is None:
        out = np.zeros(shape, np.float32)
    elif out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    flow = make_flow(spec.flow)
    side = spec.geometry.crop_size
    geometry = softnet_regions(landmarks, (side, side), spec.geometry)
    window: deque = deque(maxlen=k + 1)
    j = -1
    for j, crop in enumerate(crops):
        if j >= n_frames:
            break
        window.append(crop)
        if j >= k:
            out[j - k] = softnet_input(flow(window[0], window[-1]), landmarks, spec.geometry, geometry)
    if len(window) <= k or j < n_frames - 1:
        raise ValueError(f"the crop iterator ended after {j + 1} frames; {n_frames} were expected")
    return out


@dataclass(frozen=True)
class FeatureJob:
    """One video's extraction, picklable for the process pool.

    ``source`` is a zero-argument callable returning ``(n_frames, landmarks, crops)``;
    it runs inside the worker, so frames are decoded where they are used.
    """

    source: Callable[[], tuple]
    spec: SoftnetFeatureSpec
    path: Path


def run_feature_job(job: FeatureJob) -> Path:
    """Compute one video's features unless its file already exists (the cache hit)."""
    if runtime.cache_ok(job.path):
        return job.path
    n_frames, landmarks, crops = job.source()
    shape = (n_frames - job.spec.k, 2 * job.spec.geometry.block_height, job.spec.geometry.out_width, 3)
    with write_memmap(job.path, shape) as mm:
        video_feature_rows(crops, n_frames, landmarks, job.spec, out=mm)
    return job.path


def compute_features(
    jobs: Sequence[FeatureJob], workers: int = 2, progress: bool = True, desc: str = "SOFTNet features"
) -> list[Path]:
    """Fill the missing feature files (in parallel over videos); return every path.

    Cached files are not recomputed and do not occupy a worker: only missing ones are
    submitted, so a fully cached dataset returns at once (its bar starts full).
    """
    todo = [job for job in jobs if not runtime.cache_ok(job.path)]
    map_jobs(run_feature_job, todo, workers=workers, desc=desc, progress=progress, total=len(jobs))
    return [job.path for job in jobs]
