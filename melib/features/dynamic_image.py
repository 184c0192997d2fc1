"""Dynamic images (Bilen et al., CVPR 2016): a window of frames summarised as one image.

Approximate rank pooling weights frame ``t`` (t = 1..T) by ``alpha_t`` and sums:
``d = sum_t alpha_t * I_t``. Bilen et al. give ``alpha_t = 2t - T - 1``; the DynGeoNet
paper (Tran et al. 2021, eq. 1) prints ``alpha_t = 2t - T + 1``.

Which one runs, and why
-----------------------
``variant="bilen"`` (``2t - T - 1``) is the default. Its weights sum to zero and are
antisymmetric about the window's middle, so a window with no motion gives an all-zero
image and only temporal change survives, which is the point of a dynamic image. The
DynGeoNet paper's ``2t - T + 1`` adds ``2 * sum_t I_t``, i.e. ``2T`` times the mean frame, to that:
the static face appearance then dominates the image. We read its ``+ 1`` as a
transcription slip of the cited method [2] (the paper cites Bilen et al. for the
formula); ``variant="as_printed"`` keeps the printed form so the difference can be shown.

For DynGeoNet the dynamic image is computed on three face regions (eyes, nose, mouth:
Tran et al. 2021, section 3.2) of each window; :func:`region_composite` assembles them into
the network's 3-channel input (see its docstring for the layout).
"""

from __future__ import annotations

import cv2
import numpy as np

from melib import face as F

__all__ = [
    "VARIANTS",
    "DYNAMIC_REGIONS",
    "LAYOUTS",
    "rank_pooling_weights",
    "dynamic_image",
    "to_display",
    "unit_range",
    "region_dynamic_images",
    "compose_regions",
    "region_composite",
]

VARIANTS = ("bilen", "as_printed")
# Our region name -> melib.face region. "eyes" is SOFTNet's eyes-and-brows box: the
# paper's "eye area" with the eyebrows, whose movement its geometric features also track.
DYNAMIC_REGIONS = {"eyes": "eyes_brows", "nose": "nose", "mouth": "mouth"}
LAYOUTS = ("tiles", "channels")


def rank_pooling_weights(n_frames: int, variant: str = "bilen") -> np.ndarray:
    """The coefficients ``alpha_t`` for t = 1..``n_frames``, as float64 (T,).

    ``"bilen"``: ``2t - T - 1`` (Bilen et al.; the default, the one that runs): sums
    to 0, so a still window gives a zero image. ``"as_printed"``: ``2t - T + 1`` as printed
    in the DynGeoNet paper; it sums to ``2T`` and adds twice the frame sum (appearance).
    """
    if variant not in VARIANTS:
        raise ValueError(
            f"variant={variant!r}: use 'bilen' (2t - T - 1, Bilen et al.) or "
            "'as_printed' (2t - T + 1, as printed in the DynGeoNet paper)"
        )
    n = int(n_frames)
    if n < 2:
        raise ValueError(f"n_frames={n_frames}: a dynamic image needs at least 2 frames")
    t = np.arange(1, n + 1, dtype=np.float64)
    return 2 * t - n - 1 if variant == "bilen" else 2 * t - n + 1


def dynamic_image(frames, variant: str = "bilen") -> np.ndarray:
    """``sum_t alpha_t * frames[t]`` as float32 (H, W) or (H, W, C).

    ``frames``: (T, H, W) or (T, H, W, C) array (any numeric dtype), or a sequence of
    equally shaped frames. Accumulated frame by frame, so a uint8 window is never
    converted to float all at once.
    """
    if not isinstance(frames, np.ndarray):
        frames = list(frames)
        if not frames:
            raise ValueError("dynamic_image: no frames given")
        shapes = {np.shape(f) for f in frames}
        if len(shapes) != 1:
            raise ValueError(
                f"dynamic_image: frames have different shapes {sorted(shapes)}; "
                "crop/resize them to one size first"
            )
        frames = np.stack(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(
            f"dynamic_image: expected frames (T, H, W) or (T, H, W, C), got shape {frames.shape}"
        )
    weights = rank_pooling_weights(len(frames), variant)
    out = np.zeros(frames.shape[1:], np.float64)
    for w, frame in zip(weights, frames):
        out += w * frame.astype(np.float64)
    return out.astype(np.float32)


def unit_range(image) -> np.ndarray:
    """Min-max scaling to [0, 1] as float32; a constant image becomes all zeros."""
    x = np.asarray(image, np.float32)
    lo, hi = float(x.min()), float(x.max())
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError("unit_range: the image has NaN or infinite values")
    if hi - lo <= 0:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def to_display(image) -> np.ndarray:
    """A dynamic image min-max scaled to uint8 0..255 (same shape), for plots.

    Bilen et al. rescale dynamic images the same way before feeding a CNN; the network
    input (:func:`compose_regions`) uses the float equivalent, :func:`unit_range`.
    """
    return np.round(unit_range(image) * 255).astype(np.uint8)


def region_dynamic_images(
    frames, marks: np.ndarray, size: int = 64, margin: int = 12, variant: str = "bilen", gray: bool = True
) -> dict[str, np.ndarray]:
    """Dynamic images of the eye, nose and mouth regions of one window.

    ``frames``: the window's frames, (T, H, W[, C]) uint8 or a sequence of them;
    ``marks``: dlib's (68, 2) 0-based landmarks of the window's **first** frame, in frame
    coordinates; they fix one box per region (:func:`melib.face.regions` with
    ``margin``) for the whole window, so the crop does not jitter. Every frame's crop
    is resized to ``size`` x ``size`` (the boxes have different aspect ratios; a fixed
    size is what the network needs) and, with ``gray`` (the default), converted to gray:
    SAMM is recorded in gray, so cross-database runs need one colour convention.

    Returns ``{"eyes", "nose", "mouth"}`` -> float32 (size, size) (or (size, size, 3)
    when ``gray=False`` and the frames are RGB), unscaled (see :func:`to_display`).
    """
    if size < 8:
        raise ValueError(f"size={size}: use at least 8 pixels per region")
    boxes = F.regions(marks, margin)
    crops: dict[str, list[np.ndarray]] = {name: [] for name in DYNAMIC_REGIONS}
    for frame in frames:
        frame = np.asarray(frame)
        for name, region in DYNAMIC_REGIONS.items():
            crops[name].append(F.crop(frame, boxes[region], size, gray=gray))
    if not crops["eyes"]:
        raise ValueError("region_dynamic_images: the window has no frames")
    return {name: dynamic_image(np.stack(c), variant) for name, c in crops.items()}


def _bands(size: int) -> list[int]:
    third = size // 3
    return [third, third, size - 2 * third]


def compose_regions(
    region_images: dict[str, np.ndarray], size: int = 64, layout: str = "tiles"
) -> np.ndarray:
    """The network input (3, size, size) float32 in [0, 1] from the three region images.

    Each region is min-max scaled to [0, 1] on its own (as Bilen et al. rescale dynamic
    images), so windows of different lengths L (11 to 65 frames: the raw values grow
    with L^2) and different datasets share one input range.

    ``layout="tiles"`` (default): the regions are stacked top to bottom as on a face:
    eyes, nose, mouth, each a horizontal band of ``size`` x ~``size/3`` pixels; a gray
    composite is repeated on the 3 channels. ``layout="channels"``: eyes, nose and mouth
    are the R, G and B channels at full ``size`` (gray regions only).

    Why tiles: the paper says only that the dynamic image is computed "on the particular
    regions of the face" (eye, nose, mouth) and its figure 1 feeds one image to the
    VGG-16. Tiles keep that an image: VGG's convolutions assume the channels are planes
    of one co-registered scene (with channels, a filter would mix an eyebrow pixel with
    an unrelated mouth pixel), they keep ImageNet filters meaningful if weights are
    loaded, and a Grad-CAM map then says which region mattered. The eyes and mouth
    boxes are wider than tall, so bands suit them; the nose band is squeezed vertically.
    """
    missing = [n for n in DYNAMIC_REGIONS if n not in region_images]
    if missing:
        raise ValueError(
            f"compose_regions: missing region(s) {missing}; pass the dict from region_dynamic_images"
        )
    if layout not in LAYOUTS:
        raise ValueError(
            f"layout={layout!r}: use 'tiles' (regions stacked as on a face) or "
            "'channels' (one region per channel)"
        )
    scaled = {n: unit_range(region_images[n]) for n in DYNAMIC_REGIONS}
    if layout == "channels":
        if any(img.ndim != 2 for img in scaled.values()):
            raise ValueError("layout='channels' needs gray region images (gray=True)")
        return np.stack(
            [cv2.resize(scaled[n], (size, size), interpolation=cv2.INTER_AREA) for n in DYNAMIC_REGIONS]
        ).astype(np.float32)
    rows = []
    for name, height in zip(DYNAMIC_REGIONS, _bands(size)):
        band = cv2.resize(scaled[name], (size, height), interpolation=cv2.INTER_AREA)
        if band.ndim == 2:
            band = np.repeat(band[:, :, None], 3, axis=2)
        rows.append(band)
    return np.ascontiguousarray(np.concatenate(rows, axis=0).transpose(2, 0, 1), np.float32)


def region_composite(
    frames, marks: np.ndarray, size: int = 64, margin: int = 12, variant: str = "bilen", layout: str = "tiles"
) -> np.ndarray:
    """One window's DynGeoNet input: (3, size, size) float32 in [0, 1].

    :func:`region_dynamic_images` (gray, each region computed at ``size``) then
    :func:`compose_regions` with ``layout`` (default ``"tiles"``; why is explained there).
    """
    regions = region_dynamic_images(frames, marks, size=size, margin=margin, variant=variant)
    return compose_regions(regions, size=size, layout=layout)
