"""Face pipeline: dlib HOG detection, 68 landmarks, crops, eye alignment and regions.

Landmarks are dlib's 68-point (iBUG 300-W) scheme, **0-based**: 0-16 jaw, 17-21 and
22-26 the eyebrows, 27-30 the nose bridge (28 is the point SOFTNet uses to remove head
motion), 31-35 the nostrils, 36-41 and 42-47 the eyes, 48-67 the mouth. Coordinates are
``(x, y)`` pixels in the frame. Region names say the side **as seen in the image**:
``brow_left`` is 17-21 (the subject's right eyebrow).

As in SOFTNet, one reference box per video is reused for every frame, so the crop does
not jitter with the detector. The box comes from the first frame that has a face.
Images are RGB (H, W, 3) or gray (H, W) uint8, as :mod:`melib.data.datasets` returns them.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from melib import runtime

N_LANDMARKS = 68
NOSE_BRIDGE = 28
LANDMARK_GROUPS = {
    "jaw": tuple(range(0, 17)),
    "brow_left": tuple(range(17, 22)),
    "brow_right": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose": tuple(range(27, 36)),
    "eye_left": tuple(range(36, 42)),
    "eye_right": tuple(range(42, 48)),
    "mouth": tuple(range(48, 68)),
}
REGION_NAMES = ("eyes_brows", "mouth", "nose", "brow_left", "brow_right", "eye_left", "eye_right")
CACHE_VERSION = 1


class NoFaceError(ValueError):
    """No frame of a video (or an image) has a detectable face."""


@dataclass(frozen=True)
class Box:
    """A pixel rectangle; ``right`` and ``bottom`` are exclusive, so it slices directly."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def clip(self, shape: tuple[int, ...]) -> Box:
        h, w = shape[:2]
        return Box(max(0, self.left), max(0, self.top), min(w, self.right), min(h, self.bottom))

    def scaled(self, factor: float) -> Box:
        """The box grown (factor > 1) or shrunk about its centre."""
        cx, cy = (self.left + self.right) / 2, (self.top + self.bottom) / 2
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return Box(int(round(cx - hw)), int(round(cy - hh)), int(round(cx + hw)), int(round(cy + hh)))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)


# --------------------------------------------------------------------------- dlib


@functools.lru_cache(maxsize=1)
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def _predictor():
    import dlib

    return dlib.shape_predictor(str(runtime.dlib_landmark_model_path()))


def _dlib_image(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 image, got {image.dtype}; convert with np.clip(x, 0, 255).astype(np.uint8)"
        )
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def detect_faces(image: np.ndarray, upsample: int = 1) -> list[tuple[Box, float]]:
    """All faces found by dlib's HOG detector, best score first."""
    rects, scores, _ = _detector().run(_dlib_image(image), upsample, 0.0)
    found = [(Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s)) for r, s in zip(rects, scores)]
    return sorted(found, key=lambda bs: -bs[1])


def detect_face(image: np.ndarray, upsample: int = 1) -> Box | None:
    """The highest-scoring face, or None. (Badges and logos sometimes score too.)"""
    found = detect_faces(image, upsample)
    return found[0][0] if found else None


def landmarks(image: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 68 landmarks inside ``box``, as a (68, 2) float32 array of (x, y)."""
    import dlib

    rect = dlib.rectangle(int(box.left), int(box.top), int(box.right) - 1, int(box.bottom) - 1)
    shape = _predictor()(_dlib_image(image), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


# --------------------------------------------------------------------------- reference box


def reference_box(
    frames: Iterable[np.ndarray], video: str = "video", upsample: int = 1, max_frames: int | None = None
) -> tuple[int, Box]:
    """The first frame with a face and its box: ``(index, box)``.

    Warns when that frame is not the first (SOFTNet's code would keep a stale box), and
    raises :class:`NoFaceError` naming ``video`` when no frame (of the first
    ``max_frames``) has one.
    """
    n_seen = 0
    for index, image in enumerate(frames):
        if max_frames is not None and index >= max_frames:
            break
        n_seen += 1
        box = detect_face(image, upsample)
        if box is not None:
            if index > 0:
                warnings.warn(
                    f"{video}: no face in frames 0..{index - 1}; the reference box comes from frame {index}",
                    stacklevel=2,
                )
            return index, box
    raise NoFaceError(
        f"{video}: dlib found no face in any of its {n_seen} frames searched. "
        "Fix: check that the frames show a frontal face (or raise upsample), "
        "or leave this video out."
    )


# --------------------------------------------------------------------------- crops, alignment


def crop(
    image: np.ndarray, box: Box, size: int | tuple[int, int] | None = 128, gray: bool = False
) -> np.ndarray:
    """Cut ``box`` out of the image (zero padding where it leaves the frame), then resize.

    ``size`` is an int (square) or ``(width, height)``; None keeps the box's size.
    """
    if gray and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = image.shape[:2]
    out = np.zeros((box.height, box.width) + image.shape[2:], dtype=image.dtype)
    inner = box.clip(image.shape)
    if inner.width > 0 and inner.height > 0:
        out[inner.top - box.top : inner.bottom - box.top, inner.left - box.left : inner.right - box.left] = (
            image[inner.slices()]
        )
    if size is None:
        return out
    wh = (size, size) if isinstance(size, int) else tuple(size)
    shrink = wh[0] < box.width
    return cv2.resize(out, wh, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def points_to_crop(points: np.ndarray, box: Box, size: int | tuple[int, int] | None = 128) -> np.ndarray:
    """Map frame coordinates into the coordinates of ``crop(image, box, size)``."""
    wh = (box.width, box.height) if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    scale = np.array([wh[0] / box.width, wh[1] / box.height], dtype=np.float32)
    return (np.asarray(points, np.float32) - [box.left, box.top]) * scale


def eye_centers(marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the image-left (36-41) and image-right (42-47) eyes."""
    marks = np.asarray(marks, np.float32)
    return marks[36:42].mean(axis=0), marks[42:48].mean(axis=0)


def alignment_matrix(
    marks: np.ndarray, eye_distance: float | None = None, center: tuple[float, float] | None = None
) -> np.ndarray:
    """2x3 affine that levels the eyes (rotation about their midpoint).

    With ``eye_distance`` it also scales so the eye centres end that far apart, and with
    ``center`` it moves their midpoint there (for a fixed output frame).
    """
    left, right = eye_centers(marks)
    dx, dy = right - left
    angle = np.degrees(np.arctan2(dy, dx))
    scale = 1.0 if eye_distance is None else eye_distance / max(float(np.hypot(dx, dy)), 1e-6)
    mid = (left + right) / 2
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), float(angle), scale)
    if center is not None:
        m[:, 2] += np.asarray(center, np.float64) - mid
    return m


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align(
    image: np.ndarray,
    marks: np.ndarray,
    eye_distance: float | None = None,
    center: tuple[float, float] | None = None,
    output_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate (and optionally scale/shift) the image so the eyes are level.

    Returns ``(aligned_image, matrix)``; move landmarks with :func:`transform_points`.
    """
    m = alignment_matrix(marks, eye_distance, center)
    h, w = output_shape if output_shape is not None else image.shape[:2]
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, m


# --------------------------------------------------------------------------- regions


def _hull(marks: np.ndarray, idx, margin: int) -> Box:
    pts = marks[list(idx)]
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    return Box(x0 - margin, y0 - margin, x1 + margin + 1, y1 + margin + 1)


def regions(marks: np.ndarray, margin: int = 12) -> dict[str, Box]:
    """The regions the papers crop, as boxes in the landmarks' coordinates.

    ``eyes_brows`` and ``mouth`` follow SOFTNet: rows min(y19, y24)-m .. max(y41, y46)+m
    and columns x17-m .. x26+m; columns x60-m .. x64+m and rows y50-m .. y57+m. The nose
    (27-35), each eyebrow and each eye are their landmarks' bounds grown by ``margin``.
    Boxes may reach outside the image; :func:`crop` pads them.
    """
    p = np.asarray(marks, np.float32)
    if p.shape != (N_LANDMARKS, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {p.shape}")
    r = lambda v: int(round(float(v)))  # noqa: E731 - local shorthand for pixel rounding
    out = {
        "eyes_brows": Box(
            r(p[17, 0]) - margin,
            r(min(p[19, 1], p[24, 1])) - margin,
            r(p[26, 0]) + margin + 1,
            r(max(p[41, 1], p[46, 1])) + margin + 1,
        ),
        "mouth": Box(
            r(p[60, 0]) - margin, r(p[50, 1]) - margin, r(p[64, 0]) + margin + 1, r(p[57, 1]) + margin + 1
        ),
    }
    for name in ("nose", "brow_left", "brow_right", "eye_left", "eye_right"):
        out[name] = _hull(p, LANDMARK_GROUPS[name], margin)
    return out


def region_crops(
    image: np.ndarray,
    marks: np.ndarray,
    margin: int = 12,
    size: int | tuple[int, int] | None = None,
    names: Iterable[str] = REGION_NAMES,
) -> dict[str, np.ndarray]:
    boxes = regions(marks, margin)
    return {n: crop(image, boxes[n], size) for n in names}


def eye_mask(shape: tuple[int, ...], marks: np.ndarray, grow: int = 15) -> np.ndarray:
    """Boolean mask of both eye polygons (36-41, 42-47) grown by ``grow`` pixels.

    SOFTNet zeroes this area so blinks do not read as expressions.
    """
    mask = np.zeros(shape[:2], np.uint8)
    p = np.round(np.asarray(marks, np.float32)).astype(np.int32)
    for idx in (LANDMARK_GROUPS["eye_left"], LANDMARK_GROUPS["eye_right"]):
        cv2.fillPoly(mask, [p[list(idx)]], 1)
    if grow > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        mask = cv2.dilate(mask, kernel)
    return mask.astype(bool)


# --------------------------------------------------------------------------- videos


@dataclass
class FaceTrack:
    """One video's face geometry.

    ``box`` (from frame ``ref_index``) is reused for every frame; ``landmarks`` are on
    that frame; ``per_frame`` is (T, 68, 2) predicted inside the same box, or None.
    """

    video: str
    n_frames: int
    frame_shape: tuple[int, ...]
    ref_index: int
    box: Box
    landmarks: np.ndarray
    per_frame: np.ndarray | None = None

    def regions(self, margin: int = 12) -> dict[str, Box]:
        return regions(self.landmarks, margin)

    def landmarks_in_crop(self, size: int | tuple[int, int] | None = 128) -> np.ndarray:
        return points_to_crop(self.landmarks, self.box, size)


def track_frames(
    read: Callable[[int], np.ndarray],
    n_frames: int,
    video: str = "video",
    per_frame: bool = False,
    upsample: int = 1,
    max_search: int | None = None,
) -> FaceTrack:
    """Build a :class:`FaceTrack` from a frame reader ``read(i)`` (no caching)."""
    if n_frames <= 0:
        raise NoFaceError(f"{video}: the video has no frames. Fix: extract its frames.")
    ref, box = reference_box((read(i) for i in range(n_frames)), video, upsample, max_search)
    first = read(ref)
    marks = landmarks(first, box)
    per = None
    if per_frame:
        per = np.stack([marks if i == ref else landmarks(read(i), box) for i in range(n_frames)])
    return FaceTrack(
        video=video,
        n_frames=n_frames,
        frame_shape=tuple(first.shape),
        ref_index=ref,
        box=box,
        landmarks=marks,
        per_frame=per,
    )


def _cache_key(dataset, video: str, per_frame: bool, upsample: int) -> str:
    paths = dataset.frame_paths(video)
    stamp = [str(paths[0].resolve()), str(len(paths))]
    for p in (paths[0], paths[-1]):
        st = p.stat()
        stamp += [str(st.st_size), str(st.st_mtime_ns)]
    stamp += [str(per_frame), str(upsample), str(CACHE_VERSION)]
    digest = hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in video)
    return f"{safe}-{digest}.npz"


def track_video(
    dataset,
    video: str,
    per_frame: bool = False,
    upsample: int = 1,
    cache: bool = True,
    max_search: int | None = None,
) -> FaceTrack:
    """:func:`track_frames` on a :class:`melib.data.datasets.Dataset` video, cached.

    The cache file (under ``cache_dir("landmarks", dataset.name)``) is keyed by the
    frame folder, its frame count and its first/last files' size and mtime, so
    replacing the frames invalidates it. Writes are atomic.
    """
    path = None
    if cache:
        path = runtime.cache_dir("landmarks", dataset.name) / _cache_key(dataset, video, per_frame, upsample)
        if runtime.cache_ok(path):
            with np.load(runtime.verified(path)) as z:
                return FaceTrack(
                    video=video,
                    n_frames=int(z["n_frames"]),
                    frame_shape=tuple(int(v) for v in z["frame_shape"]),
                    ref_index=int(z["ref_index"]),
                    box=Box(*(int(v) for v in z["box"])),
                    landmarks=z["landmarks"],
                    per_frame=z["per_frame"] if per_frame else None,
                )
    try:
        track = track_frames(
            lambda i: dataset.read_frame(video, i),
            dataset.n_frames(video),
            video,
            per_frame,
            upsample,
            max_search,
        )
    except NoFaceError as exc:  # say where the frames are: a data_root holds several datasets
        paths = dataset.frame_paths(video)
        where = f"{paths[0].parent} ({paths[0].name} .. {paths[-1].name})" if paths else "no frame files"
        raise NoFaceError(f"{exc} Dataset {dataset.name}, frames in {where}.") from None
    if path is not None:
        arrays = dict(
            n_frames=np.int64(track.n_frames),
            frame_shape=np.array(track.frame_shape),
            ref_index=np.int64(track.ref_index),
            box=np.array(track.box.as_tuple()),
            landmarks=track.landmarks,
        )
        if track.per_frame is not None:
            arrays["per_frame"] = track.per_frame
        runtime.save_npz(path, **arrays)
    return track


def iter_crops(
    dataset,
    video: str,
    track: FaceTrack,
    size: int | tuple[int, int] | None = 128,
    gray: bool = True,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[np.ndarray]:
    """Face crops of frames ``start .. stop-1`` with the video's reference box."""
    for image in dataset.iter_frames(video, start, stop):
        yield crop(image, track.box, size, gray)
