"""FACS action units as landmark displacement templates, and emotion ↔ AU tables.

A template moves some of dlib's 68 landmarks. Displacements are in pixels for a face
whose jaw (landmark 0 to 16) is 128 px wide, at intensity 1.0, in image axes (x right,
y down). Intensity 1.0 moves the most-moving point 3-5 px. The corpus draws macro
intensities from 1.1-1.8 (several px) and micro intensities from 0.12-0.35 (sub-pixel to
~1.5 px), as ``melib.data.synth.INTENSITY`` says.

The synthetic corpus turns each template into a dense displacement field once per
subject (``melib.data.synth_faces``), so a frame is a weighted sum of fields.
"""

from __future__ import annotations

import numpy as np

REFERENCE_FACE_WIDTH = 128.0

# dlib 68-point groups; "right"/"left" are the image's right/left.
JAW = list(range(0, 17))
BROW_IMG_LEFT = [17, 18, 19, 20, 21]  # subject's right brow, on the image's left
BROW_IMG_RIGHT = [22, 23, 24, 25, 26]
NOSE_BRIDGE = [27, 28, 29, 30]
NOSTRILS = [31, 32, 33, 34, 35]
EYE_IMG_LEFT = [36, 37, 38, 39, 40, 41]
EYE_IMG_RIGHT = [42, 43, 44, 45, 46, 47]
UPPER_LID = [37, 38, 43, 44]
LOWER_LID = [40, 41, 46, 47]
OUTER_LIP = list(range(48, 60))
INNER_LIP = list(range(60, 68))


def _mirror(pairs: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    """Add the left-right mirror of each displacement (dlib's indices mirror in pairs)."""
    out = dict(pairs)
    for idx, (dx, dy) in pairs.items():
        twin = MIRROR_INDEX[idx]
        if twin not in pairs:
            out[twin] = (-dx, dy)
    return out


def _mirror_index() -> list[int]:
    m = list(range(68))
    pairs = [(i, 16 - i) for i in range(8)]
    pairs += [(17 + i, 26 - i) for i in range(5)]
    pairs += [(31, 35), (32, 34)]
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    pairs += [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56)]
    pairs += [(60, 64), (61, 63), (67, 65)]
    for a, b in pairs:
        m[a], m[b] = b, a
    return m


MIRROR_INDEX = _mirror_index()

# Templates are written for the image's left half and mirrored; the few midline points
# are given explicitly. Values follow the FACS manual's appearance changes, sized so that
# intensity 1.0 reads as an obvious (macro) movement on a 128 px face.
AU_TEMPLATES: dict[int, dict[int, tuple[float, float]]] = {
    # inner brow raiser
    1: _mirror({21: (0.3, -4.0), 20: (0.0, -3.2), 19: (0.0, -1.8), 18: (0.0, -0.6)}),
    # outer brow raiser
    2: _mirror({17: (-0.4, -3.6), 18: (-0.2, -3.8), 19: (0.0, -2.6), 20: (0.0, -1.0)}),
    # brow lowerer: brows down and together
    4: _mirror(
        {21: (2.6, 2.4), 20: (1.8, 2.8), 19: (0.8, 2.4), 18: (0.0, 1.6), 17: (0.0, 0.8)}  # brow
        | {37: (0.0, 0.8), 38: (0.0, 1.0)}  # upper lid
    ),
    # upper lid raiser
    5: _mirror({37: (0.0, -1.8), 38: (0.0, -1.8)}),
    # cheek raiser: cheeks and lower lids up, crow's feet
    6: _mirror(
        {40: (0.0, -1.6), 41: (0.0, -1.6), 36: (-0.3, -1.0)}  # lower lid, eye corner
        | {1: (0.3, -2.6), 2: (0.5, -3.0), 3: (0.5, -2.0), 31: (-0.4, -0.8)}  # cheek, nostril
    ),
    # lid tightener
    7: _mirror(
        {40: (0.0, -2.0), 41: (0.0, -2.0), 37: (0.0, 0.8), 38: (0.0, 0.8), 36: (0.5, 0.0), 39: (-0.3, 0.0)}
    ),
    # nose wrinkler
    9: _mirror(
        {31: (0.3, -3.0), 32: (0.1, -2.6), 29: (0.0, -1.2), 30: (0.0, -1.6)}  # nose
        | {21: (0.8, 1.6), 20: (0.2, 1.0), 49: (0.0, -1.2), 50: (0.0, -1.4)}  # inner brow, upper lip
    )
    | {33: (0.0, -2.6), 51: (0.0, -1.4)},
    # upper lip raiser
    10: _mirror({49: (0.0, -2.8), 50: (0.0, -3.2), 61: (0.0, -2.8), 31: (0.0, -1.0), 48: (0.0, -1.0)})
    | {51: (0.0, -3.4), 62: (0.0, -3.0), 33: (0.0, -0.8)},
    # lip corner puller
    12: _mirror(
        {48: (-3.6, -3.0), 49: (-1.6, -1.6), 59: (-1.6, -1.2), 60: (-3.0, -2.4)}  # lip corner
        | {67: (-0.8, -0.6), 61: (-0.8, -0.8), 3: (-0.6, -1.2), 4: (-0.6, -1.0)}  # inner lip, jaw
    )
    | {57: (0.0, -0.6)},
    # dimpler: corners tightened sideways
    14: _mirror({48: (-2.6, -0.4), 60: (-2.2, -0.3), 49: (-0.8, 0.0), 59: (-0.8, 0.0)}),
    # lip corner depressor
    15: _mirror(
        {48: (-0.4, 3.6), 60: (-0.3, 3.0), 59: (0.0, 1.8), 49: (0.0, 1.2), 4: (0.0, 0.8), 5: (0.0, 1.0)}
    ),
    # chin raiser: chin boss and lower lip up
    17: _mirror({7: (0.0, -2.4), 6: (0.0, -1.4), 58: (0.0, -2.4), 59: (0.0, -1.2), 67: (0.0, -1.8)})
    | {8: (0.0, -3.0), 57: (0.0, -2.8), 66: (0.0, -2.0)},
    # lip stretcher
    20: _mirror({48: (-3.2, 0.8), 60: (-2.6, 0.6), 59: (-1.2, 0.4), 49: (-1.2, 0.0), 4: (-0.6, 0.4)}),
    # lip tightener
    23: _mirror({49: (0.6, 0.8), 59: (0.6, -0.8), 61: (0.0, 0.6), 67: (0.0, -0.6)})
    | {50: (0.0, 0.0), 51: (0.0, 1.0), 57: (0.0, -1.0), 62: (0.0, 0.6), 66: (0.0, -0.6)},
    # lip pressor
    24: _mirror({49: (0.4, 1.2), 59: (0.4, -1.2), 61: (0.0, 1.0), 67: (0.0, -1.0)})
    | {51: (0.0, 1.4), 57: (0.0, -1.4), 62: (0.0, 1.0), 66: (0.0, -1.0)},
    # lips part
    25: _mirror({67: (0.0, 2.2), 59: (0.0, 1.6), 61: (0.0, -0.6)})
    | {66: (0.0, 2.6), 57: (0.0, 2.0), 62: (0.0, -0.8), 51: (0.0, -0.4)},
    # jaw drop
    26: _mirror(
        {7: (0.0, 4.4), 6: (0.0, 3.4), 5: (0.0, 2.2), 4: (0.0, 1.0)}  # jaw
        | {58: (0.0, 3.8), 59: (0.0, 2.6), 67: (0.0, 3.6), 48: (0.0, 1.0)}  # lips
    )
    | {8: (0.0, 5.0), 57: (0.0, 4.2), 66: (0.0, 4.0)},
    # blink: upper lid sweeps down; the occlusion itself is an appearance blend (synth)
    45: _mirror(
        {37: (0.0, 3.0), 38: (0.0, 3.0), 36: (0.0, 0.6), 39: (0.0, 0.4), 19: (0.0, 0.6), 20: (0.0, 0.6)}
    ),
}

AU_NAMES = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    14: "dimpler",
    15: "lip corner depressor",
    17: "chin raiser",
    20: "lip stretcher",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    45: "blink",
}

AU_LIST = sorted(AU_TEMPLATES)


def template_array(au: int, side: str = "") -> np.ndarray:
    """(68, 2) displacement of one AU; ``side`` "L"/"R" keeps one half of the face.

    FACS "L"/"R" are the subject's left/right, which is the image's right/left.
    """
    disp = np.zeros((68, 2), np.float32)
    for idx, vec in AU_TEMPLATES[au].items():
        disp[idx] = vec
    if side:
        image_half_right = side == "L"
        keep = np.array(
            [
                _image_half(i) == ("right" if image_half_right else "left") or _image_half(i) == "mid"
                for i in range(68)
            ]
        )
        disp[~keep] = 0.0
        mid = np.array([_image_half(i) == "mid" for i in range(68)])
        disp[mid] *= 0.5
    return disp


def _image_half(idx: int) -> str:
    twin = MIRROR_INDEX[idx]
    if twin == idx:
        return "mid"
    # dlib orders the left half of each mirrored group first on the image
    return "left" if (idx < twin) ^ (idx in (59, 58, 67)) else "right"


# --------------------------------------------------------------------- AU combinations
# Each entry: list of (AU, side, relative strength). The label follows the combination,
# as CASME II's coders did (happiness 6+12, surprise 1+2(+25/26), disgust 9/10(+4),
# repression 14/15/17, ...).
Combo = tuple[tuple[int, str, float], ...]

CASME2_COMBOS: dict[str, list[Combo]] = {
    "happiness": [
        ((6, "", 0.8), (12, "", 1.0)),
        ((12, "", 1.0),),
        ((6, "", 0.7), (12, "", 1.0), (25, "", 0.6)),
    ],
    "surprise": [
        ((1, "", 1.0), (2, "", 1.0)),
        ((1, "", 1.0), (2, "", 0.9), (25, "", 0.7)),
        ((1, "", 0.9), (2, "", 1.0), (26, "", 0.6)),
    ],
    "disgust": [
        ((9, "", 1.0),),
        ((4, "", 0.7), (9, "", 1.0)),
        ((4, "", 0.8), (10, "L", 1.0)),
        ((10, "", 1.0),),
        ((9, "", 0.8), (10, "", 0.8)),
    ],
    "repression": [
        ((14, "", 1.0),),
        ((15, "", 1.0),),
        ((17, "", 1.0),),
        ((15, "", 0.8), (17, "", 1.0)),
        ((14, "R", 1.0), (17, "", 0.7)),
    ],
    "fear": [((1, "", 0.9), (2, "", 0.8), (4, "", 0.8)), ((4, "", 0.7), (20, "", 1.0))],
    "sadness": [((1, "", 0.9), (4, "", 0.8), (15, "", 0.9)), ((1, "", 1.0), (15, "", 0.8))],
    "others": [
        ((4, "", 1.0),),
        ((7, "", 1.0),),
        ((4, "", 0.9), (7, "", 0.9)),
        ((1, "", 0.8), (4, "", 0.8)),
        ((24, "", 1.0),),
        ((23, "", 1.0),),
    ],
}

# CAS(ME)² codes four classes; the combinations are CASME II's, regrouped.
CASME_SQ_COMBOS: dict[str, list[Combo]] = {
    "negative": CASME2_COMBOS["disgust"]
    + CASME2_COMBOS["repression"]
    + [((4, "", 1.0), (7, "", 0.9)), ((4, "", 0.8), (10, "", 0.8))],
    "positive": CASME2_COMBOS["happiness"],
    "surprise": CASME2_COMBOS["surprise"],
    "others": CASME2_COMBOS["others"],
}

SAMM_COMBOS: dict[str, list[Combo]] = {
    "Anger": [((4, "", 1.0), (7, "", 0.9)), ((4, "", 1.0), (24, "", 0.8)), ((4, "", 1.0),)],
    "Contempt": [((14, "R", 1.0),), ((12, "L", 0.8), (14, "L", 0.8))],
    "Disgust": [((9, "", 1.0),), ((9, "", 0.8), (10, "", 0.8)), ((4, "", 0.7), (10, "", 1.0))],
    "Fear": [((1, "", 0.9), (2, "", 0.8), (4, "", 0.8)), ((20, "", 1.0),)],
    "Happiness": [((6, "", 0.8), (12, "", 1.0)), ((12, "", 1.0),)],
    "Sadness": [((1, "", 0.9), (4, "", 0.8), (15, "", 0.9)), ((15, "", 1.0), (17, "", 0.6))],
    "Surprise": [((1, "", 1.0), (2, "", 1.0)), ((1, "", 1.0), (2, "", 0.9), (25, "", 0.7))],
    "Other": [((7, "", 1.0),), ((1, "", 0.8), (4, "", 0.8)), ((23, "", 1.0),)],
}
# SAMM's "Objective Classes" (Davison et al. 2018) grouped by AUs, I..VII; 7 = other.
SAMM_OBJECTIVE_CLASS = {
    "Happiness": 1,
    "Surprise": 2,
    "Anger": 3,
    "Disgust": 4,
    "Contempt": 5,
    "Fear": 6,
    "Sadness": 6,
    "Other": 7,
}

SMIC_COMBOS: dict[str, list[Combo]] = {
    "negative": CASME2_COMBOS["disgust"] + CASME2_COMBOS["sadness"] + [((4, "", 1.0), (7, "", 0.9))],
    "positive": CASME2_COMBOS["happiness"],
    "surprise": CASME2_COMBOS["surprise"],
}


def format_aus(combo: Combo, letters: dict[int, str] | None = None) -> str:
    """``4+L10`` style code; ``letters`` adds SAMM-style intensity letters (``12B``)."""
    parts = []
    for au, side, _ in sorted(combo, key=lambda c: c[0]):
        parts.append(f"{side}{au}{(letters or {}).get(au, '')}")
    return "+".join(parts)


def intensity_letter(intensity: float) -> str:
    """FACS A (trace) .. E (maximum) for a peak intensity relative to the template."""
    for bound, letter in ((0.25, "A"), (0.5, "B"), (0.8, "C"), (1.1, "D")):
        if intensity < bound:
            return letter
    return "E"
