"""DynGeoNet's 67-d geometric feature (Tran et al. 2021, section 3.3): landmark geometry between a
window's onset (first) frame and apex (middle) frame.

Numbering. The paper numbers dlib's 68 landmarks from **1** (its figure 2); the constants
below keep that numbering, so they read like the paper. The arrays passed in are
:mod:`melib.face`'s 0-based (68, 2) ``(x, y)`` landmarks; the code subtracts 1.

The 45 lines (``RATIO_LINES``)
------------------------------
* 30: each eyebrow point 18..27 joined to 28 (top of the nose bridge), 32 and 36 (the
  two ends of the nostril row), in that order.
* 12: consecutive mouth points ``(P_i, P_i+1)`` for i = 49..60. Points 49..60 are the
  outer lip loop, so the last pair, (60, 61), joins the outer loop's last point to 61,
  the inner lip's left corner; it is **not** the loop's closing edge (60, 49). We take
  the paper literally because "i from 49 to 60" gives exactly the 12 lines its count of
  45 needs. In dlib's model 61 sits just inside the outer corner 49 (3 px away on
  the astronaut test face, whose eyes are 44 px apart), so (60, 61) is a shorter
  version of the closing edge (60, 49) (10 px instead of 12 there): both follow the
  lower-left lip contour, and both stretch when the mouth corner is pulled.
* 3: (51, 59), (53, 57) and (49, 55); the paper prints the second as "(P53, P557)", an
  obvious typo for 57.

The vector
----------
``[Ratio (45), Deform (22)]``: the 45 ratios first, then the 22 deform values. (The paper
says "we concatenate Deform and Ratio"; the order does not matter to the MLP that reads
the vector, and ratios-first matches the order in which the paper defines them.)

* Ratio_i = d_i(onset) / d_i(apex) (the paper's eq. 2), scale-free by construction. An apex
  line shorter than ``MIN_LENGTH`` pixels raises a ``ValueError`` naming the line: it
  only happens with degenerate landmarks (e.g. a failed detection), and a silent
  epsilon would feed a huge ratio to the network.
* Deform_j = |P_j(onset) - P_j(apex)|, the distance each eyebrow (18..27) and outer
  mouth (49..60) point moves. The paper gives no normalisation. Pixel distances depend on
  the face's size in the frame (CAS(ME)^2, SAMM and SMIC-E film at different
  resolutions, and the cross-database setups mix them), so by default they are divided
  by the onset frame's inter-ocular distance (between the eye centres, means of 37..42
  and 43..48); ``normalize="none"`` gives the paper's raw pixel distances.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EYEBROW_POINTS",
    "NOSE_ANCHORS",
    "MOUTH_POINTS",
    "RATIO_LINES",
    "DEFORM_POINTS",
    "N_RATIOS",
    "N_DEFORM",
    "GEO_DIM",
    "MIN_LENGTH",
    "NORMALIZATIONS",
    "geometric_features",
    "feature_names",
    "interocular_distance",
]

EYEBROW_POINTS = tuple(range(18, 28))  # 1-based, both eyebrows
NOSE_ANCHORS = (28, 32, 36)  # 1-based: nose bridge top, nostril ends
MOUTH_POINTS = tuple(range(49, 61))  # 1-based: the outer lip loop
RATIO_LINES: tuple[tuple[int, int], ...] = (
    tuple((b, a) for b in EYEBROW_POINTS for a in NOSE_ANCHORS)
    + tuple((i, i + 1) for i in range(49, 61))
    + ((51, 59), (53, 57), (49, 55))
)
DEFORM_POINTS: tuple[int, ...] = EYEBROW_POINTS + MOUTH_POINTS
N_RATIOS = len(RATIO_LINES)  # 45
N_DEFORM = len(DEFORM_POINTS)  # 22
GEO_DIM = N_RATIOS + N_DEFORM  # 67
MIN_LENGTH = 1e-6  # pixels
NORMALIZATIONS = ("interocular", "none")

_LINES0 = np.asarray(RATIO_LINES) - 1
_DEFORM0 = np.asarray(DEFORM_POINTS) - 1


def _landmarks(marks, name: str) -> np.ndarray:
    p = np.asarray(marks, dtype=np.float64)
    if p.ndim not in (2, 3) or p.shape[-2:] != (68, 2):
        raise ValueError(
            f"{name}: expected dlib's (68, 2) landmarks (or a stack (N, 68, 2)), "
            f"got shape {p.shape}. Fix: pass melib.face landmarks (0-based, x, y)."
        )
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: landmarks contain NaN or infinite values (failed detection?)")
    return p


def interocular_distance(marks) -> np.ndarray:
    """Distance between the eye centres (means of 0-based 36-41 and 42-47), float64."""
    p = _landmarks(marks, "marks")
    return np.linalg.norm(p[..., 36:42, :].mean(-2) - p[..., 42:48, :].mean(-2), axis=-1)


def _line_lengths(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p[..., _LINES0[:, 0], :] - p[..., _LINES0[:, 1], :], axis=-1)


def geometric_features(onset_marks, apex_marks, normalize: str = "interocular") -> np.ndarray:
    """The 67-d vector ``[Ratio (45), Deform (22)]`` as float32.

    ``onset_marks``, ``apex_marks``: 0-based dlib landmarks (68, 2) of the window's first
    and middle frames (or stacks (N, 68, 2) -> (N, 67)). ``normalize``: ``"interocular"``
    (default) divides Deform by the onset's inter-ocular distance; ``"none"`` keeps
    pixels (the paper is silent). Names: :func:`feature_names`.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize={normalize!r}: use 'interocular' or 'none'")
    onset = _landmarks(onset_marks, "onset_marks")
    apex = _landmarks(apex_marks, "apex_marks")
    if onset.shape != apex.shape:
        raise ValueError(f"onset_marks {onset.shape} and apex_marks {apex.shape} differ in shape")
    d_onset, d_apex = _line_lengths(onset), _line_lengths(apex)
    short = np.argwhere(d_apex < MIN_LENGTH)
    if len(short):
        line = RATIO_LINES[short[0][-1]]
        raise ValueError(
            f"apex_marks: line {line} (1-based landmarks) has length "
            f"{float(d_apex[tuple(short[0])]):.2g} px < {MIN_LENGTH}, so its ratio is "
            "undefined. The landmarks are degenerate: check the face detection."
        )
    ratio = d_onset / d_apex
    deform = np.linalg.norm(onset[..., _DEFORM0, :] - apex[..., _DEFORM0, :], axis=-1)
    if normalize == "interocular":
        scale = interocular_distance(onset)
        if np.any(scale < MIN_LENGTH):
            raise ValueError(
                "onset_marks: the eye centres coincide (inter-ocular distance 0), "
                "so Deform cannot be normalised; the landmarks are degenerate."
            )
        deform = deform / np.asarray(scale)[..., None]
    return np.concatenate([ratio, deform], axis=-1).astype(np.float32)


def feature_names() -> list[str]:
    """67 names, 1-based as in the paper: ``ratio_18_28`` ... ``ratio_49_55``, ``deform_18``
    ... ``deform_60``."""
    return [f"ratio_{a}_{b}" for a, b in RATIO_LINES] + [f"deform_{p}" for p in DEFORM_POINTS]
