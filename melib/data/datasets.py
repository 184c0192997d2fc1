"""Loaders for the real micro-expression datasets, read from their release layouts.

One code path serves a licensed copy and the synthetic corpus (which is written in the
same layouts). Every loader returns a :class:`Dataset`: the standard annotation table,
the videos found on disk and lazy frame access. Nothing reads an image until asked.

Frame convention
----------------
Inside melib a frame is a **0-based index into the video's numerically sorted frame
list** (``img999`` sorts before ``img1000``) and intervals are **inclusive**. The files
number frames differently (1-based in CAS(ME)² and SAMM-LV, absolute numbers in CASME
II, SAMM and SMIC-E). :func:`to_frame_index` is the one place that converts::

    index = number - first_number

where ``first_number`` is the file number of the video's first frame: 1 for CAS(ME)²
and SAMM-LV, ``FirstF`` for SMIC-E, and the smallest number on disk for CASME II and
SAMM (the clip's onset when the frames are absent, which is how those releases cut
their clips; the fix log says so).

Files are matched to indices **by their number** (:func:`scan_frames`), never by their
position in the folder: in a sound folder the two agree. A gap in the numbering, two
different files with one number (``img0010`` beside ``img010``), a file numbered before
the first frame or a file without a number raise :class:`DatasetError` naming the folder
(``melib data summary`` lists them instead); byte-identical duplicates are merged with a
warning that says which file to delete.

Non-integer SAMM-LV frames (``566.4``) are rounded to the nearest frame by default
(``fractional="round"``, half up, as the MEGC baseline does); ``fractional="floor"``
truncates them as SOFTNet's code does. Neither changes SOFTNet's k (37 and 174).

Dataset keys and roots
----------------------
``root`` is the dataset's own folder, holding the release layout (see
``docs/datasets.md`` in the shared material)::

    casme_sq     root/CAS(ME)^2code_final.xlsx (or code_final.xlsx), root/rawpic/s15/15_0101.../img001.jpg
    samm_lv      root/SAMM_LongVideos_V2_Release.xlsx, root/SAMM_longvideos/006_1/006_1_0001.jpg
    smic_e_long  root/SMIC-E_raw image/HS_long/SMIC-HS-E_annotation.xlsx, video folders below HS_long/
    casme2       root/CASME2-coding-20140508.xlsx, root/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg
    samm         root/SAMM_Micro_FACS_Codes_v2.xlsx, root/SAMM/006/006_1_2/006_05562.jpg
    smic_hs      root/SMIC/HS/s1/micro/negative/s1_ne_01/image*.bmp
    megc2019     root is the data_root holding casme2/, samm/ and smic_hs/

In recognition sets (casme2, samm, smic_hs, megc2019) ``video`` equals ``sample``
(``<subject>_<clip>``, as in the MEGC2019 list), because clip names such as
``EP02_01f`` repeat across subjects. In spotting sets ``video`` is the folder name.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

SPOTTING = ("casme_sq", "samm_lv", "smic_e_long")
RECOGNITION = ("casme2", "samm", "smic_hs")
DATASETS = SPOTTING + RECOGNITION
COMPOSITE = "megc2019"
FPS = {"casme_sq": 30, "samm_lv": 200, "smic_e_long": 100, "casme2": 200, "samm": 200, "smic_hs": 100}
STANDARD_COLUMNS = ["dataset", "subject", "video", "onset", "apex", "offset", "type", "emotion", "aus"]
VIDEO_COLUMNS = ["dataset", "subject", "video", "n_frames", "first_number", "fps", "path"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
FRACTIONAL_MODES = ("round", "floor")
FRAME_NOISE = 1e-6  # a frame number this close to a whole number is that number (float noise)

CASME_SQ_WORKBOOKS = ("CAS(ME)^2code_final.xlsx", "code_final.xlsx", "CASME_sq_code_final.xlsx")
SAMM_LV_WORKBOOKS = ("SAMM_LongVideos_V2_Release.xlsx", "SAMM_LongVideos_V1_Release.xlsx")
SMIC_E_DIR = Path("SMIC-E_raw image") / "HS_long"
SMIC_E_WORKBOOK = SMIC_E_DIR / "SMIC-HS-E_annotation.xlsx"
CASME2_WORKBOOK_GLOB = "CASME2-coding-*.xlsx"
CASME2_FRAME_DIRS = ("CASME2_RAW_selected", "CASME2_RAW", "Cropped")
SAMM_WORKBOOK_GLOB = "SAMM_Micro_FACS_Codes*.xlsx"
SMIC_HS_DIR = Path("SMIC") / "HS"

# MEGC2019 composite: which source emotions become which of the three classes.
MEGC2019_CLASSES = ("negative", "positive", "surprise")
MEGC2019_EMOTION_MAP = {
    "casme2": {
        "disgust": "negative",
        "repression": "negative",
        "happiness": "positive",
        "surprise": "surprise",
    },
    "samm": {
        "anger": "negative",
        "contempt": "negative",
        "disgust": "negative",
        "fear": "negative",
        "sadness": "negative",
        "happiness": "positive",
        "surprise": "surprise",
    },
    "smic_hs": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}
SMIC_EMOTION_ABBREV = {"ne": "negative", "po": "positive", "sur": "surprise", "su": "surprise"}


# --------------------------------------------------------------------------- errors


class DatasetError(ValueError):
    """A dataset cannot be read as it is; the message names the path, field and fix."""


class DatasetPathError(DatasetError, FileNotFoundError):
    """A file or folder the layout requires is missing (or the root is the wrong one)."""


class CorruptFrameError(DatasetError):
    """An image file exists but cannot be decoded."""


# --------------------------------------------------------------------------- frames


_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path: str | os.PathLike) -> int:
    """The frame number in a file name: its last run of digits (``006_1_0001`` -> 1)."""
    path = Path(path)
    match = _LAST_INT.search(path.stem)
    if match is None:
        where = f"{path.name} in {path.parent}" if str(path.parent) != "." else path.name
        raise DatasetError(
            f"{where}: the frame file name has no frame number; frame files must end in "
            "digits (img001.jpg). Fix: move the stray file out of the video folder, or rename it."
        )
    return int(match.group(1))


def _ranges(numbers: list[int], limit: int = 4) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"`` (the first ``limit`` runs, then ``...``)."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    return ", ".join(text) + (", ..." if len(runs) > limit else "")


@dataclass
class FrameFolder:
    """One video folder's image files, mapped **by their frame number**.

    ``by_number`` maps a file number to its file. Two files with the same number are
    merged when they hold identical bytes (``merged`` says which was kept, a safe fix);
    otherwise they are a ``conflict``. Files without a number are listed in
    ``numberless``. :meth:`problems` adds the gaps for a given first number.
    """

    folder: Path
    by_number: dict[int, Path]
    numberless: list[str] = field(default_factory=list)
    conflicts: dict[int, list[str]] = field(default_factory=dict)
    merged: list[str] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        return len(self.by_number)

    def first(self, first_number: int | None = None) -> int | None:
        """The anchor: ``first_number`` when the layout fixes it, else the smallest number."""
        if first_number is not None:
            return int(first_number)
        return min(self.by_number) if self.by_number else None

    def n_frames(self, first_number: int | None = None) -> int:
        """Frames from the first number to the last file (gaps included)."""
        first = self.first(first_number)
        return max(self.by_number) - first + 1 if self.by_number else 0

    def problems(self, first_number: int | None = None) -> list[str]:
        """One line per defect that would misplace or lose a frame (empty when sound)."""
        out = [
            f"{self.folder}: {name} has no frame number in its name; frame files must end in "
            f"digits (img001.jpg). Fix: move {name} out of this video folder."
            for name in self.numberless
        ]
        for number, names in sorted(self.conflicts.items()):
            out.append(
                f"{self.folder}: frame number {number} is carried by {len(names)} different "
                f"files ({', '.join(names)}), so melib cannot tell which is frame {number}. "
                f"Fix: remove the stray file(s); most frames here are named like {names[0]}."
            )
        if not self.by_number:
            return out
        first = self.first(first_number)
        below = sorted(n for n in self.by_number if n < first)
        if below:
            out.append(
                f"{self.folder}: {self.by_number[below[0]].name} is numbered {below[0]}, before "
                f"the video's first frame number {first} ({len(below)} such files). Fix: "
                "remove them or restore the release's numbering."
            )
        last = max(self.by_number)
        missing = sorted(set(range(first, last + 1)) - set(self.by_number))
        if missing:
            out.append(
                f"{self.folder}: no file for frame numbers {_ranges(missing)} ({len(missing)} "
                f"of {first}..{last} missing); annotations count frames by number, so those "
                "frames cannot be read. Fix: restore them from the release archive "
                "(re-extract this video)."
            )
        return out

    def paths(self, first_number: int | None = None) -> list[Path]:
        """The frame files in index order (index ``i`` is number ``first + i``).

        Raises:
            DatasetError: the folder has a gap, a conflicting duplicate or a stray file.
        """
        problems = self.problems(first_number)
        if problems:
            more = f" ({len(problems) - 1} more problems in this folder)" if len(problems) > 1 else ""
            raise DatasetError(problems[0] + more)
        first = self.first(first_number)
        return [self.by_number[first + i] for i in range(self.n_frames(first_number))]


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def scan_frames(folder: str | os.PathLike) -> FrameFolder:
    """Map one video folder's image files by their number (reads no image).

    Byte-identical files with the same number (``img0010.jpg`` beside ``img010.jpg``) are
    merged, keeping the name whose digit count matches most files; different files with
    one number are a conflict that :meth:`FrameFolder.problems` reports.
    """
    folder = Path(folder)
    with os.scandir(folder) as entries:
        names = sorted(
            e.name
            for e in entries
            if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES and not e.name.startswith(".")
        )
    numbered: dict[int, list[str]] = {}
    numberless: list[str] = []
    widths: dict[int, int] = {}
    for name in names:
        match = _LAST_INT.search(Path(name).stem)
        if match is None:
            numberless.append(name)
            continue
        numbered.setdefault(int(match.group(1)), []).append(name)
        widths[len(match.group(1))] = widths.get(len(match.group(1)), 0) + 1
    result = FrameFolder(folder, {}, numberless)
    for number, group in sorted(numbered.items()):
        if len(group) > 1:
            usual = max(widths, key=lambda w: (widths[w], -w))
            group = sorted(group, key=lambda n: (len(_LAST_INT.search(Path(n).stem).group(1)) != usual, n))
            if all(_same_bytes(folder / group[0], folder / other) for other in group[1:]):
                result.merged.append(
                    f"{folder}: {', '.join(group[1:])} repeat(s) frame {number} of {group[0]} "
                    f"(identical files); {group[0]} was used. Fix: delete {', '.join(group[1:])}."
                )
            else:
                result.conflicts[number] = group
        result.by_number[number] = folder / group[0]
    return result


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files of one video folder, sorted by frame number (img999 < img1000).

    Raises :class:`DatasetError` naming the folder for a file without a number.
    """
    folder = Path(folder)
    with os.scandir(folder) as entries:
        names = [
            e.name
            for e in entries
            if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES and not e.name.startswith(".")
        ]
    names.sort(key=lambda n: (frame_number(folder / n), n))
    return [folder / n for n in names]


def to_frame_index(number, first_number, fractional: str = "round") -> int:
    """Convert a frame number as the annotation file writes it to melib's 0-based index.

    This is the only place where file numbering meets melib's convention. ``number`` may
    be fractional (SAMM-LV): ``fractional="round"`` takes the nearest frame (half up),
    ``"floor"`` truncates. A number within :data:`FRAME_NOISE` of a whole one is that
    whole number in both modes: SAMM-LV writes 7285 as ``7284.999999999999``.
    """
    if fractional not in FRACTIONAL_MODES:
        raise ValueError(f"fractional={fractional!r} is not one of {FRACTIONAL_MODES}")
    value = float(number)
    nearest = math.floor(value + 0.5)
    whole = nearest if fractional == "round" or abs(value - nearest) < FRAME_NOISE else math.floor(value)
    return int(whole - int(first_number))


# --------------------------------------------------------------------------- Dataset


@dataclass
class Dataset:
    """A dataset on disk: annotations, the videos found and lazy frame access.

    Attributes:
        name: the dataset key (``casme_sq``, ..., ``megc2019``).
        root: the folder it was read from.
        fps: frames per second (None for a composite of mixed rates; see ``videos.fps``).
        annotations: the standard table (``STANDARD_COLUMNS``, plus ``sample`` for
            recognition sets), frames as 0-based inclusive indices.
        videos: one row per video folder found: dataset, subject, video, n_frames,
            first_number (the file number of its first frame), fps, path.
        fix_log: one line per quirk that was fixed while reading.
        frame_problems: one line per video folder defect (a gap in the numbering, two
            different files with one number, a file without a number) found by
            ``load_dataset(..., require_frames=False)``; such a video's frames raise
            :class:`DatasetError` when read. Empty for a sound dataset.
    """

    name: str
    root: Path
    fps: float | None
    annotations: pd.DataFrame
    videos: pd.DataFrame
    fix_log: list[str] = field(default_factory=list)
    frame_problems: list[str] = field(default_factory=list)
    _frames: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, {len(self.annotations)} expressions, "
            f"{len(self.videos)} videos, fps={self.fps}, root={str(self.root)!r})"
        )

    @property
    def task(self) -> str:
        return "spotting" if self.name in SPOTTING else "recognition"

    def _video_row(self, video: str) -> pd.Series:
        rows = self.videos[self.videos["video"] == video]
        if rows.empty:
            raise DatasetError(
                f"{self.name}: video {video!r} is not among the {len(self.videos)} video "
                f"folders found under {self.root}. Fix: use a name from dataset.videos.video."
            )
        return rows.iloc[0]

    def frame_paths(self, video: str) -> list[Path]:
        """The video's frame files by number: index ``i`` is file number ``first_number + i``.

        Raises :class:`DatasetError` naming the folder when its numbering has a gap, two
        different files with one number, or a file without a number.
        """
        if video not in self._frames:
            row = self._video_row(video)
            first = row.get("first_number")
            anchor = None if first is None or pd.isna(first) else int(first)
            self._frames[video] = scan_frames(row["path"]).paths(anchor)
        return self._frames[video]

    def n_frames(self, video: str) -> int:
        return int(self._video_row(video)["n_frames"])

    def read_frame(self, video: str, index: int, gray: bool = False) -> np.ndarray:
        """Decode one frame: RGB uint8 (H, W, 3), or (H, W) with ``gray=True``."""
        paths = self.frame_paths(video)
        if not -len(paths) <= index < len(paths):
            raise IndexError(f"{self.name}/{video}: frame {index} is outside 0..{len(paths) - 1}")
        return read_image(paths[index], gray=gray)

    def iter_frames(
        self, video: str, start: int = 0, stop: int | None = None, gray: bool = False
    ) -> Iterator[np.ndarray]:
        """Yield frames ``start .. stop-1`` one at a time (``stop`` exclusive, like range)."""
        paths = self.frame_paths(video)
        for path in paths[start:stop]:
            yield read_image(path, gray=gray)

    def video_annotations(self, video: str) -> pd.DataFrame:
        return self.annotations[self.annotations["video"] == video]

    def summary(self) -> dict:
        return summarize(self)


_JPEG_SUFFIXES = {".jpg", ".jpeg"}


def _jpeg_truncated(path: Path) -> bool:
    """Whether a JPEG ends before its end-of-image marker (OpenCV would fill in grey).

    FF D9 can only be the end marker (entropy-coded data stuffs every FF), so a file
    whose last bytes lack it was cut short; a file with trailing bytes after the marker
    is confirmed with PIL's full decode before it is called truncated.
    """
    with open(path, "rb") as fh:
        if fh.read(2) != b"\xff\xd8":  # not a JPEG stream at all: OpenCV refuses it
            return False
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64))
        tail = fh.read()
    if b"\xff\xd9" in tail:
        return False
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except Exception:  # PIL raises OSError, SyntaxError, DecompressionBombError, ...
        return True
    return False


def read_image(path: str | os.PathLike, gray: bool = False) -> np.ndarray:
    """Read an image as RGB (or gray) uint8, with a clear error for a damaged file.

    Raises:
        DatasetPathError: the file is missing.
        CorruptFrameError: empty, damaged or truncated (JPEG) file, or a header claiming
            an impossible size.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DatasetPathError(f"{path}: frame file is missing. Fix: restore it from the release.")
    fix = "Fix: re-extract this frame from the dataset archive."
    try:
        if path.suffix.lower() in _JPEG_SUFFIXES and _jpeg_truncated(path):
            raise CorruptFrameError(
                f"{path}: the JPEG file is truncated (it stops before its "
                f"end marker, so part of the frame would be grey). {fix}"
            )
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    except (cv2.error, MemoryError) as exc:
        text = str(exc)
        reason = (
            "its header claims more pixels than OpenCV's limit of 2**30"
            if "CV_IO_MAX_IMAGE_PIXELS" in text or isinstance(exc, MemoryError)
            else "OpenCV: " + " ".join(text.split("error:")[-1].split())
        )
        raise CorruptFrameError(
            f"{path}: the image header is invalid or claims an impossible size ({reason}). {fix}"
        ) from None
    except PermissionError:
        raise DatasetError(
            f"{path}: the frame file cannot be read (permission denied). Fix: "
            f"make it readable (chmod u+r {path})."
        ) from None
    if image is None:
        raise CorruptFrameError(
            f"{path}: the image cannot be decoded (empty or damaged file). Fix: re-extract "
            "this frame from the dataset archive."
        )
    return image if gray else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- workbooks


def _norm(text) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().lower()


def _open_workbook(path: Path) -> pd.ExcelFile:
    if not path.is_file():
        raise DatasetPathError(
            f"{path}: annotation workbook not found. Fix: put the release's "
            "workbook there, under this exact name."
        )
    try:
        return pd.ExcelFile(path, engine="openpyxl")
    except Exception as exc:  # openpyxl raises several unrelated types for bad files
        raise DatasetError(
            f"{path}: cannot be read as an .xlsx workbook ({exc}). Fix: "
            "re-download it; save it as .xlsx if it was converted."
        ) from exc


def _read_headed_sheet(
    book: pd.ExcelFile,
    path: Path,
    columns: dict[str, tuple[str, ...]],
    sheet: str | None = None,
    marker: str = "filename",
    optional: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a sheet whose header row may sit below a legend block.

    The header row is the first row with a cell equal to ``marker``; columns are found
    by name (releases add unnamed columns), ``columns`` maps a field to accepted names;
    fields in ``optional`` may be absent.
    """
    sheets = [sheet] if sheet is not None else book.sheet_names
    if sheet is not None and sheet not in book.sheet_names:
        raise DatasetError(
            f"{path}: sheet {sheet!r} not found (sheets: {book.sheet_names}). "
            "Fix: use the release's workbook, which has that sheet."
        )
    for name in sheets:
        grid = pd.read_excel(book, name, header=None, dtype=object)
        for r in range(min(len(grid), 40)):
            cells = [_norm(v) for v in grid.iloc[r].tolist()]
            if marker not in cells:
                continue
            body = grid.iloc[r + 1 :].reset_index(drop=True)
            body.columns = range(body.shape[1])
            out = pd.DataFrame(index=body.index)
            for fieldname, names in columns.items():
                wanted = [_norm(n) for n in names]
                hits = [i for i, c in enumerate(cells) if c in wanted]
                if not hits:
                    if fieldname in optional:
                        continue
                    raise DatasetError(
                        f"{path}, sheet {name!r}, header row {r + 1}: column "
                        f"{names[0]!r} is missing (found: {[c for c in cells if c != 'nan']}). "
                        f"Fix: restore the column header {names[0]!r}."
                    )
                out[fieldname] = body[hits[0]]
            out["row"] = body.index + r + 2  # 1-based Excel row of each record
            return out
    raise DatasetError(
        f"{path}: no sheet has a header row with a {marker!r} column. Fix: "
        "use the release's workbook unmodified."
    )


def _drop_blank(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    blank = df[keys].apply(lambda c: c.isna() | (c.astype(str).str.strip() == "")).all(axis=1)
    return df[~blank].reset_index(drop=True)


MAX_FRAME_NUMBER = 10**8  # beyond any release (hours at 200 fps): a typo, not a frame
MISSING_MARKERS = {"", "/", "-"}  # how the releases write "not annotated" in a frame cell


def _to_numbers(values: pd.Series) -> pd.Series:
    """Cells as float; text, blanks, booleans, infinities and absurd sizes become NaN."""
    values = values.map(lambda v: np.nan if isinstance(v, (bool, np.bool_)) else v)
    out = pd.to_numeric(values, errors="coerce").astype(float)
    return out.where(np.isfinite(out) & (out.abs() <= MAX_FRAME_NUMBER))


def _blank(value) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() in MISSING_MARKERS
    )


def _numeric(df: pd.DataFrame, column: str, path: Path, allow_missing: bool = False) -> pd.Series:
    """A frame-number column as float; a cell that is not one raises naming its row.

    ``allow_missing`` lets blank, ``/`` and ``-`` through as NaN (an apex not annotated).
    """
    values = _to_numbers(df[column])
    bad = values.isna().to_numpy()
    if allow_missing:
        bad = bad & ~df[column].map(_blank).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{path}, row {df['row'].iloc[i]}: {column} = {df[column].iloc[i]!r} "
            f"is not a frame number (a number below {MAX_FRAME_NUMBER}"
            f"{'; or / when not annotated' if allow_missing else ''}). Fix: "
            "correct that cell."
        )
    return values.astype(float)


def _expression_type(value, path: Path, row) -> str:
    text = _norm(value)
    if text.startswith("micro"):
        return "micro"
    if text.startswith("macro"):
        return "macro"
    raise DatasetError(
        f"{path}, row {row}: type {value!r} is neither micro nor macro. Fix: "
        "write Micro/Macro (or micro-/macro-expression)."
    )


def _aus(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _clean_text(value, default: str = "unknown") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    text = str(value).strip().lower()
    return text or default


def _subject_code(value, fmt: str) -> str:
    """Format a subject id (int, ``'6'``, ``'006'``, ``'s1'``) the way its folders are named."""
    digits = re.search(r"\d+", str(value).split(".")[0])
    if digits is None:
        return str(value).strip()
    return fmt % int(digits.group())


def _find_workbook(
    root: Path, names: tuple[str, ...] = (), pattern: str | None = None, what: str = ""
) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    if pattern:
        hits = sorted(p for p in root.glob(pattern) if not p.name.startswith("~$"))
        if hits:
            return hits[0]
    expected = " or ".join(names) if names else pattern
    raise DatasetPathError(
        f"{root}: the {what} annotation workbook is missing (expected "
        f"{expected}). Fix: copy the release's workbook into {root}."
    )


# Each parser returns the raw table in file numbering: subject, key (matches a folder
# key from the scanner), onset/apex/offset (float, NaN when not annotated), type,
# emotion, aus, row, and ``first`` (file number of the video's first frame, NaN when it
# has to come from disk).


def _parse_casme_sq(path: Path, log: list[str], options: dict) -> pd.DataFrame:
    book = _open_workbook(path)
    if len(book.sheet_names) < 3:
        raise DatasetError(
            f"{path}: expected 3 sheets (codes, naming rule1, naming rule2), "
            f"found {book.sheet_names}. Fix: use CAS(ME)^2code_final.xlsx as released."
        )
    codes = pd.read_excel(book, book.sheet_names[0], header=None, dtype=object)
    rule1 = pd.read_excel(book, book.sheet_names[1], header=None, dtype=object)
    rule2 = pd.read_excel(book, book.sheet_names[2], header=None, dtype=object)
    if codes.shape[1] < 8:
        raise DatasetError(
            f"{path}, sheet {book.sheet_names[0]!r}: expected 9 columns "
            f"(subject, name, onset, apex, offset, AUs, emotion, type, "
            f"self-report), found {codes.shape[1]}. Fix: use the released sheet."
        )
    codes = codes.iloc[:, :9].copy()
    codes.columns = [
        "subject_no",
        "name",
        "onset",
        "apex",
        "offset",
        "aus",
        "emotion",
        "type",
        "self_report",
    ][: codes.shape[1]]
    codes["row"] = codes.index + 1
    codes = _drop_blank(codes, ["subject_no", "name"])
    # The release has no header rows; a re-saved copy may have gained one: skip it.
    numbered = _to_numbers(codes["subject_no"]).notna()
    if not numbered.all():
        log.append(
            f"casme_sq: skipped {int((~numbered).sum())} rows of sheet "
            f"{book.sheet_names[0]!r} without a subject number (workbook rows "
            f"{codes.loc[~numbered, 'row'].tolist()[:5]})"
        )
        codes = codes[numbered].reset_index(drop=True)
    rule1 = rule1[_to_numbers(rule1[0]).notna() & _to_numbers(rule1[2]).notna() & rule1[1].notna()]
    rule2 = rule2[_to_numbers(rule2[0]).notna() & rule2[1].notna()]

    folder_of, participant_of = {}, {}
    for _, r in rule1.iterrows():
        number = int(float(r[2]))
        folder_of[number] = str(r[1]).strip()
        participant_of[number] = int(float(r[0]))
    code_of = {str(r[1]).strip(): str(int(float(r[0]))).zfill(4) for _, r in rule2.iterrows()}

    rows = []
    for _, r in codes.iterrows():
        if float(r["subject_no"]) != int(float(r["subject_no"])):
            raise DatasetError(
                f"{path}, row {r['row']}: subject number {r['subject_no']!r} is not "
                "a whole number. Fix: correct that cell."
            )
        number = int(float(r["subject_no"]))
        if number not in folder_of:
            raise DatasetError(
                f"{path}, row {r['row']}: subject number {number} is not in sheet "
                f"{book.sheet_names[1]!r}. Fix: add it to the naming rule."
            )
        prefix = str(r["name"]).strip().rsplit("_", 1)[0]
        if prefix not in code_of:
            raise DatasetError(
                f"{path}, row {r['row']}: video name {r['name']!r} has no code in "
                f"sheet {book.sheet_names[2]!r} (known: {sorted(code_of)}). "
                "Fix: add the naming rule for it."
            )
        rows.append(
            {
                "subject": folder_of[number],
                "key": f"{participant_of[number]}_{code_of[prefix]}",
                "type": _expression_type(r["type"], path, r["row"]),
                "emotion": _clean_text(r["emotion"]),
                "aus": _aus(r["aus"]),
                "row": r["row"],
            }
        )
    out = pd.DataFrame(rows)
    for col in ("onset", "apex", "offset"):
        out[col] = _numeric(codes.reset_index(drop=True), col, path).to_numpy()
    # 0 means "not annotated" in this workbook.
    out.loc[out["apex"] == 0, "apex"] = np.nan
    unset = out["offset"] == 0
    if unset.any():
        out.loc[unset, "offset"] = out.loc[unset, "apex"]
        log.append(
            f"casme_sq: {int(unset.sum())} rows had offset 0 (not annotated); the offset "
            "was set to the apex, as SOFTNet and the MEGC2020 baseline do"
        )
    out["first"] = 1.0
    return out


def _parse_samm_lv(path: Path, log: list[str], options: dict) -> pd.DataFrame:
    book = _open_workbook(path)
    sheet = "FACS_Movement_Only" if "FACS_Movement_Only" in book.sheet_names else None
    df = _read_headed_sheet(
        book,
        path,
        {
            "subject": ("Subject",),
            "filename": ("Filename",),
            "onset": ("Onset",),
            "apex": ("Apex",),
            "offset": ("Offset",),
            "type": ("Type",),
            "aus": ("Action Units",),
            "emotion": ("Estimated Emotion",),
        },
        sheet,
        optional=("aus", "emotion"),
    )
    df = _drop_blank(df, ["subject", "filename"])
    out = pd.DataFrame(
        {
            "subject": [_subject_code(v, "%03d") for v in df["subject"]],
            "key": [str(v).strip().rsplit("_", 1)[0] for v in df["filename"]],
            "onset": _numeric(df, "onset", path),
            "apex": _numeric(df, "apex", path),
            "offset": _numeric(df, "offset", path),
            "type": [_expression_type(v, path, r) for v, r in zip(df["type"], df["row"])],
            "emotion": [_clean_text(v) for v in df.get("emotion", pd.Series([None] * len(df)))],
            "aus": [_aus(v) for v in df.get("aus", pd.Series([None] * len(df)))],
            "row": df["row"],
        }
    )
    out.loc[out["apex"] < 0, "apex"] = np.nan
    zero = out["onset"] <= 0
    if zero.any():
        if options.get("keep_onset_zero"):
            out.loc[zero, "onset"] = 1.0
            log.append(
                f'samm_lv: {int(zero.sum())} rows have onset 0 ("extremely long"); '
                "kept with the onset set to the first frame (keep_onset_zero=True)"
            )
        else:
            out = out[~zero].reset_index(drop=True)
            log.append(
                f'samm_lv: dropped {int(zero.sum())} rows with onset 0 ("extremely long" '
                "macro-expressions), as SOFTNet does; keep_onset_zero=True keeps them"
            )
    out["first"] = 1.0
    return out


def _parse_smic_e(path: Path, log: list[str], options: dict) -> pd.DataFrame:
    book = _open_workbook(path)
    df = _read_headed_sheet(
        book,
        path,
        {
            "subject": ("Subject",),
            "filename": ("Filename",),
            "onset": ("OnsetF", "Onset"),
            "offset": ("OffsetF", "Offset"),
            "emotion": ("Emotion",),
            "first": ("FirstF",),
        },
    )
    numbers = {c: _to_numbers(df[c]) for c in ("onset", "offset", "first")}
    sample = (
        numbers["onset"].notna()
        & numbers["offset"].notna()
        & numbers["first"].notna()
        & df["filename"].notna()
    )
    # A row with a file name and some of the numbers is a sample with a typo, not text.
    partial = (
        ~sample
        & df["filename"].notna()
        & pd.concat([v.notna() for v in numbers.values()], axis=1).any(axis=1)
    )
    if partial.any():
        i = int(np.flatnonzero(partial.to_numpy())[0])
        for c, label in (("onset", "OnsetF"), ("offset", "OffsetF"), ("first", "FirstF")):
            _numeric(df.iloc[[i]].rename(columns={c: label}), label, path)
    # The release appends free-text rows after the samples; a sample row has a file name
    # and all three numbers, wherever it sits (a blank line must not end the list).
    if not sample.all():
        other = df[~sample]
        texty = other.drop(columns="row").notna().any(axis=1)
        if texty.any():
            log.append(
                f"smic_e_long: ignored {int(texty.sum())} non-sample rows of text (from "
                f"workbook row {other.loc[texty, 'row'].iloc[0]}; {int(sample.sum())} "
                "samples kept)"
            )
        df = df[sample]
        numbers = {c: v[sample] for c, v in numbers.items()}
    out = pd.DataFrame(
        {
            "subject": [_subject_code(v, "s%02d") for v in df["subject"]],
            "key": [str(v).strip() for v in df["filename"]],
            "onset": numbers["onset"].astype(float),
            "apex": np.nan,
            "offset": numbers["offset"].astype(float),
            "type": "micro",
            "emotion": [SMIC_EMOTION_ABBREV.get(_clean_text(v), _clean_text(v)) for v in df["emotion"]],
            "aus": "",
            "row": df["row"],
            "first": numbers["first"].astype(float),
        }
    )
    log.append(
        f"smic_e_long: onset/offset are absolute frame numbers; FirstF was subtracted for all {len(out)} rows"
    )
    return out


def _parse_clips(path: Path, frame_headers: tuple[str, ...], subject_fmt: str) -> pd.DataFrame:
    """Shared reader of the one-clip-per-row workbooks (CASME II, SAMM micro).

    ``frame_headers``: the accepted headings of the onset, apex and offset columns, ``{}``
    standing for ``Onset``, ``Apex`` or ``Offset``.
    """
    book = _open_workbook(path)
    columns = {"subject": ("Subject",), "filename": ("Filename",)}
    for part in ("Onset", "Apex", "Offset"):
        columns[part.lower()] = tuple(header.format(part) for header in frame_headers)
    columns |= {"aus": ("Action Units",), "emotion": ("Estimated Emotion", "Emotion")}
    df = _read_headed_sheet(book, path, columns)
    df = _drop_blank(df, ["subject", "filename"])
    subject = [_subject_code(v, subject_fmt) for v in df["subject"]]
    clip = [str(v).strip() for v in df["filename"]]
    out = pd.DataFrame(
        {
            "subject": subject,
            "key": [f"{s}_{c}" for s, c in zip(subject, clip)],
            # CASME II writes "/" and SAMM -1 for a missing apex.
            "onset": _numeric(df, "onset", path),
            "apex": _numeric(df, "apex", path, allow_missing=True),
            "offset": _numeric(df, "offset", path),
            "type": "micro",
            "emotion": [_clean_text(v) for v in df["emotion"]],
            "aus": [_aus(v) for v in df["aus"]],
            "row": df["row"],
            "first": np.nan,
        }
    )
    out.loc[out["apex"] < 0, "apex"] = np.nan
    out["sample"] = out["key"]
    return out


def _parse_casme2(path: Path, log: list[str], options: dict) -> pd.DataFrame:
    return _parse_clips(path, ("{}Frame", "{} Frame"), "sub%02d")


def _parse_samm(path: Path, log: list[str], options: dict) -> pd.DataFrame:
    return _parse_clips(path, ("{} Frame", "{}"), "%03d")


# --------------------------------------------------------------------------- layouts

# A scanner lists the video folders of a layout (without reading frames): subject,
# video (the public name), key (what the workbook calls it) and path.


def _subdirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan_casme_sq(frames: Path) -> pd.DataFrame:
    rows = []
    for subj in _subdirs(frames):
        for vid in _subdirs(subj):
            m = re.match(r"(\d+_\d{4})", vid.name)
            rows.append(
                {"subject": subj.name, "video": vid.name, "key": m.group(1) if m else vid.name, "path": vid}
            )
    return pd.DataFrame(rows)


def _scan_samm_lv(frames: Path) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "subject": _subject_code(v.name.split("_")[0], "%03d"),
                "video": v.name,
                "key": v.name,
                "path": v,
            }
            for v in _subdirs(frames)
        ]
    )


def _has_images(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES for e in entries)


def _scan_smic_e(frames: Path) -> pd.DataFrame:
    rows, stack = [], [(frames, 0)]
    while stack:
        folder, depth = stack.pop()
        for sub in _subdirs(folder):
            if _has_images(sub):
                rows.append(
                    {
                        "subject": _subject_code(sub.name.split("_")[0], "s%02d"),
                        "video": sub.name,
                        "key": sub.name,
                        "path": sub,
                    }
                )
            elif depth < 3:
                stack.append((sub, depth + 1))
    return pd.DataFrame(rows).sort_values("video").reset_index(drop=True) if rows else pd.DataFrame()


def _scan_two_level(frames: Path, subject_fmt: str) -> pd.DataFrame:
    rows = []
    for subj in _subdirs(frames):
        code = _subject_code(subj.name, subject_fmt)
        for clip in _subdirs(subj):
            rows.append(
                {"subject": code, "video": f"{code}_{clip.name}", "key": f"{code}_{clip.name}", "path": clip}
            )
    return pd.DataFrame(rows)


def _smic_clip_name(subject: str, clip: str) -> str:
    # Folders say s1_ne_01; the MEGC2019 list says s01_ne_01.
    return re.sub(r"^s\d+(?=_)", subject, clip)


def _scan_smic_hs(frames: Path) -> pd.DataFrame:
    rows = []
    for subj in _subdirs(frames):
        code = _subject_code(subj.name, "s%02d")
        for emotion in _subdirs(subj / "micro"):
            for clip in _subdirs(emotion):
                sample = f"{code}_{_smic_clip_name(code, clip.name)}"
                rows.append(
                    {
                        "subject": code,
                        "video": sample,
                        "key": sample,
                        "path": clip,
                        "emotion": emotion.name.lower(),
                    }
                )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _Layout:
    frames: Path  # frame folder, relative to root
    scan: object  # frames folder -> DataFrame of video folders
    workbook: object | None  # root -> workbook path
    parse: object | None  # (path, log, options) -> raw table
    frames_hint: str  # what the frame layout looks like, for errors


def _casme2_frames(root: Path) -> Path:
    for name in CASME2_FRAME_DIRS:
        if (root / name).is_dir():
            return Path(name)
    return Path(CASME2_FRAME_DIRS[0])


LAYOUTS = {
    "casme_sq": _Layout(
        Path("rawpic"),
        _scan_casme_sq,
        lambda r: _find_workbook(r, CASME_SQ_WORKBOOKS, what="CAS(ME)²"),
        _parse_casme_sq,
        "rawpic/s15/15_0101disgustingteeth/img001.jpg",
    ),
    "samm_lv": _Layout(
        Path("SAMM_longvideos"),
        _scan_samm_lv,
        lambda r: _find_workbook(r, SAMM_LV_WORKBOOKS, what="SAMM Long Videos"),
        _parse_samm_lv,
        "SAMM_longvideos/006_1/006_1_0001.jpg",
    ),
    "smic_e_long": _Layout(
        SMIC_E_DIR,
        _scan_smic_e,
        lambda r: _find_workbook(r, (str(SMIC_E_WORKBOOK),), what="SMIC-E"),
        _parse_smic_e,
        "SMIC-E_raw image/HS_long/<...>/<Filename>/image*.bmp",
    ),
    "casme2": _Layout(
        Path("CASME2_RAW_selected"),
        lambda f: _scan_two_level(f, "sub%02d"),
        lambda r: _find_workbook(r, pattern=CASME2_WORKBOOK_GLOB, what="CASME II"),
        _parse_casme2,
        "CASME2_RAW_selected/sub01/EP02_01f/img46.jpg",
    ),
    "samm": _Layout(
        Path("SAMM"),
        lambda f: _scan_two_level(f, "%03d"),
        lambda r: _find_workbook(r, pattern=SAMM_WORKBOOK_GLOB, what="SAMM"),
        _parse_samm,
        "SAMM/006/006_1_2/006_05562.jpg",
    ),
    "smic_hs": _Layout(
        SMIC_HS_DIR, _scan_smic_hs, None, None, "SMIC/HS/s1/micro/negative/s1_ne_01/image*.bmp"
    ),
}


def _workbook_hint(name: str) -> str:
    return {
        "casme_sq": CASME_SQ_WORKBOOKS[0],
        "samm_lv": SAMM_LV_WORKBOOKS[0],
        "smic_e_long": str(SMIC_E_WORKBOOK),
        "casme2": "CASME2-coding-20140508.xlsx",
        "samm": "SAMM_Micro_FACS_Codes_v2.xlsx",
    }.get(name, "no workbook: labels come from folders")


def _check_root(name: str, root: Path) -> None:
    """Reject a missing root and the usual wrong folders with a message that says which."""
    if not root.exists():
        raise DatasetPathError(
            f"{name}: root folder {root} does not exist. Fix: pass the folder "
            f"that holds the {name} release (e.g. <data_root>/{name})."
        )
    if not root.is_dir():
        raise DatasetPathError(
            f"{name}: root {root} is a file, not a folder. Fix: pass the folder that holds it."
        )
    if (root / name).is_dir():
        raise DatasetPathError(
            f"{name}: {root} looks like the data_root (it has a {name}/ "
            f"subfolder). Fix: pass {root / name}, or use "
            f"load_from_data_root({name!r}, {str(root)!r})."
        )
    layout = LAYOUTS[name]
    if (root / layout.frames).is_dir() or (
        name == "casme2" and any((root / d).is_dir() for d in CASME2_FRAME_DIRS)
    ):
        return
    top = layout.frames.parts[0]
    if root.name in (layout.frames.name, top) or (name == "casme2" and root.name in CASME2_FRAME_DIRS):
        raise DatasetPathError(
            f"{name}: {root} is the frames folder itself, not the dataset "
            f"root. Fix: pass its parent, the folder with {top}/ and the "
            "workbook."
        )
    try:
        if layout.workbook is not None:
            layout.workbook(root)
            return
    except DatasetPathError:
        pass
    nested = [p for p in _subdirs(root) if (p / layout.frames).is_dir()]
    hint = (
        f" It has {nested[0].name}/{layout.frames}: pass {nested[0]} instead."
        if nested
        else f" Expected {layout.frames_hint} below it."
    )
    loose = sorted(p.name for p in root.glob("*.xlsx"))
    if loose and not nested:
        hint += (
            f" It holds {', '.join(loose)}: the {name} layout expects its workbook "
            f"where docs/datasets.md says (e.g. {_workbook_hint(name)})."
        )
    raise DatasetPathError(
        f"{name}: {root} does not have the {name} layout (no {layout.frames}/ "
        f"folder and no annotation workbook).{hint}"
    )


# --------------------------------------------------------------------------- loading


def _finish(
    name: str, raw: pd.DataFrame, log: list[str], fractional: str, workbook: Path | None
) -> pd.DataFrame:
    """Fix missing apexes, convert numbering to indices, check intervals."""
    where = workbook or name
    if fractional not in FRACTIONAL_MODES:
        raise ValueError(f"fractional={fractional!r} is not one of {FRACTIONAL_MODES}")
    if raw.empty and workbook is not None:
        raise DatasetError(
            f"{workbook}: the workbook has no annotation rows (a header at most). Fix: use "
            "the release's workbook unmodified (re-download it)."
        )
    same = [c for c in raw.columns if c != "row"]
    repeated = raw.astype(str).duplicated(same, keep="first").to_numpy()
    if repeated.any():
        rows = raw.loc[repeated, "row"].tolist()
        log.append(
            f"{name}: {where} rows {rows} repeat earlier rows exactly; each expression is "
            "counted once. Fix: delete the repeated rows"
        )
        raw = raw[~repeated].reset_index(drop=True)
    frac = sum(
        int(((raw[c] - raw[c].round()).abs().fillna(0) >= FRAME_NOISE).sum())
        for c in ("onset", "apex", "offset")
    )
    if frac:
        how = "rounded to the nearest frame" if fractional == "round" else "truncated"
        log.append(f"{name}: {frac} non-integer frame numbers were {how} (fractional={fractional!r})")
    raw = raw.copy()
    no_first = raw["first"].isna()
    if no_first.any():
        raw.loc[no_first, "first"] = raw.loc[no_first, "onset"]
        log.append(
            f"{name}: {int(no_first.sum())} clips have no frames on disk; their first "
            "frame was taken to be the onset"
        )
    bad_offset = raw["offset"].isna()
    if bad_offset.any():
        rows = raw.loc[bad_offset, "row"].tolist()
        log.append(f"{name}: dropped {len(rows)} rows with neither offset nor apex (workbook rows {rows})")
        raw = raw[~bad_offset].reset_index(drop=True)
    onset = [to_frame_index(v, f, fractional) for v, f in zip(raw["onset"], raw["first"])]
    offset = [to_frame_index(v, f, fractional) for v, f in zip(raw["offset"], raw["first"])]
    apex = []
    n_middle = 0
    for a, f, on, off in zip(raw["apex"], raw["first"], onset, offset):
        if pd.isna(a):
            apex.append((on + off) // 2)
            n_middle += 1
        else:
            apex.append(to_frame_index(a, f, fractional))
    if n_middle:
        what = (
            "have no apex annotation"
            if name in ("smic_e_long", "smic_hs")
            else "had apex 0, -1 or '/' (not annotated)"
        )
        log.append(f"{name}: {n_middle} rows {what}; the apex was set to the middle (onset+offset)//2")
    out = raw.drop(columns=["first"]).copy()
    out["onset"], out["apex"], out["offset"] = onset, apex, offset
    reversed_ = out["offset"] < out["onset"]
    if reversed_.any():
        r = out[reversed_].iloc[0]
        raise DatasetError(
            f"{where}, row {r['row']}: offset {r['offset']} comes before onset "
            f"{r['onset']} (0-based indices) for video {r['key']}. Fix: correct "
            "the row's onset/offset."
        )
    outside = (out["apex"] < out["onset"]) | (out["apex"] > out["offset"])
    if outside.any():
        log.append(
            f"{name}: {int(outside.sum())} rows have the apex outside [onset, offset] "
            f"(workbook rows {out.loc[outside, 'row'].tolist()}); kept as annotated"
        )
    out.insert(0, "dataset", name)
    return out


def load_annotations(
    name: str, workbook: str | os.PathLike, fractional: str = "round", keep_onset_zero: bool = False
) -> pd.DataFrame:
    """Read a workbook alone (no frames) into the standard table.

    Without frames the video names are the workbook's keys: ``<participant>_<code>`` for
    CAS(ME)² (``15_0101``; the folder name adds a suffix), and CASME II / SAMM clips are
    assumed to start at their onset. ``df.attrs["fix_log"]`` lists the fixes.
    """
    if name not in LAYOUTS or LAYOUTS[name].parse is None:
        raise ValueError(
            f"{name!r} has no annotation workbook; load_annotations accepts "
            f"{[k for k, v in LAYOUTS.items() if v.parse is not None]}"
        )
    path = Path(workbook)
    log: list[str] = []
    raw = LAYOUTS[name].parse(path, log, {"keep_onset_zero": keep_onset_zero})
    table = _finish(name, raw, log, fractional, path)
    table = _standardize(name, table.rename(columns={"key": "video"}))
    table.attrs["fix_log"] = log
    return table


def _standardize(name: str, table: pd.DataFrame) -> pd.DataFrame:
    columns = STANDARD_COLUMNS + (["sample"] if name in RECOGNITION or "sample" in table else [])
    if "sample" in columns and "sample" not in table:
        table = table.assign(sample=table["video"])
    out = table[columns].reset_index(drop=True)
    for c in ("onset", "apex", "offset"):
        out[c] = out[c].astype(int)
    return out


def _frame_info(paths: pd.Series) -> list[FrameFolder]:
    return [scan_frames(p) for p in paths]


def _check_frames(
    name: str,
    found: pd.DataFrame,
    folders: list[FrameFolder],
    known_first: pd.Series,
    log: list[str],
    require_frames: bool,
) -> list[str]:
    """Anchor each folder at its first frame number; report gaps, duplicates, stray files.

    ``known_first`` holds the first number the annotations count from, per key (1 for
    CAS(ME)² and SAMM-LV, FirstF for SMIC-E); other folders start at their smallest
    number. Identical duplicates are merged with a warning; anything that would put a
    frame at the wrong index raises (``require_frames``) or is returned for the summary.
    """
    problems: list[str] = []
    for i, (key, folder) in enumerate(zip(found["key"], folders)):
        anchor = known_first.get(key)
        anchor = None if anchor is None or pd.isna(anchor) else int(anchor)
        for line in folder.merged:
            warnings.warn(line, stacklevel=3)
            log.append(line)
        problems += folder.problems(anchor)
        if folder.by_number:
            found.loc[found.index[i], "first_number"] = float(folder.first(anchor))
            found.loc[found.index[i], "n_frames"] = folder.n_frames(anchor)
    if problems and require_frames:
        more = (
            (f" ({len(problems)} frame problems in all; `melib data summary {name} --root ROOT` lists them)")
            if len(problems) > 1
            else ""
        )
        raise DatasetError(problems[0] + more)
    return problems


def load_dataset(
    name: str,
    root: str | os.PathLike,
    fractional: str = "round",
    keep_onset_zero: bool = False,
    require_frames: bool = True,
    sample_list: str | bool = "auto",
) -> Dataset:
    """Read one dataset from its release layout under ``root`` (the dataset's own folder).

    Args:
        name: ``casme_sq``, ``samm_lv``, ``smic_e_long``, ``casme2``, ``samm``,
            ``smic_hs`` or ``megc2019`` (then ``root`` is the data_root).
        fractional: ``"round"`` (default, MEGC baseline) or ``"floor"`` (SOFTNet) for
            SAMM-LV's non-integer frame numbers.
        keep_onset_zero: keep SAMM-LV's 10 onset-0 macro rows (onset set to frame 0).
        require_frames: raise when an annotated video has no frame folder (default).
            False keeps going and records what is missing (``melib data summary`` does).
        sample_list: megc2019 only, see :func:`load_megc2019`.

    Raises:
        DatasetPathError: missing root, wrong folder, missing workbook or frames.
        DatasetError: missing column, bad cell, annotation past the end of its video.
    """
    if name == COMPOSITE:
        return load_megc2019(root, sample_list=sample_list, require_frames=require_frames)
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS + (COMPOSITE,)}")
    root = Path(root).expanduser()
    _check_root(name, root)
    layout = LAYOUTS[name]
    log: list[str] = []
    frames_rel = _casme2_frames(root) if name == "casme2" else layout.frames
    frames_dir = root / frames_rel
    found = layout.scan(frames_dir) if frames_dir.is_dir() else pd.DataFrame()
    if found.empty:
        found = pd.DataFrame(columns=["subject", "video", "key", "path"])
        msg = (
            f"{name}: no video folders under {frames_dir} (expected {layout.frames_hint}). "
            "Fix: extract the frames there."
        )
        if require_frames or layout.parse is None:
            raise DatasetPathError(msg)
        log.append(msg)
    folders = _frame_info(found["path"])
    found["n_frames"] = [f.n_frames() for f in folders]
    found["first_number"] = [float(f.first()) if f.by_number else math.nan for f in folders]
    empty = [f for f in folders if not f.by_number]
    if empty and require_frames:
        if empty[0].numberless:
            raise DatasetError(empty[0].problems()[0])
        raise DatasetPathError(
            f"{name}: video folder {empty[0].folder} has no image files "
            f"({len(empty)} such folders). Fix: extract its frames "
            f"({layout.frames_hint})."
        )

    workbook = None
    if layout.parse is not None:
        workbook = layout.workbook(root)
        raw = layout.parse(workbook, log, {"keep_onset_zero": keep_onset_zero})
    else:
        raw = _smic_hs_table(found)
    known_first = raw.dropna(subset=["first"]).drop_duplicates("key").set_index("key")["first"]
    problems = _check_frames(name, found, folders, known_first, log, require_frames)
    raw = _attach_videos(name, raw, found, log, require_frames, workbook)
    table = _finish(name, raw, log, fractional, workbook)
    _check_bounds(name, table, found, workbook)
    videos = found.assign(dataset=name, fps=float(FPS[name]))
    videos = videos[VIDEO_COLUMNS].reset_index(drop=True)
    return Dataset(
        name=name,
        root=root,
        fps=float(FPS[name]),
        annotations=_standardize(name, table),
        videos=videos,
        fix_log=log,
        frame_problems=problems,
    )


def _smic_hs_table(found: pd.DataFrame) -> pd.DataFrame:
    # The folders are the labels: each clip runs onset to offset and the apex is its middle.
    return pd.DataFrame(
        {
            "subject": found["subject"],
            "key": found["key"],
            "onset": found["first_number"],
            "apex": np.nan,
            "offset": found["first_number"] + found["n_frames"] - 1,
            "type": "micro",
            "emotion": found["emotion"],
            "aus": "",
            "row": range(1, len(found) + 1),
            "first": found["first_number"],
            "sample": found["key"],
        }
    )


def _attach_videos(
    name: str,
    raw: pd.DataFrame,
    found: pd.DataFrame,
    log: list[str],
    require_frames: bool,
    workbook: Path | None,
) -> pd.DataFrame:
    """Map workbook keys to folders; take the first frame number from disk where needed."""
    by_key = found.drop_duplicates("key").set_index("key")
    missing = sorted(set(raw["key"]) - set(by_key.index))
    if missing:
        example = raw[raw["key"] == missing[0]].iloc[0]
        msg = (
            f"{name}: {len(missing)} annotated videos have no frame folder, e.g. "
            f"{missing[0]!r} (subject {example['subject']}, {workbook} row {example['row']}). "
            f"Fix: extract its frames ({LAYOUTS[name].frames_hint})."
        )
        if require_frames:
            raise DatasetPathError(msg)
        log.append(msg)
    raw = raw.copy()
    raw["video"] = [by_key["video"].get(k, k) for k in raw["key"]]
    raw["first"] = raw["first"].fillna(raw["key"].map(by_key["first_number"]))
    return raw


def _check_bounds(name: str, table: pd.DataFrame, found: pd.DataFrame, workbook) -> None:
    lengths = found.drop_duplicates("key").set_index("key")["n_frames"]
    n = table["key"].map(lengths)
    beyond = n.notna() & ((table["offset"] >= n) | (table["onset"] < 0))
    if beyond.any():
        r = table[beyond].iloc[0]
        raise DatasetError(
            f"{name}: {workbook or 'annotation'} row {r['row']} (video {r['video']}) spans "
            f"frames {r['onset']}..{r['offset']} (0-based) but the video folder has "
            f"{int(n[beyond].iloc[0])} frames (0..{int(n[beyond].iloc[0]) - 1}); "
            f"{int(beyond.sum())} rows are affected. Fix: check the row's onset/offset "
            "and that the folder holds every frame."
        )


def load_from_data_root(name: str, data_root: str | os.PathLike, **options) -> Dataset:
    """``load_dataset(name, data_root/name)``; for megc2019 the data_root itself."""
    if not isinstance(data_root, (str, os.PathLike)) or not str(data_root):
        raise DatasetPathError(
            f"data_root={data_root!r}: give the path of the folder with one subfolder per "
            f"dataset ({', '.join(DATASETS)})."
        )
    data_root = Path(data_root).expanduser()
    if not data_root.is_dir():
        raise DatasetPathError(
            f"data_root {data_root} does not exist. Fix: pass the folder with "
            f"one subfolder per dataset ({', '.join(DATASETS)})."
        )
    return load_dataset(name, data_root if name == COMPOSITE else data_root / name, **options)


# --------------------------------------------------------------------------- MEGC2019


def megc2019_samples() -> pd.DataFrame:
    """The authoritative MEGC2019 composite list: dataset, subject, sample (442 rows)."""
    text = resources.files("melib").joinpath("resources", "megc2019_composite_samples.txt").read_text()
    rows = []
    for line in text.split():
        if line.startswith("sub"):
            dataset = "casme2"
        elif re.match(r"s\d+_", line):
            dataset = "smic_hs"
        else:
            dataset = "samm"
        rows.append({"dataset": dataset, "subject": line.split("_", 1)[0], "sample": line})
    return pd.DataFrame(rows)


def load_megc2019(
    data_root: str | os.PathLike, sample_list: str | bool = "auto", require_frames: bool = True
) -> Dataset:
    """The MEGC2019 composite (negative/positive/surprise) from data_root's casme2, samm, smic_hs.

    ``sample_list``: True keeps exactly the official 442 samples (an error lists any that
    are missing); False keeps every clip whose emotion maps to a class; "auto" uses the
    list when the data holds all 442 (a complete licensed copy) and the emotion rule
    otherwise (the synthetic corpus, a partial copy), saying so in the fix log.
    """
    data_root = Path(data_root).expanduser()
    parts = [load_from_data_root(key, data_root, require_frames=require_frames) for key in RECOGNITION]
    log = [line for part in parts for line in part.fix_log]
    table = pd.concat([p.annotations for p in parts], ignore_index=True)
    table["source_emotion"] = table["emotion"]
    table["emotion"] = [
        MEGC2019_EMOTION_MAP[d].get(e) for d, e in zip(table["dataset"], table["source_emotion"])
    ]
    listed = megc2019_samples()
    use_list = sample_list
    n_present = int(listed["sample"].isin(table["sample"]).sum())
    if sample_list == "auto":
        use_list = n_present == len(listed)
    if use_list:
        absent = sorted(set(listed["sample"]) - set(table["sample"]))
        if absent:
            raise DatasetError(
                f"megc2019: {len(absent)} of the 442 listed samples are not in {data_root}, "
                f"e.g. {absent[:3]}. Fix: complete casme2/, samm/ and smic_hs/, or pass "
                "sample_list=False to use the emotion rule instead."
            )
        unmapped = table[table["sample"].isin(listed["sample"]) & table["emotion"].isna()]
        if len(unmapped):
            raise DatasetError(
                f"megc2019: listed sample {unmapped['sample'].iloc[0]} has emotion "
                f"{unmapped['source_emotion'].iloc[0]!r}, which maps to no class."
            )
        order = {s: i for i, s in enumerate(listed["sample"])}
        table = table[table["sample"].isin(order)]
        table = table.iloc[np.argsort(table["sample"].map(order).to_numpy())]
        log.append(f"megc2019: kept the {len(table)} samples of the official list")
    else:
        before = len(table)
        table = table[table["emotion"].notna()]
        log.append(
            f"megc2019: kept {len(table)} of {before} clips whose emotion maps to "
            f"negative/positive/surprise ({n_present} of the {len(listed)} official "
            "samples are present, so the official list was not applied; "
            "sample_list=True insists on it)"
        )
    videos = pd.concat([p.videos for p in parts], ignore_index=True)
    return Dataset(
        name=COMPOSITE,
        root=data_root,
        fps=None,
        annotations=table.reset_index(drop=True),
        videos=videos,
        fix_log=log,
        frame_problems=[line for part in parts for line in part.frame_problems],
    )


# --------------------------------------------------------------------------- summary


def summarize(ds: Dataset) -> dict:
    """Counts per type, emotion and subject, mean durations, and the frames found."""
    a = ds.annotations
    duration = a["offset"] - a["onset"]
    fps = a["dataset"].map(FPS).astype(float)
    with_frames = ds.videos[ds.videos["n_frames"] > 0]
    annotated = set(a["video"])
    return {
        "dataset": ds.name,
        "root": str(ds.root),
        "fps": ds.fps,
        "expressions": int(len(a)),
        "subjects": int(a["subject"].nunique()),
        "per_type": {k: int(v) for k, v in a["type"].value_counts().sort_index().items()},
        "per_emotion": {k: int(v) for k, v in a["emotion"].value_counts().sort_index().items()},
        "per_subject": {k: int(v) for k, v in a["subject"].value_counts().sort_index().items()},
        "mean_duration_frames": {t: round(float(d.mean()), 2) for t, d in duration.groupby(a["type"])},
        "mean_duration_s": {t: round(float(d.mean()), 3) for t, d in (duration / fps).groupby(a["type"])},
        "videos_annotated": len(annotated),
        "videos_found": int(len(with_frames)),
        "frames_found": int(with_frames["n_frames"].sum()),
        "annotated_videos_without_frames": sorted(annotated - set(with_frames["video"])),
        "fix_log": list(ds.fix_log),
        "frame_problems": list(ds.frame_problems),
    }


def _format_summary(s: dict) -> str:
    lines = [
        f"{s['dataset']}  ({s['root']})",
        f"  fps: {s['fps'] if s['fps'] is not None else 'mixed'}",
        f"  expressions: {s['expressions']} from {s['subjects']} subjects",
        "  per type:    " + ", ".join(f"{k} {v}" for k, v in s["per_type"].items()),
        "  per emotion: " + ", ".join(f"{k} {v}" for k, v in s["per_emotion"].items()),
        "  mean duration (offset-onset): "
        + ", ".join(
            f"{t} {s['mean_duration_frames'][t]:.2f} frames ({s['mean_duration_s'][t]:.3f} s)"
            for t in s["mean_duration_frames"]
        ),
        f"  videos: {s['videos_annotated']} annotated, {s['videos_found']} with frames; "
        f"{s['frames_found']} frames found",
    ]
    if s["annotated_videos_without_frames"]:
        missing = s["annotated_videos_without_frames"]
        lines.append(
            f"  annotated videos without frames: {len(missing)} "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})"
        )
    lines.append("  per subject: " + ", ".join(f"{k} {v}" for k, v in s["per_subject"].items()))
    if s["fix_log"]:
        lines.append("  fixes:")
        lines += [f"    - {line}" for line in s["fix_log"]]
    if s.get("frame_problems"):
        lines.append(
            f"  frame problems ({len(s['frame_problems'])}; those videos cannot be "
            "read until they are fixed):"
        )
        lines += [f"    - {line}" for line in s["frame_problems"]]
    return "\n".join(lines)


def cli_summary(args: argparse.Namespace) -> int:
    """``melib data summary DATASET --root DIR [--json]``."""
    ds = load_dataset(args.dataset, args.root, require_frames=False)
    s = summarize(ds)
    print(json.dumps(s, indent=2) if args.json else _format_summary(s))
    return 0


def summary_table(datasets: list[Dataset]) -> pd.DataFrame:
    """One row per dataset: expressions by type, subjects, videos, frames, mean durations."""
    rows = []
    for ds in datasets:
        s = summarize(ds)
        fps = "mixed" if ds.fps is None else (int(ds.fps) if float(ds.fps).is_integer() else ds.fps)
        row = {
            "dataset": ds.name,
            "fps": fps,
            "subjects": s["subjects"],
            "videos": s["videos_found"],
            "frames": s["frames_found"],
            "expressions": s["expressions"],
        }
        for t in ("micro", "macro"):
            row[t] = s["per_type"].get(t, 0)
            dur = s["mean_duration_frames"].get(t)
            row[f"{t} mean frames"] = dur if dur is not None else float("nan")
        row["emotions"] = ", ".join(f"{k} {v}" for k, v in s["per_emotion"].items())
        rows.append(row)
    return pd.DataFrame(rows).set_index("dataset")
