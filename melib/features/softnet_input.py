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

from dataclasses import dataclass

import numpy as np

from melib.features.flow import optical_strain

__all__ = [
    "SoftnetInputSettings",
    "remove_head_motion",
    "eye_mask",
    "softnet_blocks",
    "softnet_input",
    "softnet_input_parts",
]

LEFT_EYE = list(range(36, 42))
RIGHT_EYE = list(range(42, 48))


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

        return {"nose_half": sc(self.nose_half), "eye_margin": sc(self.eye_margin),
                "block_margin": sc(self.block_margin)}


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


def _grown_polygon(points: np.ndarray, margin: int) -> np.ndarray:
    # Push each vertex away from the eye's centre along x and y separately: a margin
    # "along the width and height", which keeps the polygon's shape but enlarges it.
    centre = points.mean(axis=0)
    return np.round(points + margin * np.sign(points - centre)).astype(np.int32)


def eye_mask(shape: tuple[int, int], landmarks: np.ndarray, margin: int = 15) -> np.ndarray:
    """Boolean (H, W) mask, True inside either eye polygon grown by ``margin`` px."""
    import cv2

    canvas = np.zeros(shape, dtype=np.uint8)
    for idx in (LEFT_EYE, RIGHT_EYE):
        cv2.fillPoly(canvas, [_grown_polygon(np.asarray(landmarks)[idx], margin)], 1)
    return canvas.astype(bool)


def softnet_blocks(landmarks: np.ndarray, shape: tuple[int, int], margin: int = 12) -> dict:
    """Row/column slices of the eye/brow and mouth blocks, clipped to the image.

    Eye/brow: rows min(y19, y24)-m .. max(y41, y46)+m, columns x17-m .. x26+m.
    Mouth: rows y50-m .. y57+m, columns x60-m .. x64+m. Both ends inclusive.
    """
    lm = np.round(np.asarray(landmarks)).astype(int)
    h, w = shape

    def box(r0, r1, c0, c1):
        r0, r1 = max(0, r0), min(h, r1 + 1)
        c0, c1 = max(0, c0), min(w, c1 + 1)
        if r1 - r0 < 2 or c1 - c0 < 2:
            raise ValueError(
                f"SOFTNet block rows {r0}:{r1} cols {c0}:{c1} is empty in a {w}x{h} crop; "
                "the landmarks do not fit the crop (check the face detection)"
            )
        return slice(r0, r1), slice(c0, c1)

    eyes = box(min(lm[19, 1], lm[24, 1]) - margin, max(lm[41, 1], lm[46, 1]) + margin,
               lm[17, 0] - margin, lm[26, 0] + margin)
    mouth = box(lm[50, 1] - margin, lm[57, 1] + margin, lm[60, 0] - margin, lm[64, 0] + margin)
    return {"eyes": eyes, "mouth": mouth}


def softnet_input_parts(flow: np.ndarray, landmarks: np.ndarray,
                        settings: SoftnetInputSettings | None = None) -> dict:
    """Intermediate maps for display: raw u, v, strain, and the masked |u|, |v|, strain."""
    s = settings or SoftnetInputSettings()
    px = s.scaled()
    flow = np.asarray(flow, dtype=np.float32)
    strain = optical_strain(flow[..., 0], flow[..., 1], scheme=s.strain_scheme)
    still = np.abs(remove_head_motion(flow, landmarks, s.nose_landmark, px["nose_half"]))
    stack = np.dstack([still[..., 0], still[..., 1], strain])
    mask = eye_mask(stack.shape[:2], landmarks, px["eye_margin"])
    stack[mask] = 0.0
    return {"u": flow[..., 0], "v": flow[..., 1], "strain": strain, "masked": stack, "eye_mask": mask}


def softnet_input(flow: np.ndarray, landmarks: np.ndarray,
                  settings: SoftnetInputSettings | None = None) -> np.ndarray:
    """The (42, 42, 3) float32 SOFTNet input (|u|, |v|, strain) for one flow field."""
    import cv2

    s = settings or SoftnetInputSettings()
    stack = softnet_input_parts(flow, landmarks, s)["masked"]
    blocks = softnet_blocks(landmarks, stack.shape[:2], s.scaled()["block_margin"])
    size = (s.out_width, s.block_height)  # cv2 takes (width, height)
    top = cv2.resize(stack[blocks["eyes"]], size, interpolation=cv2.INTER_LINEAR)
    bottom = cv2.resize(stack[blocks["mouth"]], size, interpolation=cv2.INTER_LINEAR)
    return np.vstack([top, bottom]).astype(np.float32)
