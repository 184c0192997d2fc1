"""The MEGC2020/2021 interval spotting metric, and the authors' variants of it.

Inputs are ``pandas.DataFrame`` objects with one row per interval:

- predictions: ``video, onset, offset, type[, score]``
- ground truth: ``video, onset, offset, type``

``onset`` and ``offset`` are integer frame numbers of an **inclusive** interval (melib
uses 0-based indices, but IoU does not change when both files share any offset).
``type`` is ``"micro"`` or ``"macro"``. Extra columns (``subject``, ``fold``...) are
ignored, so predictions of all LOSO folds are scored by concatenating them.

The rules
---------
* ``IoU = (min(off) - max(on) + 1) / union`` on inclusive frame ranges, so ``[0, 9]``
  and ``[5, 14]`` share 5 of 15 frames (IoU 1/3) and adjacent intervals (``[0, 4]``,
  ``[5, 9]``) have IoU 0.
* A prediction and a ground truth can match only when they are in the same video, have
  the same type and ``IoU >= iou_threshold`` (0.5 by default; exactly 0.5 matches).
  The comparison allows 1e-9 of slack so that a decimal threshold such as 0.65 is met
  by an IoU of exactly 13/20 despite binary rounding; distinct IoUs of integer
  intervals differ by far more than that.
* Each ground truth matches at most one prediction and each prediction at most one
  ground truth.
* **Assignment rule: maximum bipartite matching** per (video, type). TP is the largest
  number of disjoint prediction/ground-truth pairs with IoU above the threshold. We
  chose it over greedy assignment because the counts then depend only on the two sets
  of intervals, never on row order, confidences or tie-breaking, which makes F1
  reproducible by anyone with the two CSV files (and lets a brute-force check verify
  it). Consequences: one prediction overlapping two ground truths is 1 TP + 1 FN; two
  predictions on one ground truth are 1 TP + 1 FP; and when greedy would let a
  prediction "steal" a ground truth that a second prediction needed, the matching
  re-routes so both count.
* FP = predictions - TP and FN = ground truths - TP, summed over every video (and so
  over every fold) before ``P = TP/(TP+FP)``, ``R = TP/(TP+FN)`` and
  ``F1 = 2TP/(2TP+FP+FN)``. A video with predictions but no ground truth adds only FPs;
  a video with ground truth but no predictions adds only FNs. Ratios whose
  denominator is 0 are NaN (``null`` in JSON).
* Rows ``macro``, ``micro`` and ``overall``; ``overall`` pools the counts of both
  types (it is not a mean of F1s).
* ``only_videos_with_type=True`` is the SOFTNet authors' variant: a type is scored only
  on the videos whose ground truth contains that type (their FPs elsewhere vanish).
  The MEGC protocol, and our default, scores every video.

Average precision
-----------------
``AP`` is AP@[.5:.95], the mean of AP over IoU thresholds 0.50, 0.55, ..., 0.95;
``AP50`` is AP at 0.5. Predictions of a row are ranked by ``score`` (the peak score,
highest first) across all videos; the ``overall`` row ranks both types together (each
prediction still matches only its own type), which assumes the micro and macro scores
are on one scale. At each rank the matching above is grown by one
prediction with an augmenting-path step, so a prediction is a TP exactly when it
enlarges the maximum matching of the predictions ranked so far; the final TP equals
the F1 count. Tied scores form one operating point (precision/recall are read only
after the whole tie group), so AP never depends on row order.

Interpolation (default ``"coco101"``): COCO's 101-point interpolated AP: precision is
replaced by its running maximum from the high-recall end, then read at the first
operating point reaching each recall in 0, 0.01, ..., 1.00 (0 where that recall is
never reached) and averaged. ``"all"`` gives the all-point (VOC2010+) area under the
same interpolated curve. AP is NaN when the row has no ground truth, 0 when it has
ground truth but no predictions.

Authors' quirks, kept for the teaching notebook (never use them to report results)
----------------------------------------------------------------------------------
* :func:`ap_constant_confidence`: SOFTNet's published AP code gives every prediction
  the same confidence, so ranking falls back to the order predictions were written
  in. We emulate that by ranking in row order, one operating point per row.
* :func:`lbcnn_double_counting`: the LBCNN code counts every prediction that overlaps
  some ground truth as a TP, so one ground truth can be counted several times.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EXPRESSION_TYPES = ("macro", "micro")
AP_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * step, 2) for step in range(10))
INTERPOLATIONS = ("coco101", "all")
IOU_SLACK = 1e-9
# Frame numbers beyond this are input errors (no video is that long); it also keeps every
# interval length and union far inside int64.
MAX_FRAME = 2**31 - 1


class EvaluationWarning(UserWarning):
    """Input the metrics can score but that is probably a mistake (it names the row)."""


_TYPE_ALIASES = {
    "micro": "micro",
    "macro": "macro",
    "micro-expression": "micro",
    "macro-expression": "macro",
}


# ----------------------------------------------------------------------------- input


def normalize_type(value) -> str | None:
    """The canonical type name for ``value`` ("micro" or "macro"), None if unknown."""
    return _TYPE_ALIASES.get(str(value).strip().lower())


def _shown(value) -> str:
    """A cell for a message: ``-3``, not ``np.int64(-3)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def row_namer(frame: pd.DataFrame, what: str):
    """(name of the table, function position -> "row N" / "line N") for messages.

    Tables read from a CSV by ``melib.evaluation.cli`` carry ``attrs`` ``source`` (the
    path) and ``rows="line"`` with the file's line numbers as index, so errors found
    after reading still point at the line; otherwise rows are 0-based positions.
    """
    source = frame.attrs.get("source") if isinstance(frame, pd.DataFrame) else None
    if source and frame.attrs.get("rows") == "line":
        return str(source), lambda position: f"line {frame.index[position]}"
    return what, lambda position: f"row {position}"


def validate_intervals(
    frame: pd.DataFrame, what: str = "predictions", require_score: bool = False, duplicates: str = "keep"
) -> pd.DataFrame:
    """Check an interval table and return a clean copy.

    The copy has ``video`` (str, stripped), ``onset``/``offset`` (int64, 0 ..
    ``MAX_FRAME``), ``type`` ("micro" or "macro") and ``score`` (float64, only when
    present), with the input's index. Errors name the first bad row by its 0-based
    position. ``duplicates="drop"`` (for ground truth) keeps the first of rows that
    repeat the same video, onset, offset and type, with an :class:`EvaluationWarning`
    naming them: a repeated annotation is one expression, not two.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}")
    if duplicates not in ("keep", "drop"):
        raise ValueError(f"duplicates must be 'keep' or 'drop', got {duplicates!r}")
    what, where = row_namer(frame, what)
    required = ["video", "onset", "offset", "type"] + (["score"] if require_score else [])
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{what}: missing column(s) {missing}; the table needs {required} (found {list(frame.columns)})"
        )

    def first_bad(mask) -> int:
        return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])

    clean = pd.DataFrame(index=frame.index)
    blank = frame["video"].isna().to_numpy() | (frame["video"].astype(str).str.strip() == "").to_numpy()
    if blank.any():
        raise ValueError(f"{what}: {where(first_bad(blank))}: empty video name; give every row its video")
    clean["video"] = frame["video"].astype(str).str.strip()
    for column in ("onset", "offset"):
        is_bool = frame[column].map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        if is_bool.any():
            row = first_bad(is_bool)
            raise ValueError(
                f"{what}: {where(row)}: {column} must be an integer frame number, got "
                f"{_shown(frame[column].iloc[row])} (a true/false value)"
            )
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            row = first_bad(bad)
            raise ValueError(
                f"{what}: {where(row)}: {column} must be an integer frame "
                f"number, got {frame[column].iloc[row]!r}"
            )
        if (values < 0).any():
            row = first_bad(values < 0)
            raise ValueError(
                f"{what}: {where(row)}: {column} {_shown(frame[column].iloc[row])} is "
                "negative; frames are 0-based indices (or the files' numbers), "
                "never below 0"
            )
        if (values > MAX_FRAME).any():
            row = first_bad(values > MAX_FRAME)
            raise ValueError(
                f"{what}: {where(row)}: {column} {_shown(frame[column].iloc[row])} is "
                f"too large for a frame number (at most {MAX_FRAME}); check "
                "the column"
            )
        clean[column] = values.astype(np.int64)
    reversed_rows = clean["onset"] > clean["offset"]
    if reversed_rows.any():
        row = first_bad(reversed_rows)
        raise ValueError(
            f"{what}: {where(row)}: onset {clean['onset'].iloc[row]} is after "
            f"offset {clean['offset'].iloc[row]}; intervals are inclusive "
            "[onset, offset] with onset <= offset"
        )
    types = frame["type"].map(normalize_type)
    if types.isna().any():
        row = first_bad(types.isna())
        raise ValueError(
            f"{what}: {where(row)}: unknown type {frame['type'].iloc[row]!r}; "
            f"use one of {list(EXPRESSION_TYPES)}"
        )
    clean["type"] = types.astype(str)
    if "score" in frame.columns:
        scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(scores).all():
            row = first_bad(~np.isfinite(scores))
            raise ValueError(
                f"{what}: {where(row)}: score must be a finite number, got {frame['score'].iloc[row]!r}"
            )
        clean["score"] = scores
    if duplicates == "drop":
        clean = _drop_duplicate_intervals(clean, what, where)
    return clean


def _drop_duplicate_intervals(clean: pd.DataFrame, what: str, where) -> pd.DataFrame:
    key = ["video", "onset", "offset", "type"]
    repeated = clean.duplicated(key, keep="first").to_numpy()
    if not repeated.any():
        return clean
    row = int(np.flatnonzero(repeated)[0])
    values = clean.iloc[row]
    same = (clean[key] == values[key]).all(axis=1).to_numpy()
    first = int(np.flatnonzero(same)[0])
    return drop_repeated_rows(
        clean,
        repeated,
        f"{what}: {where(row)} repeats {where(first)} ({values['video']}, "
        f"[{values['onset']}, {values['offset']}], {values['type']})",
        earlier="ones",
        each="each",
        stacklevel=4,
    )


def drop_repeated_rows(
    clean: pd.DataFrame, repeated: np.ndarray, first_repeat: str, earlier: str, each: str, stacklevel: int
) -> pd.DataFrame:
    """``clean`` without its ``repeated`` rows, after one warning: ``first_repeat`` names the
    first repeated row, then come how many more repeat ``earlier`` rows and that ``each`` is
    counted once. ``stacklevel`` counts from this function (1 = here).
    """
    more = int(repeated.sum()) - 1
    warnings.warn(
        first_repeat
        + (f" and {more} more row(s) repeat earlier {earlier}" if more else "")
        + f"; {each} is counted once: remove the repeated rows",
        EvaluationWarning,
        stacklevel=stacklevel,
    )
    return clean.loc[~repeated]


def _warn_if_no_video_matches(pred: pd.DataFrame, gt: pd.DataFrame) -> str | None:
    """A warning (and its text) when predictions and ground truth share no video name."""
    if len(pred) == 0 or len(gt) == 0:
        return None
    pred_videos, gt_videos = sorted(set(pred["video"])), sorted(set(gt["video"]))
    if set(pred_videos) & set(gt_videos):
        by_case = {video.casefold(): video for video in gt_videos}
        near = [
            (video, by_case[video.casefold()])
            for video in pred_videos
            if video not in gt_videos and video.casefold() in by_case
        ]
        if not near:
            return None
        message = (
            f"{len(near)} prediction video(s) differ from a ground-truth video only in "
            f"upper/lower case (e.g. prediction {near[0][0]!r} vs ground truth "
            f"{near[0][1]!r}); they are scored as different videos: name the videos "
            "exactly as in the ground truth"
        )
        warnings.warn(message, EvaluationWarning, stacklevel=3)
        return message
    example = pred_videos[0]
    close = difflib.get_close_matches(example, gt_videos, n=1, cutoff=0.0)
    message = (
        f"no prediction video matches a ground-truth video (e.g. prediction "
        f"{example!r} vs ground truth {close[0] if close else gt_videos[0]!r}), so "
        "every prediction is a false positive and F1 is 0: name the videos as in "
        "the ground truth"
    )
    warnings.warn(message, EvaluationWarning, stacklevel=3)
    return message


# ------------------------------------------------------------------------------- IoU


def interval_iou(onset_a, offset_a, onset_b, offset_b):
    """IoU of inclusive frame intervals; broadcasts like numpy."""
    onset_a, offset_a = np.asarray(onset_a, dtype=np.int64), np.asarray(offset_a, dtype=np.int64)
    onset_b, offset_b = np.asarray(onset_b, dtype=np.int64), np.asarray(offset_b, dtype=np.int64)
    shared = np.minimum(offset_a, offset_b) - np.maximum(onset_a, onset_b) + 1
    shared = np.clip(shared, 0, None)
    union = (offset_a - onset_a + 1) + (offset_b - onset_b + 1) - shared
    return shared / union


def iou_matrix(pred: pd.DataFrame, gt: pd.DataFrame) -> np.ndarray:
    """(n_pred, n_gt) IoU between every prediction and every ground truth."""
    return interval_iou(
        pred["onset"].to_numpy()[:, None],
        pred["offset"].to_numpy()[:, None],
        gt["onset"].to_numpy()[None, :],
        gt["offset"].to_numpy()[None, :],
    )


def meets_threshold(iou, threshold: float):
    return np.asarray(iou) >= threshold - IOU_SLACK


# -------------------------------------------------------------------------- matching


class IncrementalMatcher:
    """Maximum bipartite matching grown one prediction at a time (Kuhn's algorithm).

    After predictions p_1..p_r have been added, the matching is maximum for that prefix
    (the classical invariant of Kuhn's algorithm), so ``add`` returns True exactly when
    the r-th prediction increases the best achievable TP count.
    """

    def __init__(self, candidates: list[np.ndarray]):
        # candidates[p]: ground-truth indices that prediction p may match, best IoU first
        # so that the pairs we report are the natural ones when there is no conflict.
        self.candidates = candidates
        self.gt_of_pred: dict[int, int] = {}
        self.pred_of_gt: dict[int, int] = {}

    def add(self, start: int) -> bool:
        reached_from: dict[int, int] = {}
        queue = deque([start])
        while queue:
            pred = queue.popleft()
            for gt in self.candidates[pred]:
                gt = int(gt)
                if gt in reached_from:
                    continue
                reached_from[gt] = pred
                owner = self.pred_of_gt.get(gt)
                if owner is None:
                    self._flip_path(start, gt, reached_from)
                    return True
                queue.append(owner)
        return False

    def _flip_path(self, start: int, free_gt: int, reached_from: dict[int, int]) -> None:
        gt = free_gt
        while True:
            pred = reached_from[gt]
            previous_gt = self.gt_of_pred.get(pred)
            self.gt_of_pred[pred] = gt
            self.pred_of_gt[gt] = pred
            if pred == start:
                return
            gt = previous_gt


def _candidates(iou: np.ndarray, threshold: float) -> list[np.ndarray]:
    allowed = meets_threshold(iou, threshold)
    nothing = np.zeros(0, dtype=np.int64)
    lists = [nothing] * len(iou)
    for row in np.flatnonzero(allowed.any(axis=1)):
        columns = np.flatnonzero(allowed[row])
        lists[row] = columns[np.argsort(-iou[row, columns], kind="stable")]
    return lists


def _rank_order(scores: np.ndarray | None, count: int) -> np.ndarray:
    if scores is None:
        return np.arange(count)
    return np.argsort(-scores, kind="stable")


def _match_group(
    pred: pd.DataFrame, gt: pd.DataFrame, threshold: float, order: np.ndarray
) -> tuple[np.ndarray, dict[int, int], np.ndarray]:
    """Match one (video, type) group, adding predictions in ``order``.

    Returns (is_tp per prediction, {pred position: gt position}, IoU matrix).
    """
    n_pred = len(pred)
    is_tp = np.zeros(n_pred, dtype=bool)
    if n_pred == 0 or len(gt) == 0:
        return is_tp, {}, np.zeros((n_pred, len(gt)))
    iou = iou_matrix(pred, gt)
    matcher = IncrementalMatcher(_candidates(iou, threshold))
    for position in order:
        is_tp[position] = matcher.add(int(position))
    return is_tp, dict(matcher.gt_of_pred), iou


def _groups(pred: pd.DataFrame, gt: pd.DataFrame):
    """Yield (video, type, pred rows, gt rows) for every group present in either table."""
    pred_groups = {key: rows for key, rows in pred.groupby(["video", "type"], sort=True)}
    gt_groups = {key: rows for key, rows in gt.groupby(["video", "type"], sort=True)}
    for key in sorted(set(pred_groups) | set(gt_groups)):
        yield (key[0], key[1], pred_groups.get(key, pred.iloc[:0]), gt_groups.get(key, gt.iloc[:0]))


def _restrict_to_videos_with_type(pred: pd.DataFrame, gt: pd.DataFrame) -> pd.DataFrame:
    videos_with_type = set(zip(gt["video"], gt["type"]))
    keep = [key in videos_with_type for key in zip(pred["video"], pred["type"])]
    return pred.loc[np.asarray(keep, dtype=bool)]


def f1_from_counts(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """(precision, recall, F1) from pooled counts; NaN where the denominator is 0."""
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else math.nan
    return precision, recall, f1


# ------------------------------------------------------------------------------- AP


def precision_recall_points(
    scores: np.ndarray, is_tp: np.ndarray, n_gt: int, group_ties: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Operating points (recall, precision) of a ranked list of predictions.

    ``is_tp`` must be the per-prediction TP flags in the rank order of ``scores``
    (highest first). With ``group_ties`` a point is read only after the last of each
    run of equal scores.
    """
    scores = np.asarray(scores, dtype=float)
    is_tp = np.asarray(is_tp, dtype=bool)
    if len(scores) == 0 or n_gt == 0:
        return np.zeros(0), np.zeros(0)
    cumulative_tp = np.cumsum(is_tp)
    ranks = np.arange(1, len(scores) + 1)
    if group_ties:
        last_of_tie = np.append(scores[1:] != scores[:-1], True)
    else:
        last_of_tie = np.ones(len(scores), dtype=bool)
    recall = cumulative_tp[last_of_tie] / n_gt
    precision = cumulative_tp[last_of_tie] / ranks[last_of_tie]
    return recall, precision


def ap_from_points(
    recall: np.ndarray, precision: np.ndarray, n_gt: int, interpolation: str = "coco101"
) -> float:
    """AP from operating points ordered by rank (recall non-decreasing)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if n_gt == 0:
        return math.nan
    if len(recall) == 0:
        return 0.0
    envelope = np.maximum.accumulate(np.asarray(precision, dtype=float)[::-1])[::-1]
    recall = np.asarray(recall, dtype=float)
    if interpolation == "coco101":
        recall_levels = np.linspace(0.0, 1.0, 101)
        # The slack keeps e.g. recall 0.29 (= 29/100 rounded) from missing level 0.29.
        positions = np.searchsorted(recall, recall_levels - 1e-12, side="left")
        reached = positions < len(recall)
        values = np.zeros(len(recall_levels))
        values[reached] = envelope[positions[reached]]
        return float(values.mean())
    recall_steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(recall_steps * envelope))


def _ranked_tp_flags(
    pred: pd.DataFrame, gt: pd.DataFrame, threshold: float, global_order: np.ndarray
) -> np.ndarray:
    """TP flag of every prediction (positional) when added in ``global_order``."""
    rank_of_position = np.empty(len(pred), dtype=np.int64)
    rank_of_position[global_order] = np.arange(len(pred))
    positions = pd.Series(np.arange(len(pred)), index=pred.index)
    is_tp = np.zeros(len(pred), dtype=bool)
    for _, _, pred_rows, gt_rows in _groups(pred, gt):
        if len(pred_rows) == 0 or len(gt_rows) == 0:
            continue
        group_positions = positions.loc[pred_rows.index].to_numpy()
        local_order = np.argsort(rank_of_position[group_positions], kind="stable")
        flags, _, _ = _match_group(pred_rows, gt_rows, threshold, local_order)
        is_tp[group_positions] = flags
    return is_tp


def _ranking(pred: pd.DataFrame, rank_by_row_order: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rank order of row positions, scores in that order)."""
    if rank_by_row_order:
        return np.arange(len(pred)), np.zeros(len(pred))
    if len(pred) and "score" not in pred.columns:
        raise ValueError("average precision needs a 'score' column (the peak score) in the predictions")
    scores = pred["score"].to_numpy(dtype=float) if len(pred) else np.zeros(0)
    order = _rank_order(scores, len(pred))
    return order, scores[order]


def precision_recall_curve(
    pred: pd.DataFrame, gt: pd.DataFrame, iou_threshold: float = 0.5, rank_by_row_order: bool = False
) -> pd.DataFrame:
    """Operating points (``score, recall, precision``) of one IoU threshold.

    Same ranking, matching and tie grouping as :func:`average_precision`; for plots.
    """
    pred = validate_intervals(pred, "predictions").reset_index(drop=True)
    gt = validate_intervals(gt, "ground truth", duplicates="drop")
    order, ranked_scores = _ranking(pred, rank_by_row_order)
    is_tp = _ranked_tp_flags(pred, gt, iou_threshold, order)[order]
    group_ties = not rank_by_row_order
    recall, precision = precision_recall_points(ranked_scores, is_tp, len(gt), group_ties)
    if group_ties:
        kept = np.append(ranked_scores[1:] != ranked_scores[:-1], True) if len(pred) else []
        scores_at_points = ranked_scores[kept] if len(recall) else np.zeros(0)
    else:
        scores_at_points = ranked_scores[: len(recall)]
    return pd.DataFrame({"score": scores_at_points, "recall": recall, "precision": precision})


def average_precision(
    pred: pd.DataFrame,
    gt: pd.DataFrame,
    iou_thresholds=AP_IOU_THRESHOLDS,
    interpolation: str = "coco101",
    rank_by_row_order: bool = False,
) -> float:
    """Mean AP over ``iou_thresholds`` for already-validated tables (any mix of types).

    ``rank_by_row_order`` ignores scores and ranks predictions in row order with one
    operating point per row: the constant-confidence artefact, for teaching only.
    """
    pred = pred.reset_index(drop=True)
    order, ranked_scores = _ranking(pred, rank_by_row_order)
    values = []
    for threshold in iou_thresholds:
        is_tp = _ranked_tp_flags(pred, gt, threshold, order)[order]
        recall, precision = precision_recall_points(
            ranked_scores, is_tp, len(gt), group_ties=not rank_by_row_order
        )
        values.append(ap_from_points(recall, precision, len(gt), interpolation))
    return float(np.mean(values)) if values else math.nan


# ----------------------------------------------------------------------- evaluation


@dataclass
class SpottingResult:
    """Outcome of :func:`evaluate_spotting`.

    ``table``: one row per type plus ``overall`` with n_gt, n_pred, TP, FP, FN,
    precision, recall, F1, AP50 and AP (AP@[.5:.95]).
    ``per_video``: the counts of every (video, type) that was scored.
    ``matches``: the matched pairs, as 0-based row positions in the caller's tables, and
    their IoU.
    """

    table: pd.DataFrame
    per_video: pd.DataFrame
    matches: pd.DataFrame
    iou_threshold: float = 0.5
    only_videos_with_type: bool = False
    interpolation: str = "coco101"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        def clean(value):
            if isinstance(value, (np.integer,)):
                return int(value)
            if isinstance(value, (float, np.floating)):
                return None if math.isnan(value) else float(value)
            return value

        rows = {
            kind: {column: clean(value) for column, value in row.items()}
            for kind, row in self.table.to_dict(orient="index").items()
        }
        return {
            "iou_threshold": self.iou_threshold,
            "only_videos_with_type": self.only_videos_with_type,
            "assignment": "maximum bipartite matching per (video, type)",
            "ap": f"AP@[.5:.95], {self.interpolation} interpolation, ties grouped",
            "results": rows,
            "per_video": [
                {
                    key: clean(value)
                    for key, value in record.items()
                    if key in ("video", "type", "n_gt", "n_pred", "TP", "FP", "FN")
                }
                for record in self.per_video.to_dict(orient="records")
            ],
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        return format_spotting_table(self.table)


def format_spotting_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for column in ("precision", "recall", "F1", "AP50", "AP"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: "nan" if pd.isna(v) else f"{v:.4f}")
    return shown.to_string()


def _summary_row(tp: int, n_pred: int, n_gt: int, fn: int | None = None) -> dict:
    """Counts and ratios of one row; ``fn`` defaults to the ground truth left unmatched."""
    fp, fn = n_pred - tp, (n_gt - tp if fn is None else fn)
    precision, recall, f1 = f1_from_counts(tp, fp, fn)
    return {
        "n_gt": n_gt,
        "n_pred": n_pred,
        "TP": tp,
        "FP": fp,
        "FN": fn,
        "precision": precision,
        "recall": recall,
        "F1": f1,
    }


def evaluate_spotting(
    pred: pd.DataFrame,
    gt: pd.DataFrame,
    iou_threshold: float = 0.5,
    only_videos_with_type: bool = False,
    types=None,
    compute_ap: bool = True,
    interpolation: str = "coco101",
) -> SpottingResult:
    """Score spotted intervals against ground truth with the MEGC rules (module doc).

    ``types``: the type rows to report, default both (macro, micro), even when a type
    has no interval at all (its counts are then 0 and its ratios NaN). ``compute_ap`` needs a ``score`` column; without one AP is NaN
    and a note says why.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    # Positions, not the caller's index labels (concatenated folds often repeat them).
    pred = validate_intervals(pred, "predictions").reset_index(drop=True)
    gt = validate_intervals(gt, "ground truth", duplicates="drop").reset_index(drop=True)
    mismatch = _warn_if_no_video_matches(pred, gt)
    if types is None:
        types = list(EXPRESSION_TYPES)
    else:
        types = [normalize_type(kind) or kind for kind in types]
        unknown = [kind for kind in types if kind not in EXPRESSION_TYPES]
        if unknown:
            raise ValueError(f"types: unknown {unknown}; use {list(EXPRESSION_TYPES)}")
    pred = pred[pred["type"].isin(types)]
    gt = gt[gt["type"].isin(types)]
    if only_videos_with_type:
        pred = _restrict_to_videos_with_type(pred, gt)

    notes = [mismatch] if mismatch else []
    has_scores = "score" in pred.columns
    if compute_ap and not has_scores and len(pred):
        notes.append("predictions have no 'score' column: AP not computed")

    per_video_rows, match_rows = [], []
    for video, kind, pred_rows, gt_rows in _groups(pred, gt):
        scores = pred_rows["score"].to_numpy(dtype=float) if has_scores else None
        is_tp, pairs, iou = _match_group(
            pred_rows, gt_rows, iou_threshold, _rank_order(scores, len(pred_rows))
        )
        tp = int(is_tp.sum())
        per_video_rows.append(
            {"video": video, "type": kind, **_summary_row(tp, len(pred_rows), len(gt_rows))}
        )
        for pred_position, gt_position in sorted(pairs.items()):
            match_rows.append(
                {
                    "video": video,
                    "type": kind,
                    "pred_row": pred_rows.index[pred_position],
                    "gt_row": gt_rows.index[gt_position],
                    "iou": float(iou[pred_position, gt_position]),
                }
            )
    per_video = pd.DataFrame(
        per_video_rows,
        columns=["video", "type", "n_gt", "n_pred", "TP", "FP", "FN", "precision", "recall", "F1"],
    )
    matches = pd.DataFrame(match_rows, columns=["video", "type", "pred_row", "gt_row", "iou"])

    table_rows = {}
    for kind in list(types) + ["overall"]:
        selected = per_video if kind == "overall" else per_video[per_video["type"] == kind]
        row = _summary_row(
            int(selected["TP"].sum()), int(selected["n_pred"].sum()), int(selected["n_gt"].sum())
        )
        kind_pred = pred if kind == "overall" else pred[pred["type"] == kind]
        kind_gt = gt if kind == "overall" else gt[gt["type"] == kind]
        if compute_ap and (has_scores or len(kind_pred) == 0):
            row["AP50"] = average_precision(kind_pred, kind_gt, (0.5,), interpolation)
            row["AP"] = average_precision(kind_pred, kind_gt, AP_IOU_THRESHOLDS, interpolation)
        else:
            row["AP50"] = row["AP"] = math.nan
        table_rows[kind] = row
    table = pd.DataFrame.from_dict(table_rows, orient="index")
    table.index.name = "type"
    return SpottingResult(
        table=table,
        per_video=per_video,
        matches=matches,
        iou_threshold=iou_threshold,
        only_videos_with_type=only_videos_with_type,
        interpolation=interpolation,
        notes=notes,
    )


# --------------------------------------------------------------------- authors' quirks


def ap_constant_confidence(
    pred: pd.DataFrame, gt: pd.DataFrame, kind: str | None = None, interpolation: str = "coco101"
) -> float:
    """AP@[.5:.95] as SOFTNet's published code effectively computes it (teaching only).

    Every prediction gets the same confidence, so the ranking is the order of the rows:
    shuffling the rows of ``pred`` changes the number. ``kind`` restricts to one type.
    """
    pred = validate_intervals(pred, "predictions")
    gt = validate_intervals(gt, "ground truth", duplicates="drop")
    if kind is not None:
        pred, gt = pred[pred["type"] == kind], gt[gt["type"] == kind]
    return average_precision(
        pred.drop(columns="score", errors="ignore"),
        gt,
        AP_IOU_THRESHOLDS,
        interpolation,
        rank_by_row_order=True,
    )


def lbcnn_double_counting(
    pred: pd.DataFrame, gt: pd.DataFrame, iou_threshold: float = 0.5, only_videos_with_type: bool = False
) -> pd.DataFrame:
    """Counts as the LBCNN code makes them (teaching only: the authors' evaluation code).

    Every prediction with IoU >= threshold against some ground truth of its video and
    type is a TP, even when another prediction already took that ground truth, so one
    ground truth can be counted several times. FP = predictions - TP; FN = ground truths
    that no prediction reaches. TP + FN can then exceed the number of ground truths.
    Our reconstruction of the counting; the columns mirror ``evaluate_spotting``.
    """
    pred = validate_intervals(pred, "predictions")
    gt = validate_intervals(gt, "ground truth")
    if only_videos_with_type:
        pred = _restrict_to_videos_with_type(pred, gt)
    types = list(EXPRESSION_TYPES)
    counts = {kind: [0, 0, 0] for kind in types}  # TP, n_pred, FN
    n_gt = {kind: 0 for kind in types}
    for _, kind, pred_rows, gt_rows in _groups(pred, gt):
        hits = (
            meets_threshold(iou_matrix(pred_rows, gt_rows), iou_threshold)
            if len(pred_rows) and len(gt_rows)
            else np.zeros((len(pred_rows), len(gt_rows)), bool)
        )
        counts[kind][0] += int(hits.any(axis=1).sum())
        counts[kind][1] += len(pred_rows)
        counts[kind][2] += int((~hits.any(axis=0)).sum())
        n_gt[kind] += len(gt_rows)
    rows = {}
    for kind in types + ["overall"]:
        chosen = types if kind == "overall" else [kind]
        tp = sum(counts[k][0] for k in chosen)
        n_pred = sum(counts[k][1] for k in chosen)
        fn = sum(counts[k][2] for k in chosen)
        rows[kind] = _summary_row(tp, n_pred, sum(n_gt[k] for k in chosen), fn)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "type"
    return table
