"""Spotting post-processing shared by the SOFTNet, LBCNN and DynGeoNet notebooks.

Frames are 0-based indices and intervals inclusive ``[onset, offset]`` (CONTRIBUTING).
Interval tables come back as DataFrames with ``onset, offset`` (+ ``score``/``type``
where they exist) so that they concatenate straight into
:func:`melib.evaluation.spotting.evaluate_spotting` once ``video`` and ``type`` are set.

Only numpy, scipy and pandas are used: pipelines compute pseudo-labels here and hand
them to the training layer, which must not import this package.

SOFTNet (Liong, See & Wong 2021, section 2.4, and the authors' code)
    :func:`pseudo_labels` (unit step; linear and step variants of the ablation),
    :func:`smooth_scores`, :func:`spotting_threshold`, :func:`detect_peaks`,
    :func:`peaks_to_intervals`, and :func:`spot_intervals` chaining them.
LBCNN (Pan, Xie & Wang 2020, section III-B, and the authors' code)
    :func:`frame_class_runs`, :func:`length_limits`, :func:`classify_by_length`.
DynGeoNet (Tran, Vo & Zhao 2021, sections 3.2 and 4.1)
    :func:`sliding_windows`, :func:`window_labels`, :func:`merge_window_proposals`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import find_peaks

PSEUDO_LABEL_FUNCTIONS = ("unit_step", "linear", "step")


def _as_interval_array(intervals) -> np.ndarray:
    """(n, 2) int array of inclusive [onset, offset] from a DataFrame or pairs."""
    if isinstance(intervals, pd.DataFrame):
        array = intervals[["onset", "offset"]].to_numpy(dtype=np.int64)
    else:
        array = np.asarray(list(intervals), dtype=np.int64).reshape(-1, 2)
    if (array[:, 0] > array[:, 1]).any():
        raise ValueError(
            "intervals: onset after offset; intervals are inclusive [onset, offset] with onset <= offset"
        )
    return array


def _window_iou(starts: np.ndarray, length: int, intervals: np.ndarray) -> np.ndarray:
    """(n_windows, n_intervals) IoU of windows [s, s+length-1] with inclusive intervals."""
    window_on = starts[:, None]
    window_off = starts[:, None] + length - 1
    shared = np.clip(
        np.minimum(window_off, intervals[None, :, 1]) - np.maximum(window_on, intervals[None, :, 0]) + 1,
        0,
        None,
    )
    union = length + (intervals[None, :, 1] - intervals[None, :, 0] + 1) - shared
    return shared / union


# --------------------------------------------------------------------------- SOFTNet


def pseudo_labels(
    n_frames: int, intervals, k: int, function: str = "unit_step", step_threshold: float = 0.5
) -> np.ndarray:
    """SOFTNet's per-window regression targets for one video and one expression type.

    Window ``i`` covers frames ``[i, i+k-1]`` for ``i`` in ``[0, n_frames-k)``, one per
    optical-flow sample (flow between frames i and i+k). Its IoU with the expression
    intervals (the best one when several overlap it) goes through ``function``:

    - ``"unit_step"`` (the paper's choice): 1 when IoU > 0, else 0;
    - ``"linear"``: the IoU itself, in [0, 1];
    - ``"step"``: 1 when IoU >= ``step_threshold``, else 0. The paper names this
      ablation variant without defining it; a step at 0.5 (the matching threshold of
      the metric) is our reading.
    """
    if function not in PSEUDO_LABEL_FUNCTIONS:
        raise ValueError(f"pseudo-label function must be one of {PSEUDO_LABEL_FUNCTIONS}, got {function!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_windows = max(int(n_frames) - int(k), 0)
    intervals = _as_interval_array(intervals)
    if n_windows == 0 or len(intervals) == 0:
        return np.zeros(n_windows, dtype=np.float32)
    best_iou = _window_iou(np.arange(n_windows), k, intervals).max(axis=1)
    if function == "unit_step":
        labels = best_iou > 0
    elif function == "linear":
        labels = best_iou
    else:
        labels = best_iou >= step_threshold - 1e-12
    return labels.astype(np.float32)


def smooth_scores(scores, k: int) -> np.ndarray:
    """score_i = mean of scores[i-k .. i+k]; near the ends, the mean of what exists.

    The truncated mean keeps the first and last k frames on the same scale as the rest
    (zero padding would pull them towards 0 and hide expressions at the video edges).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if scores.size == 0 or k == 0:
        return scores.copy()
    padded_sum = np.concatenate([[0.0], np.cumsum(scores)])
    index = np.arange(scores.size)
    low = np.clip(index - k, 0, scores.size)
    high = np.clip(index + k + 1, 0, scores.size)
    return (padded_sum[high] - padded_sum[low]) / (high - low)


def spotting_threshold(scores, p: float) -> float:
    """T = mean + p * (max - mean) over the whole video (p in [0, 1])."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("spotting_threshold: empty score sequence")
    mean = float(scores.mean())
    return mean + p * (float(scores.max()) - mean)


def detect_peaks(scores, threshold: float, distance: int) -> np.ndarray:
    """Local maxima at least ``threshold`` high, at least ``distance`` frames apart."""
    scores = np.asarray(scores, dtype=np.float64)
    peaks, _ = find_peaks(scores, height=threshold, distance=max(int(distance), 1))
    return peaks


def peaks_to_intervals(peaks, k: int, n_frames: int | None = None) -> pd.DataFrame:
    """Each peak becomes ``[peak-k, peak+k]``, clipped to the video's frames."""
    peaks = np.asarray(peaks, dtype=np.int64)
    onset = np.maximum(peaks - k, 0)
    offset = peaks + k
    if n_frames is not None:
        offset = np.minimum(offset, n_frames - 1)
    return pd.DataFrame({"onset": onset, "offset": offset, "peak": peaks})


def spot_intervals(
    scores, k: int, p: float = 0.55, n_frames: int | None = None, smooth: bool = True
) -> pd.DataFrame:
    """SOFTNet spotting of one video: smooth, threshold, peaks, intervals.

    ``scores`` has one value per window start (frame). ``n_frames`` (default
    ``len(scores)``) clips the intervals. The ``score`` column is the smoothed score at
    the peak, the confidence AP needs.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return pd.DataFrame({"onset": [], "offset": [], "peak": [], "score": []}).astype(
            {"onset": np.int64, "offset": np.int64, "peak": np.int64}
        )
    smoothed = smooth_scores(scores, k) if smooth else scores
    threshold = spotting_threshold(smoothed, p)
    peaks = detect_peaks(smoothed, threshold, k)
    spotted = peaks_to_intervals(peaks, k, scores.size if n_frames is None else n_frames)
    spotted["score"] = smoothed[peaks]
    return spotted


# ----------------------------------------------------------------------------- LBCNN

# LBCNN (the authors' code): interval lengths in frames, inclusive, per dataset at its own fps.
LBCNN_LENGTH_LIMITS = {
    "casme_sq": {"micro": (6, 16), "macro": (17, None)},
    "samm_lv": {"micro": (20, 105), "macro": (106, None)},
}
LBCNN_REFERENCE_FPS = {"casme_sq": 30.0, "samm_lv": 200.0}


def length_limits(dataset: str = "casme_sq", fps: float | None = None) -> dict:
    """Micro/macro length ranges (inclusive frame counts, ``None`` = no upper bound).

    The dataset's own values at its own frame rate; with a different ``fps`` (a
    resampled or synthetic video) they are scaled by ``fps / reference fps``, keeping
    the macro range starting right after the micro one.
    """
    if dataset not in LBCNN_LENGTH_LIMITS:
        raise ValueError(f"no LBCNN length limits for {dataset!r}; known: {sorted(LBCNN_LENGTH_LIMITS)}")
    limits = LBCNN_LENGTH_LIMITS[dataset]
    reference = LBCNN_REFERENCE_FPS[dataset]
    if fps is None or fps == reference:
        return {kind: tuple(bounds) for kind, bounds in limits.items()}
    scale = fps / reference
    micro_low = max(1, int(round(limits["micro"][0] * scale)))
    micro_high = max(micro_low, int(round(limits["micro"][1] * scale)))
    return {"micro": (micro_low, micro_high), "macro": (micro_high + 1, None)}


def frame_class_runs(frame_classes, background=0, min_run: int = 2) -> pd.DataFrame:
    """Runs of >= ``min_run`` consecutive frames with the same non-background class.

    Returns ``onset, offset, label, length`` (inclusive), in frame order.
    """
    classes = np.asarray(frame_classes)
    rows = []
    if classes.size:
        change = np.flatnonzero(classes[1:] != classes[:-1]) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [classes.size]]) - 1
        for start, end in zip(starts, ends):
            label = classes[start]
            if label == background or end - start + 1 < min_run:
                continue
            rows.append(
                {
                    "onset": int(start),
                    "offset": int(end),
                    "label": label.item() if hasattr(label, "item") else label,
                    "length": int(end - start + 1),
                }
            )
    return pd.DataFrame(rows, columns=["onset", "offset", "label", "length"])


def classify_by_length(
    intervals: pd.DataFrame, limits: dict, label_column: str | None = None
) -> pd.DataFrame:
    """Give each interval the type whose length range holds it; drop the rest.

    With ``label_column`` (e.g. the ``label`` of :func:`frame_class_runs` holding
    "micro"/"macro"), an interval is kept only when its length fits the range of its
    own label, the stricter reading of LBCNN's filters.
    """
    lengths = intervals["offset"] - intervals["onset"] + 1
    kinds = pd.Series([None] * len(intervals), index=intervals.index, dtype=object)
    for kind, (low, high) in limits.items():
        fits = (lengths >= low) & ((lengths <= high) if high is not None else True)
        kinds[fits & kinds.isna()] = kind
    if label_column is not None:
        kinds[kinds != intervals[label_column].astype(str)] = None
    kept = intervals.loc[kinds.notna()].copy()
    kept["type"] = kinds[kinds.notna()].astype(str)
    return kept.reset_index(drop=True)


# ------------------------------------------------------------------------- DynGeoNet


def sliding_windows(n_frames: int, length: int, stride: int = 1) -> np.ndarray:
    """Start frames of the windows ``[s, s+length-1]`` that fit inside the video."""
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length}, {stride}")
    return np.arange(0, max(n_frames - length + 1, 0), stride, dtype=np.int64)


def window_labels(
    starts, length: int, intervals, rule: str = "middle", iou_threshold: float = 0.5
) -> np.ndarray:
    """Training labels of sliding windows against expression intervals.

    ``"middle"``: positive when the window's middle frame (start + length//2, where
    DynGeoNet puts the apex) lies inside an expression; ``"iou"``: positive when the
    window's IoU with an expression reaches ``iou_threshold``.
    """
    starts = np.asarray(starts, dtype=np.int64)
    intervals = _as_interval_array(intervals)
    if len(intervals) == 0 or len(starts) == 0:
        return np.zeros(len(starts), dtype=np.int64)
    if rule == "middle":
        middle = starts[:, None] + length // 2
        inside = (middle >= intervals[None, :, 0]) & (middle <= intervals[None, :, 1])
        return inside.any(axis=1).astype(np.int64)
    if rule == "iou":
        iou = _window_iou(starts, length, intervals)
        return (iou >= iou_threshold - 1e-12).any(axis=1).astype(np.int64)
    raise ValueError(f"rule must be 'middle' or 'iou', got {rule!r}")


def merge_window_proposals(
    starts, length: int, scores, threshold: float = 0.5, max_gap: int = 0, n_frames: int | None = None
) -> pd.DataFrame:
    """Merge positive windows (score >= threshold) into spotted intervals.

    Positive windows whose frame ranges overlap, touch, or leave at most ``max_gap``
    frames between them become one interval covering them all. ``score`` is the best
    window score in the group and ``apex`` the middle frame of that best window.
    """
    starts = np.asarray(starts, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if starts.shape != scores.shape:
        raise ValueError(f"{len(starts)} window starts but {len(scores)} scores")
    positive = np.flatnonzero(scores >= threshold)
    positive = positive[np.argsort(starts[positive], kind="stable")]
    rows = []
    group: list[int] = []

    def close(members):
        best = members[int(np.argmax(scores[members]))]
        offset = int(starts[members].max()) + length - 1
        if n_frames is not None:
            offset = min(offset, n_frames - 1)
        rows.append(
            {
                "onset": int(starts[members].min()),
                "offset": offset,
                "apex": int(starts[best] + length // 2),
                "score": float(scores[best]),
            }
        )

    for window in positive:
        if group and starts[window] > starts[group].max() + length - 1 + max_gap + 1:
            close(group)
            group = []
        group.append(int(window))
    if group:
        close(group)
    return pd.DataFrame(rows, columns=["onset", "offset", "apex", "score"])
