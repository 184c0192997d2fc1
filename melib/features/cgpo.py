"""CGPO, the Cropped Gaussian Pyramid with Overlapping (Zhao, Chen & Luo 2021, section 3.2.2).

The paper: take a 320x320 input and its 160x160 down-sample; cut every level into
160x160 crops that overlap by the factor α = 0.3; this gives 10 sub-images. It does
not say how α turns into crop positions. Our rule, which yields exactly the 10:

* Along a side of length ``L``, crops of side ``c`` placed ``c * (1 - α)`` apart (an
  overlap of α) need ``n = 1 + ceil((L - c) / (c * (1 - α)))`` crops to reach the far
  edge. So α is the *least* overlap between neighbours.
* Those ``n`` crops are then spread evenly so that the first starts at 0 and the last
  ends at ``L``: start ``i`` is ``round(i * (L - c) / (n - 1))``.

For the paper's sizes: the 320 level needs ``1 + ceil(160 / 112) = 3`` crops per side,
at 0, 80 and 160 (neighbours overlap by 80 px, 0.5 ≥ α), so 3 x 3 = 9 crops; the 160
level is one crop, the whole down-sampled face. 9 + 1 = 10.

Order (it fixes which z_i gets which position embedding): crop 0 is the coarse,
whole-face level (z0), crops 1..9 are the fine level in row-major order (z1..z9). The
paper's eq. 8 adds embeddings p1..p9 to z1..z9 only, which matches this order: the one
crop whose position needs no learning is z0.

The down-sample is a Gaussian pyramid step (5-tap binomial blur, then every second
pixel, as ``cv2.pyrDown``), in NumPy for figures and in PyTorch inside the model so
that augmentation can run on the full image first, as in the paper's figure 3.
Other sizes scale the same way (a 64 px input with 32 px crops also gives 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CGPOLayout", "crop_starts", "cgpo_crops", "cgpo_crops_torch", "pyr_down_torch"]


def crop_starts(length: int, crop: int, alpha: float) -> list[int]:
    """Start offsets of overlapping crops covering ``[0, length)`` (see module doc)."""
    if not 0 <= alpha < 1:
        raise ValueError(f"CGPO overlap alpha={alpha} must be in [0, 1)")
    if crop > length:
        raise ValueError(f"CGPO crop {crop} px is larger than the level ({length} px)")
    if crop == length:
        return [0]
    step = crop * (1 - alpha)
    n = 1 + math.ceil((length - crop) / step - 1e-9)
    return [int(round(i * (length - crop) / (n - 1))) for i in range(n)]


@dataclass(frozen=True)
class CGPOLayout:
    """The pyramid levels and crop boxes for an ``input_size`` image.

    ``levels`` are the sides of the pyramid images, finest first (the input, then each
    halving while it is at least ``crop_size``). ``boxes()`` lists
    ``(level_index, top, left)`` in z-order: coarsest level first, fine level last,
    each in row-major order.
    """

    input_size: int = 320
    crop_size: int = 160
    alpha: float = 0.3
    n_levels: int = 2

    def __post_init__(self):
        if self.input_size < self.crop_size:
            raise ValueError(f"CGPO input {self.input_size} px is smaller than the crop {self.crop_size} px")
        if self.input_size % (2 ** (self.n_levels - 1)):
            raise ValueError(f"CGPO input {self.input_size} px cannot be halved {self.n_levels - 1} times")
        if self.input_size // 2 ** (self.n_levels - 1) < self.crop_size:
            raise ValueError(
                f"CGPO: level {self.n_levels - 1} ({self.input_size // 2 ** (self.n_levels - 1)} "
                f"px) is smaller than the crop ({self.crop_size} px); lower n_levels"
            )

    @property
    def levels(self) -> list[int]:
        return [self.input_size // 2**k for k in range(self.n_levels)]

    def boxes(self) -> list[tuple[int, int, int]]:
        out = []
        for level in reversed(range(self.n_levels)):
            starts = crop_starts(self.levels[level], self.crop_size, self.alpha)
            out += [(level, top, left) for top in starts for left in starts]
        return out

    @property
    def n_crops(self) -> int:
        return len(self.boxes())

    def overlaps(self) -> list[float]:
        """The overlap fraction between horizontal neighbours on each level (coarse first)."""
        result = []
        for level in reversed(range(self.n_levels)):
            starts = crop_starts(self.levels[level], self.crop_size, self.alpha)
            if len(starts) > 1:
                result.append(1 - (starts[1] - starts[0]) / self.crop_size)
            else:
                result.append(float("nan"))
        return result


def _cut(image, layout: CGPOLayout, shape: tuple, down, spatial: slice) -> list:
    """Build the pyramid with ``down`` and cut every box; ``spatial`` says which two
    axes of ``image`` are rows and columns (NumPy HWC or torch NCHW)."""
    if tuple(shape) != (layout.input_size, layout.input_size):
        raise ValueError(
            f"CGPO expects a {layout.input_size}x{layout.input_size} input, got "
            f"{shape[1]}x{shape[0]}; resize the face crop first"
        )
    pyramid = [image]
    for _ in range(layout.n_levels - 1):
        pyramid.append(down(pyramid[-1]))
    c = layout.crop_size
    lead = (slice(None),) * spatial.start
    return [
        pyramid[lv][lead + (slice(top, top + c), slice(left, left + c))] for lv, top, left in layout.boxes()
    ]


def cgpo_crops(image: np.ndarray, layout: CGPOLayout | None = None) -> np.ndarray:
    """The crops of one (H, W[, C]) image as an (n_crops, crop, crop[, C]) array."""
    import cv2

    image = np.asarray(image)
    layout = layout or CGPOLayout(input_size=image.shape[0])
    return np.stack(_cut(image, layout, image.shape[:2], cv2.pyrDown, slice(0, 2)))


def pyr_down_torch(x):
    """``cv2.pyrDown`` for an (N, C, H, W) tensor: 5-tap binomial blur, reflect-101
    border, keep even pixels."""
    import torch
    import torch.nn.functional as F

    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device) / 16
    kernel = (taps[:, None] * taps[None, :]).expand(x.shape[1], 1, 5, 5)
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, kernel, stride=2, groups=x.shape[1])


def cgpo_crops_torch(x, layout: CGPOLayout):
    """(N, C, S, S) → (N, n_crops, C, crop, crop), differentiable."""
    import torch

    return torch.stack(_cut(x, layout, tuple(x.shape[-2:]), pyr_down_torch, slice(2, 4)), dim=1)
