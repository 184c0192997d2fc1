"""``melib eval spotting`` and ``melib eval recognition``: CSV in, table or JSON out.

CSV formats (MEGC-submission style; a header line, comma separated, extra columns
ignored, blank lines skipped, line numbers in errors count the header as line 1):

Spotting predictions (``--pred``)::

    video,onset,offset,type,score
    s15_0101,120,141,macro,0.83

Spotting ground truth (``--gt``)::

    video,onset,offset,type
    s15_0101,118,140,macro

``onset``/``offset`` are integer frames of an inclusive interval, both files in the
same numbering (melib writes 0-based indices; IoU is the same for 1-based files).
``type`` is ``micro`` or ``macro`` (``micro-expression``/``macro-expression`` are
accepted). ``score`` is the peak confidence used for AP; without it AP is not reported.
A file with only the header means "no intervals" (all GT missed, or nothing spotted).
Frames are whole numbers from 0 to 2**31 - 1. A ground-truth row repeated exactly is
counted once, with a warning naming the line; predictions whose videos share no name
with the ground truth get a warning too (F1 would be 0).

Recognition predictions (``--pred``)::

    sample,subject,dataset,true,predicted
    sub01_EP02_01f,sub01,casme2,negative,surprise

``dataset`` is optional; with it the table breaks the composite down per dataset.
Labels are compared without case or surrounding spaces (``Negative`` is ``negative``).
A sample listed twice with the same labels is counted once (a warning names the line);
listed twice with different labels it is an error.

Files are read as UTF-8 (with or without a byte-order mark) or UTF-16 with a BOM; a
file in another encoding is read as Windows-1252 / Latin-1, with a warning naming it.
Warnings go to stderr, one line each, prefixed ``melib eval: warning:``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import warnings
from pathlib import Path

import pandas as pd

from melib.evaluation.recognition import RECOGNITION_COLUMNS, evaluate_recognition
from melib.evaluation.spotting import (
    EXPRESSION_TYPES,
    MAX_FRAME,
    EvaluationWarning,
    evaluate_spotting,
    normalize_type,
)


def read_text(path: Path) -> str:
    """The text of a CSV: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252/Latin-1."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{path}: starts with a UTF-16 byte-order mark but is not "
                f"valid UTF-16 ({exc.reason}); save it as UTF-8"
            ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    for encoding in ("cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        line = raw[:first_bad].count(b"\n") + 1
        warnings.warn(
            f"{path}: line {line}: not UTF-8 text; read as {encoding} "
            "(save the file as UTF-8 to silence this)",
            EvaluationWarning,
            stacklevel=2,
        )
        return text
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _read_rows(path, required: list[str], what: str):
    """(header, [(line number, {column: text})]) with clear errors for bad files."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} file {path} is a folder; give the CSV file itself")
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = None
    rows = []
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if header is None:
                header = [field.strip().lower() for field in fields]
                repeated = sorted({c for c in header if c and header.count(c) > 1})
                if repeated:
                    raise ValueError(
                        f"{path}: line {reader.line_num}: column(s) {repeated} appear more "
                        "than once in the header; keep one column of each name"
                    )
                missing = [column for column in required if column not in header]
                if missing:
                    raise ValueError(
                        f"{path}: line {reader.line_num}: missing column(s) "
                        f"{missing} in header {header}; expected "
                        f"{','.join(required)}"
                    )
                continue
            if len(fields) != len(header):
                raise ValueError(
                    f"{path}: line {reader.line_num}: {len(fields)} fields but the header has {len(header)}"
                )
            rows.append((reader.line_num, dict(zip(header, (f.strip() for f in fields)))))
    except csv.Error as exc:
        raise ValueError(
            f"{path}: line {reader.line_num}: not a readable CSV row ({exc}); "
            "check the quoting and that it is a text file"
        ) from None
    if header is None:
        raise ValueError(f"{path}: the file is empty; expected a header line {','.join(required)}")
    return header, rows


def _integer(text: str, path, line: int, column: str) -> int:
    try:
        value = int(text)  # exact, however long
    except ValueError:
        try:
            number = float(text)  # "12.0", "1e3"
        except ValueError:
            number = math.nan
        value = int(number) if math.isfinite(number) and number == int(number) else None
    if value is None:
        raise ValueError(f"{path}: line {line}: {column} must be an integer frame number, got {text!r}")
    if value < 0:
        raise ValueError(
            f"{path}: line {line}: {column} {text!r} is negative; frames are "
            "0-based indices (or the files' numbers), never below 0"
        )
    if value > MAX_FRAME:
        raise ValueError(
            f"{path}: line {line}: {column} {text!r} is too large for a frame "
            f"number (at most {MAX_FRAME}); check the column"
        )
    return value


def read_intervals_csv(path, with_score: bool) -> pd.DataFrame:
    """Read a spotting CSV (predictions when ``with_score``) into a validated table."""
    what = "predictions" if with_score else "ground truth"
    header, rows = _read_rows(path, ["video", "onset", "offset", "type"], what)
    has_score = "score" in header
    records = []
    for line, fields in rows:
        if not fields["video"]:
            raise ValueError(f"{path}: line {line}: empty video name")
        onset = _integer(fields["onset"], path, line, "onset")
        offset = _integer(fields["offset"], path, line, "offset")
        if onset > offset:
            raise ValueError(
                f"{path}: line {line}: onset {onset} is after offset {offset} "
                "(intervals are inclusive [onset, offset])"
            )
        kind = normalize_type(fields["type"])
        if kind is None:
            raise ValueError(
                f"{path}: line {line}: unknown type {fields['type']!r}; use {' or '.join(EXPRESSION_TYPES)}"
            )
        record = {"video": fields["video"], "onset": onset, "offset": offset, "type": kind}
        if with_score and has_score:
            try:
                record["score"] = float(fields["score"])
            except ValueError:
                record["score"] = math.nan
            if not math.isfinite(record["score"]):
                raise ValueError(
                    f"{path}: line {line}: score must be a finite number, got {fields['score']!r}"
                )
        records.append(record)
    columns = ["video", "onset", "offset", "type"] + (["score"] if with_score and has_score else [])
    frame = pd.DataFrame(records, columns=columns, index=[line for line, _ in rows])
    frame = frame.astype({"video": str, "onset": "int64", "offset": "int64", "type": str})
    # Later checks (repeated rows) then name the file and line, not a row position.
    frame.attrs.update(source=str(path), rows="line")
    return frame


def read_recognition_csv(path) -> pd.DataFrame:
    """Read ``sample,subject,[dataset,]true,predicted`` with line-numbered errors."""
    header, rows = _read_rows(path, ["sample", "subject", "true", "predicted"], "recognition predictions")
    if not rows:
        raise ValueError(f"{path}: no predictions after the header")
    columns = [column for column in RECOGNITION_COLUMNS if column in header]
    for line, fields in rows:
        for column in columns:
            if not fields[column]:
                raise ValueError(f"{path}: line {line}: empty {column}")
    frame = pd.DataFrame(
        [{column: fields[column] for column in columns} for _, fields in rows],
        columns=columns,
        index=[line for line, _ in rows],
    )
    frame.attrs.update(source=str(path), rows="line")
    return frame


def _report_warnings(caught) -> set[str]:
    """Print each warning as one line on stderr; return their texts."""
    texts = []
    for item in caught:
        text = str(item.message)
        if text not in texts:
            texts.append(text)
            print(f"melib eval: warning: {text}", file=sys.stderr)
    return set(texts)


def cli_eval_spotting(args) -> int:
    if not 0.0 < args.iou <= 1.0:
        raise ValueError(f"--iou {args.iou}: the IoU threshold must be in (0, 1], e.g. 0.5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = read_intervals_csv(args.pred, with_score=True)
        gt = read_intervals_csv(args.gt, with_score=False)
        result = evaluate_spotting(
            pred, gt, iou_threshold=args.iou, only_videos_with_type=args.only_videos_with_type
        )
    warned = _report_warnings(caught)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    scope = (
        "videos containing each type (SOFTNet authors' variant)"
        if args.only_videos_with_type
        else "all videos (MEGC protocol)"
    )
    print(f"MEGC spotting metric: IoU >= {args.iou}, maximum matching, {scope}")
    print(f"predictions: {args.pred} ({len(pred)} intervals); ground truth: {args.gt} ({len(gt)} intervals)")
    print(result)
    print("AP = AP@[.5:.95] (COCO 101-point interpolation over the peak scores)")
    for note in result.notes:
        if note not in warned:
            print(f"note: {note}")
    return 0


def _warn_unknown_predictions(frame: pd.DataFrame, path) -> None:
    """A warning per predicted label that is no true label (a typo such as 'suprise')."""
    true = {str(v).strip().lower() for v in frame["true"]}
    shown = set()
    for line, value in frame["predicted"].items():
        label = str(value).strip().lower()
        if label not in true and label not in shown:
            shown.add(label)
            warnings.warn(
                f"{path}: line {line}: predicted label {value!r} is not among the true "
                f"labels ({', '.join(sorted(true))}); it always counts as wrong. Check "
                "its spelling",
                EvaluationWarning,
                stacklevel=2,
            )


def cli_eval_recognition(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_recognition_csv(args.pred)
        _warn_unknown_predictions(frame, args.pred)
        result = evaluate_recognition(frame, per_fold_mean=args.per_fold_mean)
    _report_warnings(caught)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    averaging = "mean over subjects" if args.per_fold_mean else "pooled over all folds (MEGC2019)"
    print(
        f"recognition: {args.pred}, {int(result.table.loc['all', 'n'])} samples, "
        f"{result.per_fold.shape[0]} subjects; UF1/UAR {averaging}"
    )
    print(result)
    print("\nconfusion matrix (rows true, columns predicted):")
    print(result.confusion.to_string())
    return 0
