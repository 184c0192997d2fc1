"""CropNet's inputs: residual-sum images (ARS, RRS) and, for its ablation, flow images.

Everything follows section 3.1 of the CropNet paper (Zhao, Chen & Luo 2021); where an
equation leaves a reading open, the one used here is stated beside the code.

Clip selection (eqs. 1-2), with melib's 0-based frame indices::

    start = onset
    end   = min(onset + 10, offset)   if apex - onset < 10
            min(apex, offset)         otherwise

Key frames (eqs. 3-4)::

    gap = ceil((end - start) / (N_key + 1))
    F   = { min(start + k * gap, end) : k = 1 .. N_key }

F is a *set*: when the clip is shorter than N_key frames several k give ``end`` and
it counts once. With the capped span of 10 frames and N_key = 5 (the paper's
setting) this gives start+2, +4, +6, +8, +10 = end, which matches the paper's
``{..., end}``. ``gap_rule="linspace"`` is an alternative (not the paper's) that
always ends exactly at ``end``.

Residual sums on RGB face crops (uint8, the dlib box of :mod:`melib.face`)::

    diff = sum over f in F of |Q_f - Q_start|          (eq. 6, per pixel and channel)
    ARS  = diff mod 256                                (eq. 5)
    RRS  = (diff - min diff) / (max diff - min diff) * 255   (eq. 7, min and max over
                                                       the whole image, all channels)

Flow images (the Table 4 ablation): Farneback or TV-L1 (:mod:`melib.features.flow`)
from the onset to the apex face crop, drawn as the usual HSV colour code (hue =
direction, value = magnitude scaled to 0..255 by the image's largest magnitude), so
every method yields an RGB uint8 image of the same size. The paper does not say how
it turned flow into a network input; this encoding is our choice.

Each preprocessed image is cached as one ``.npy`` per (clip, settings) under
``cache_dir("features", "cropnet", ...)`` and written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from melib import face, runtime
from melib.features.cache import map_jobs, safe_name
from melib.features.flow import FarnebackSettings, FlowSettings, TVL1Settings, make_flow
from melib.runtime import cache_dir, save_npy, stable_hash

__all__ = [
    "METHODS",
    "ResidualSettings",
    "select_clip",
    "key_frames",
    "residual_diff",
    "absolute_residual_sum",
    "relative_residual_sum",
    "flow_image",
    "preprocess_clip",
    "preprocess_table",
    "load_image",
]

METHODS = ("ars", "rrs", "farneback", "tvl1")
CACHE_VERSION = 1


@dataclass(frozen=True)
class ResidualSettings:
    """How one clip becomes one image.

    ``size`` is the side of the square face crop (the paper's CGPO wants 320).
    ``tvl1_light`` swaps OpenCV's default TV-L1 settings for
    :meth:`TVL1Settings.light` (a CPU-profile shortcut; notebooks say when it is on).
    """

    method: Literal["ars", "rrs", "farneback", "tvl1"] = "ars"
    n_key: int = 5
    short_apex: int = 10
    size: int = 320
    gap_rule: Literal["paper", "linspace"] = "paper"
    tvl1_light: bool = False
    face_upsample: int = 1

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"ResidualSettings.method={self.method!r}: use one of {METHODS}")
        if self.n_key < 1:
            raise ValueError(f"ResidualSettings.n_key={self.n_key}: at least one key frame")
        if self.size < 8:
            raise ValueError(f"ResidualSettings.size={self.size}: too small for a face crop")

    def key(self) -> dict:
        """The fields that change the image (flow settings only matter for flows)."""
        out = {
            "method": self.method,
            "size": self.size,
            "upsample": self.face_upsample,
            "version": CACHE_VERSION,
        }
        if self.method in ("ars", "rrs"):
            out.update(n_key=self.n_key, short_apex=self.short_apex, gap_rule=self.gap_rule)
        else:
            out.update(flow=self.flow_settings().params())
        return out

    def flow_settings(self) -> FlowSettings:
        if self.method == "farneback":
            return FlowSettings(method="farneback", farneback=FarnebackSettings())
        return FlowSettings(method="tvl1", tvl1=TVL1Settings.light() if self.tvl1_light else TVL1Settings())


# --------------------------------------------------------------------------- frame choice


def select_clip(onset: int, apex: int, offset: int, short_apex: int = 10) -> tuple[int, int]:
    """Eqs. 1-2: the inclusive ``(start, end)`` frame range the residual sum uses.

    An apex within ``short_apex`` frames of the onset is too close to show the motion
    trend, so the clip is extended to ``onset + short_apex`` (never past the offset).
    """
    onset, apex, offset = int(onset), int(apex), int(offset)
    if offset < onset:
        raise ValueError(f"select_clip: offset {offset} comes before onset {onset}")
    if apex - onset < short_apex:
        end = min(onset + short_apex, offset)
    else:
        end = min(apex, offset)
    return onset, max(end, onset)


def key_frames(start: int, end: int, n_key: int = 5, rule: str = "paper") -> list[int]:
    """Eqs. 3-4: the key frames of ``[start, end]``, sorted, without repeats.

    ``rule="paper"``: ``gap = ceil((end-start)/(n_key+1))`` and
    ``min(start + k*gap, end)`` for k = 1..n_key. ``rule="linspace"``: n_key frames
    rounded from equal steps that end exactly at ``end``. A zero-length clip gives
    ``[start]`` (its residual sum is then zero).
    """
    start, end = int(start), int(end)
    if end < start:
        raise ValueError(f"key_frames: end {end} comes before start {start}")
    if n_key < 1:
        raise ValueError(f"key_frames: n_key={n_key} must be >= 1")
    if end == start:
        return [start]
    if rule == "paper":
        gap = math.ceil((end - start) / (n_key + 1))
        frames = [min(start + k * gap, end) for k in range(1, n_key + 1)]
    elif rule == "linspace":
        frames = [start + int(round(k * (end - start) / n_key)) for k in range(1, n_key + 1)]
    else:
        raise ValueError(f"key_frames: rule={rule!r}; use 'paper' or 'linspace'")
    return sorted(set(frames))


# --------------------------------------------------------------------------- residual sums


def residual_diff(start_image: np.ndarray, key_images: Sequence[np.ndarray]) -> np.ndarray:
    """Eq. 6: ``sum_f |Q_f - Q_start|`` per pixel and channel, as int64 (no overflow)."""
    ref = np.asarray(start_image).astype(np.int64)
    total = np.zeros_like(ref)
    for image in key_images:
        image = np.asarray(image)
        if image.shape != ref.shape:
            raise ValueError(
                f"residual sum: key frame shape {image.shape} differs from the start "
                f"frame's {ref.shape}; crop every frame with the same box and size"
            )
        total += np.abs(image.astype(np.int64) - ref)
    return total


def absolute_residual_sum(start_image: np.ndarray, key_images: Sequence[np.ndarray]) -> np.ndarray:
    """Eq. 5 (ARS): the residual sum modulo 256, as uint8.

    The wrap-around is the paper's: large sums fold back, so regions that move a lot
    show texture rather than saturating.
    """
    return (residual_diff(start_image, key_images) % 256).astype(np.uint8)


def relative_residual_sum(
    start_image: np.ndarray, key_images: Sequence[np.ndarray], g_min: int = 0, g_max: int = 255
) -> np.ndarray:
    """Eq. 7 (RRS): the residual sum min-max scaled to ``[g_min, g_max]``, rounded to uint8.

    A constant sum (no motion at all) has no range to scale; it maps to ``g_min``.
    """
    diff = residual_diff(start_image, key_images).astype(np.float64)
    lo, hi = float(diff.min()), float(diff.max())
    if hi == lo:
        return np.full(diff.shape, g_min, dtype=np.uint8)
    scaled = (diff - lo) / (hi - lo) * (g_max - g_min) + g_min
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def flow_image(
    onset_image: np.ndarray, apex_image: np.ndarray, settings: FlowSettings | None = None
) -> np.ndarray:
    """Onset→apex optical flow as an HSV colour-coded RGB uint8 image."""
    import cv2

    flow = make_flow(settings)(onset_image, apex_image)
    magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    hsv = np.zeros(flow.shape[:2] + (3,), dtype=np.uint8)
    hsv[..., 0] = (angle * 180 / np.pi / 2).astype(np.uint8)  # OpenCV hue is 0..179
    hsv[..., 1] = 255
    top = float(magnitude.max())
    hsv[..., 2] = 0 if top == 0 else np.clip(magnitude / top * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


# --------------------------------------------------------------------------- clips on disk


def _frames_needed(onset: int, apex: int, offset: int, s: ResidualSettings) -> tuple[int, list[int]]:
    if s.method in ("ars", "rrs"):
        start, end = select_clip(onset, apex, offset, s.short_apex)
        return start, key_frames(start, end, s.n_key, s.gap_rule)
    return int(onset), [int(apex)]


def compute_clip(read_crop, onset: int, apex: int, offset: int, s: ResidualSettings) -> np.ndarray:
    """One clip's image from a face-crop reader ``read_crop(index) -> (size, size, 3)``."""
    start, keys = _frames_needed(onset, apex, offset, s)
    ref = read_crop(start)
    if s.method == "ars":
        return absolute_residual_sum(ref, [read_crop(i) for i in keys])
    if s.method == "rrs":
        return relative_residual_sum(ref, [read_crop(i) for i in keys])
    return flow_image(ref, read_crop(keys[0]), s.flow_settings())


def _clip_stamp(dataset, video: str) -> str:
    # The corpus presets reuse video names, so the frames' folder and file stamps
    # (not the name alone) decide which cached image belongs to which clip.
    paths = dataset.frame_paths(video)
    first = paths[0].stat()
    return stable_hash(str(paths[0].resolve()), len(paths), first.st_size, first.st_mtime_ns)


def cache_path(dataset, row, settings: ResidualSettings) -> Path:
    source = str(row["dataset"]) if "dataset" in row.index else dataset.name
    folder = cache_dir("features", "cropnet", source, stable_hash(settings.key()))
    video = str(row["video"])
    name = f"{safe_name(video)}-{int(row['onset'])}-{int(row['apex'])}-{int(row['offset'])}"
    return folder / f"{name}-{_clip_stamp(dataset, video)}.npy"


def preprocess_clip(dataset, row, settings: ResidualSettings, cache: bool = True) -> np.ndarray:
    """The preprocessed image of one annotation row (cached unless ``cache=False``)."""
    path = cache_path(dataset, row, settings) if cache else None
    if path is not None and runtime.cache_ok(path):
        return runtime.load_npy(path)
    video = str(row["video"])
    track = face.track_video(dataset, video, upsample=settings.face_upsample)

    def read_crop(index: int) -> np.ndarray:
        return face.crop(dataset.read_frame(video, index), track.box, settings.size, gray=False)

    image = compute_clip(read_crop, int(row["onset"]), int(row["apex"]), int(row["offset"]), settings)
    if path is not None:
        save_npy(path, image)
    return image


def preprocess_table(
    dataset, table, settings: ResidualSettings, progress: bool = True, desc: str | None = None
) -> list[Path]:
    """Make sure every row's image is cached; return the cache paths in row order.

    Serial on purpose: each clip costs a few frame reads (plus one flow), and the
    landmark cache of :mod:`melib.face` is shared state best filled by one process.
    """
    rows = [row for _, row in table.iterrows()]

    def one(row) -> Path:
        path = cache_path(dataset, row, settings)
        if not runtime.cache_ok(path):
            preprocess_clip(dataset, row, settings)
        return path

    return map_jobs(one, rows, workers=1, desc=desc or f"{settings.method} images", progress=progress)


def load_image(path: str | Path) -> np.ndarray:
    return runtime.load_npy(path)
