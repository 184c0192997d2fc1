"""From per-frame classes to intervals: LBCNN's run rule and the length filters of the
authors' code (Pan et al. 2020, section III.B)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from melib.evaluation import postprocess
from melib.features.lbcnn import CLASS_NAMES

__all__ = ["spot_video"]


def spot_video(
    classes,
    scores,
    grid,
    n_frames: int,
    stride: int,
    limits: dict,
    min_run_length: int = 2,
    length_rule: str = "own_class",
) -> pd.DataFrame:
    """Intervals of one video from its per-frame classes (0 neutral, 1 micro, 2 macro).

    ``classes``/``scores`` are given at the ``grid`` frames (every ``stride``-th frame).
    A run of at least ``min_run_length`` consecutive grid frames of one class becomes
    the interval from its first grid frame to the last frame its last grid frame stands
    for (``+ stride - 1``, clipped to the video); with ``stride=1`` that is the paper's
    rule on every frame. The length filter (``limits``, inclusive frame counts) then
    keeps the run when its length fits its own class (``own_class``), or, with
    ``by_length``, merges micro and macro frames into expression runs and types each
    run by its length. ``score``: the mean score of the run's class over the run.
    """
    classes = np.asarray(classes, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.int64)
    if length_rule == "by_length":
        runs = postprocess.frame_class_runs((classes > 0).astype(np.int64), 0, min_run_length)
    elif length_rule == "own_class":
        runs = postprocess.frame_class_runs(classes, 0, min_run_length)
    else:
        raise ValueError(f"length_rule={length_rule!r}: use 'own_class' or 'by_length'")
    columns = ["onset", "offset", "type", "score"]
    if runs.empty:
        return pd.DataFrame(columns=columns).astype({"onset": np.int64, "offset": np.int64, "score": float})
    first, last = runs["onset"].to_numpy(), runs["offset"].to_numpy()
    intervals = pd.DataFrame(
        {"onset": grid[first], "offset": np.minimum(grid[last] + stride - 1, n_frames - 1)}
    )
    if length_rule == "own_class":
        intervals["label"] = [CLASS_NAMES[int(c)] for c in runs["label"]]
        intervals["score"] = [
            float(scores[a : b + 1, int(c)].mean()) for a, b, c in zip(first, last, runs["label"])
        ]
        kept = postprocess.classify_by_length(intervals, limits, label_column="label")
    else:
        intervals["score"] = [float(scores[a : b + 1, 1:].max(axis=1).mean()) for a, b in zip(first, last)]
        kept = postprocess.classify_by_length(intervals, limits)
    return kept[columns].reset_index(drop=True)
