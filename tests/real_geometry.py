"""A small data tree in the real release layouts, at the real frame geometry.

Test helper for ``tests/test_real_geometry.py``. The pixels are synthetic (scikit-image's
public-domain astronaut portrait, its face scaled to the size a real recording shows
and pasted into a frame of the real size, drifting a few pixels from frame to frame);
everything else follows ``../shared/docs/datasets.md``:

=============  ==========  ====  =====================================================
dataset        frame size  file  frames
=============  ==========  ====  =====================================================
CAS(ME)²       640x480     JPEG  ``rawpic/s15/15_0401eatingworms/img001.jpg`` (1-based)
SAMM-LV        2040x1088   JPEG  ``SAMM_longvideos/006_1/006_1_0001.jpg`` (1-based)
CASME II       640x480     JPEG  ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg`` (absolute)
SMIC-HS        640x480     BMP   ``SMIC/HS/s1/micro/negative/s1_ne_01/image045937.bmp``
=============  ==========  ====  =====================================================

The workbooks carry the quirks of the real ones: CAS(ME)² header-less sheets with a
macro row whose offset is 0 and a row whose apex is 0; SAMM-LV's legend block, fractional
frames (``5.4``, ``22.999999999999``, ``7.5``), an apex of -1 and an onset-0 row;
CASME II's extra unnamed column and an apex written ``/``.

SAMM-LV's frames are 8-bit grey JPEGs, as its monochrome camera records them. Some frames
show no face at all (:data:`BLANK`): the first two of a CAS(ME)² video and the first of a
SAMM-LV video (so the reference box comes from a later frame), and one in the middle of
most videos. :func:`faceless_tree` copies a tree and adds a video or clip in which no frame
has a face.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from builders import SAMM_LEGEND, SAMM_LV_HEADER

# (dataset, video folder relative to the dataset root) -> 0-based positions of faceless frames
BLANK: dict[tuple[str, str], tuple[int, ...]] = {}

CASME_SQ_SIZE = (640, 480)
SAMM_LV_SIZE = (2040, 1088)
CASME2_SIZE = (640, 480)
SMIC_HS_SIZE = (640, 480)
# Face widths (px) of a real recording at that size: about a third of a CAS(ME)² or
# CASME II frame, a fifth of SAMM-LV's wide frame.
FACE_WIDTH = {"casme_sq": 200, "samm_lv": 420, "casme2": 210, "smic_hs": 190}


# --------------------------------------------------------------------------- pixels


@functools.cache
def _portrait() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The astronaut (BGR) cut to a square around its face, and the face box inside it."""
    from skimage import data

    from melib import face

    rgb = data.astronaut()
    box = face.detect_face(rgb)
    assert box is not None, "dlib finds the astronaut's face"
    cx, cy = (box.left + box.right) // 2, (box.top + box.bottom) // 2
    half = int(box.width * 1.1)
    top, left = max(0, cy - half), max(0, cx - half)
    patch = cv2.cvtColor(rgb[top : cy + half, left : cx + half], cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(patch), (box.left - left, box.top - top, box.width, box.height)


@functools.cache
def _scaled_face(face_width: int) -> np.ndarray:
    patch, (_, _, width, _) = _portrait()
    scale = face_width / width
    return cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


@functools.cache
def _background(size: tuple[int, int]) -> np.ndarray:
    """A fixed, textured grey wall (BGR), so a faceless frame is not a flat image."""
    w, h = size
    rng = np.random.default_rng(w * 7919 + h)
    small = rng.integers(70, 130, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def frame(size: tuple[int, int], face_width: int, t: int, blank: bool = False) -> np.ndarray:
    """One BGR frame of ``size`` (width, height): the face drifting about the centre, or
    the wall alone when ``blank``."""
    image = _background(size).copy()
    if blank:
        return image
    w, h = size
    face_img = _scaled_face(face_width)
    fh, fw = face_img.shape[:2]
    if fh > h or fw > w:
        raise ValueError(f"a {fw}x{fh} face patch does not fit a {w}x{h} frame")
    dx = int(round(3 * np.sin(t / 4.0)))
    dy = int(round(2 * np.cos(t / 5.0)))
    top, left = (h - fh) // 2 + dy, (w - fw) // 2 + dx
    top, left = min(max(top, 0), h - fh), min(max(left, 0), w - fw)
    gain = 1.0 + 0.03 * np.sin(t / 3.0)  # a little flicker
    image[top : top + fh, left : left + fw] = np.clip(face_img * gain, 0, 255).astype(np.uint8)
    return image


def write_video(
    folder: Path,
    dataset: str,
    size,
    numbers,
    pattern: str,
    blank=(),
    key: str | None = None,
    gray: bool = False,
) -> Path:
    """Frames ``numbers`` (file numbers) as ``pattern % number``; positions in ``blank``
    (0-based) show no face; ``gray`` writes 8-bit single-channel files (SAMM's camera is
    monochrome). Records the blank positions in :data:`BLANK`."""
    folder.mkdir(parents=True, exist_ok=True)
    numbers = list(numbers)
    blank = tuple(sorted(set(range(len(numbers))) if blank == "all" else blank))
    for position, number in enumerate(numbers):
        image = frame(size, FACE_WIDTH[dataset], position, blank=position in blank)
        if gray:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if not cv2.imwrite(str(folder / (pattern % number)), image):
            raise OSError(f"cannot write {folder / (pattern % number)}")
    BLANK[(dataset, key or folder.name)] = blank
    return folder


# --------------------------------------------------------------------------- workbooks


def write_sheets(path: Path, sheets: dict[str, list[list]]) -> None:
    """An .xlsx whose sheets hold ``rows`` as they are (no header added)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # never write through a hard link (see faceless_tree)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, rows in sheets.items():
            width = max(len(r) for r in rows)
            rows = [list(r) + [None] * (width - len(r)) for r in rows]
            pd.DataFrame(rows).to_excel(writer, sheet_name=name, header=False, index=False)


# --------------------------------------------------------------------------- datasets


def make_casme_sq(root: Path, n_frames=(24, 20)) -> Path:
    """Two subjects, one video each."""
    rows = [
        # subject, name, onset, apex, offset (1-based), AUs, emotion, type, self-report
        [1, "anger1_1", 5, 7, 9, "4+10", "negative", "micro-expression", "anger"],
        [1, "anger1_2", 12, 15, 0, "4", "negative", "macro-expression", "anger"],  # offset 0
        [1, "anger1_3", 17, 0, 23, "4+7", "negative", "macro-expression", "anger"],  # apex 0
        [2, "happy1_1", 3, 5, 8, "12", "positive", "micro-expression", "happy"],
        [2, "happy1_2", 10, 13, 18, "6+12", "positive", "macro-expression", "happy"],
    ]
    write_sheets(
        root / "CAS(ME)^2code_final.xlsx",
        {
            "CASFEcode_final": rows,
            "naming rule1": [[15, "s15", 1], [16, "s16", 2]],
            "naming rule2": [["0401", "anger1"], ["0502", "happy1"]],
        },
    )
    frames = root / "rawpic"
    write_video(
        frames / "s15/15_0401eatingworms",
        "casme_sq",
        CASME_SQ_SIZE,
        range(1, n_frames[0] + 1),
        "img%03d.jpg",
        blank=(0, 1, 15),
    )
    write_video(
        frames / "s16/16_0502funnyerrors",
        "casme_sq",
        CASME_SQ_SIZE,
        range(1, n_frames[1] + 1),
        "img%03d.jpg",
        blank=(11,),
    )
    return root


def make_samm_lv(root: Path, n_frames=(24, 20)) -> Path:
    """Two subjects, one 2040x1088 video each, with SAMM-LV's fractional frames."""
    rows = SAMM_LEGEND + [
        SAMM_LV_HEADER,
        ["006", "006_1_1", 1, 5.4, 8, 12.6, 7.2, "Micro - 1/2", "4+7", None],
        ["006", "006_1_2", 1, 15, -1, 22.999999999999, 8, "Macro", "12", None],  # apex -1
        ["006", "006_1_3", 1, 0, 10, 20, 20, "Macro", "12", "extremely long"],  # onset 0: dropped
        ["007", "007_2_1", 2, 3, 5, 7.5, 4.5, "Micro - 1/2", "1+2", None],
        ["007", "007_2_2", 2, 9, 12.4, 16, 7, "Macro", "6+12", None],
    ]
    write_sheets(root / "SAMM_LongVideos_V2_Release.xlsx", {"FACS_Movement_Only": rows})
    frames = root / "SAMM_longvideos"
    for video, n, blank in (("006_1", n_frames[0], (0, 9)), ("007_2", n_frames[1], (13,))):
        write_video(
            frames / video, "samm_lv", SAMM_LV_SIZE, range(1, n + 1), f"{video}_%04d.jpg", blank, gray=True
        )
    return root


CASME2_HEADER = [
    "Subject",
    "Filename",
    "Unnamed: 2",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Action Units",
    "Estimated Emotion",
]
CASME2_CLIPS = [  # subject, clip, onset, apex, offset (absolute), AUs, emotion, faceless positions
    (1, "EP02_01f", 46, 52, 61, "12", "happiness", (3,)),
    (1, "EP03_02", 100, "/", 111, "4+L10", "disgust", (0,)),  # apex "/"; onset frame faceless
    (2, "EP19_05f", 10, 13, 22, "14", "repression", ()),
    (2, "EP01_12", 200, 212, 215, "1+2", "surprise", (5,)),
]
CASME2_FACELESS = (2, "EP05_09", 30, 31, 32, "4", "others", "all")


def _casme2_clips(root: Path, clips) -> None:
    rows = [CASME2_HEADER] + [[s, c, None, on, ap, off, aus, emo] for s, c, on, ap, off, aus, emo, _ in clips]
    write_sheets(root / "CASME2-coding-20140508.xlsx", {"Sheet1": rows})
    for s, c, on, _, off, _, _, blank in clips:
        folder = root / f"CASME2_RAW_selected/sub{s:02d}/{c}"
        if not folder.is_dir():
            write_video(
                folder, "casme2", CASME2_SIZE, range(on, off + 1), "img%d.jpg", blank, f"sub{s:02d}_{c}"
            )


def make_casme2(root: Path) -> Path:
    """Four clips of two subjects, absolute frame numbers, 5-class emotions."""
    _casme2_clips(root, CASME2_CLIPS)
    return root


SMIC_HS_CLIPS = [  # subject folder, emotion, clip folder, first file number, frames, faceless
    ("s1", "negative", "s1_ne_01", 45937, 14, (6,)),
    ("s1", "positive", "s1_po_02", 1203, 12, ()),
    ("s2", "surprise", "s2_sur_01", 7, 13, (0,)),
    ("s2", "negative", "s2_ne_03", 880, 12, ()),
]
SMIC_HS_FACELESS = ("s2", "positive", "s2_po_05", 100, 3, "all")


def make_smic_hs(root: Path, clips=SMIC_HS_CLIPS) -> Path:
    """Four BMP clips of two subjects; the label is the folder name."""
    base = root / "SMIC" / "HS"
    for subject, emotion, clip, first, n, blank in clips:
        code = f"s{int(subject[1:]):02d}"
        write_video(
            base / subject / "micro" / emotion / clip,
            "smic_hs",
            SMIC_HS_SIZE,
            range(first, first + n),
            "image%06d.bmp",
            blank,
            key=f"{code}_{clip.replace(subject, code, 1)}",
        )
    (base / "s1" / "non_micro").mkdir(parents=True, exist_ok=True)  # present in the release
    return root


MAKERS = {
    "casme_sq": make_casme_sq,
    "samm_lv": make_samm_lv,
    "casme2": make_casme2,
    "smic_hs": make_smic_hs,
}


@dataclass
class Tree:
    """A data_root with one folder per dataset key."""

    root: Path
    datasets: tuple

    def blank(self, dataset: str, video: str) -> tuple[int, ...]:
        return BLANK[(dataset, video)]


def build_tree(root: Path, datasets=tuple(MAKERS)) -> Tree:
    """Write the datasets under ``root/<key>/`` and return the :class:`Tree`."""
    root.mkdir(parents=True, exist_ok=True)
    for key in datasets:
        MAKERS[key](root / key)
    return Tree(root, tuple(datasets))


def add_faceless(root: Path, key: str) -> str:
    """Add to the dataset at ``root`` one 3-frame video or clip in which no frame has a
    face; returns its name as the loader gives it."""
    if key == "casme_sq":  # an unannotated video of subject 16
        write_video(
            root / "rawpic/s16/16_0508kissingscene", key, CASME_SQ_SIZE, range(1, 4), "img%03d.jpg", "all"
        )
        return "16_0508kissingscene"
    if key == "samm_lv":
        write_video(
            root / "SAMM_longvideos/007_5", key, SAMM_LV_SIZE, range(1, 4), "007_5_%04d.jpg", "all", gray=True
        )
        return "007_5"
    if key == "casme2":  # an annotated "others" clip
        _casme2_clips(root, CASME2_CLIPS + [CASME2_FACELESS])
        return "sub02_EP05_09"
    if key == "smic_hs":
        make_smic_hs(root, [SMIC_HS_FACELESS])
        return "s02_s02_po_05"
    raise KeyError(key)


def faceless_tree(tree: Tree, root: Path, datasets=("casme_sq", "casme2", "smic_hs")) -> dict[str, str]:
    """A copy of ``tree`` (hard links, so it costs nothing) with a faceless video added
    to each of ``datasets``; returns ``{dataset: faceless video}``."""
    import os
    import shutil

    out = {}
    for key in datasets:
        shutil.copytree(tree.root / key, root / key, copy_function=os.link)
        out[key] = add_faceless(root / key, key)
    return out
