"""Spotting post-processing: pseudo-labels, smoothing, threshold, peaks, runs, windows."""

from __future__ import annotations

import numpy as np
import pytest

from melib.evaluation.postprocess import (
    classify_by_length,
    detect_peaks,
    frame_class_runs,
    length_limits,
    merge_window_proposals,
    peaks_to_intervals,
    pseudo_labels,
    sliding_windows,
    smooth_scores,
    spot_intervals,
    spotting_threshold,
    window_labels,
)


def test_unit_step_pseudo_labels():
    # k = 3: window i covers [i, i+2]; expression [5, 7] touches windows 3..7.
    labels = pseudo_labels(12, [(5, 7)], k=3)
    assert labels.shape == (9,)
    assert list(np.flatnonzero(labels)) == [3, 4, 5, 6, 7]


def test_linear_and_step_pseudo_labels():
    linear = pseudo_labels(12, [(5, 7)], k=3, function="linear")
    # Window 5 = [5, 7]: IoU 1; window 4 = [4, 6]: 2 shared of 4; window 3: 1 of 5.
    assert linear[5] == pytest.approx(1.0)
    assert linear[4] == pytest.approx(0.5)
    assert linear[3] == pytest.approx(0.2)
    step = pseudo_labels(12, [(5, 7)], k=3, function="step")
    assert list(np.flatnonzero(step)) == [4, 5, 6]
    assert pseudo_labels(12, [], k=3).sum() == 0
    with pytest.raises(ValueError, match="pseudo-label function"):
        pseudo_labels(12, [(5, 7)], k=3, function="gauss")


def test_smoothing_is_a_truncated_moving_mean():
    scores = np.array([0, 0, 3, 0, 0, 6], dtype=float)
    smoothed = smooth_scores(scores, 1)
    assert smoothed == pytest.approx([0, 1, 1, 1, 2, 3])
    assert smooth_scores(scores, 0) == pytest.approx(scores)


def test_threshold_and_peaks():
    scores = np.array([0, 1, 5, 1, 0, 0, 4, 0, 3.9, 0], dtype=float)
    threshold = spotting_threshold(scores, 0.5)
    assert threshold == pytest.approx(1.49 + 0.5 * (5 - 1.49))
    assert list(detect_peaks(scores, threshold, distance=1)) == [2, 6, 8]
    # distance 3 keeps only the higher of the peaks at 6 and 8.
    assert list(detect_peaks(scores, threshold, distance=3)) == [2, 6]
    spans = peaks_to_intervals([1, 8], k=2, n_frames=10)
    assert spans[["onset", "offset"]].values.tolist() == [[0, 3], [6, 9]]


def test_spot_intervals_reports_peak_scores():
    scores = np.zeros(40)
    scores[18:23] = 1.0
    spotted = spot_intervals(scores, k=2, p=0.5)
    assert spotted[["onset", "offset", "peak"]].values.tolist() == [[18, 22, 20]]
    assert spotted["score"].iloc[0] == pytest.approx(1.0)
    assert spot_intervals(np.zeros(0), k=2).empty


def test_frame_class_runs_and_length_filter():
    classes = [0, 1, 1, 1, 0, 2, 0, 2, 2, 2, 2, 2, 2, 2, 1, 1]
    runs = frame_class_runs(classes, background=0, min_run=2)
    assert runs[["onset", "offset", "label", "length"]].values.tolist() == [
        [1, 3, 1, 3],
        [7, 13, 2, 7],
        [14, 15, 1, 2],
    ]
    limits = {"micro": (2, 3), "macro": (4, None)}
    typed = classify_by_length(runs, limits)
    assert typed["type"].tolist() == ["micro", "macro", "micro"]
    labelled = runs.assign(label=runs["label"].map({1: "micro", 2: "macro"}))
    assert len(classify_by_length(labelled, {"micro": (3, 3), "macro": (4, None)}, label_column="label")) == 2


def test_lbcnn_length_limits():
    assert length_limits("casme_sq") == {"micro": (6, 16), "macro": (17, None)}
    assert length_limits("samm_lv") == {"micro": (20, 105), "macro": (106, None)}
    assert length_limits("casme_sq", fps=60) == {"micro": (12, 32), "macro": (33, None)}


def test_sliding_windows_and_merging():
    starts = sliding_windows(20, 5, stride=2)
    assert list(starts) == [0, 2, 4, 6, 8, 10, 12, 14]
    scores = np.array([0.9, 0.8, 0.1, 0.1, 0.1, 0.7, 0.1, 0.95])
    merged = merge_window_proposals(starts, 5, scores, threshold=0.5)
    # [0,4]+[2,6] overlap; [10,14] and [14,18] overlap too.
    assert merged[["onset", "offset", "apex"]].values.tolist() == [[0, 6, 2], [10, 18, 16]]
    assert merged["score"].tolist() == pytest.approx([0.9, 0.95])
    touching = merge_window_proposals([0, 5], 5, [1.0, 1.0])
    assert touching[["onset", "offset"]].values.tolist() == [[0, 9]]
    apart = merge_window_proposals([0, 6], 5, [1.0, 1.0])
    assert len(apart) == 2
    assert list(window_labels([0, 5, 10], 5, [(6, 8)])) == [0, 1, 0]
    assert list(window_labels([0, 5, 10], 5, [(6, 8)], rule="iou")) == [0, 1, 0]
    assert list(window_labels([0, 5], 5, [(6, 7)], rule="iou")) == [0, 0]


def test_teaching_baseline_energy_and_proposals():
    import pandas as pd

    from melib.evaluation.baseline import dense_proposals, frame_difference_energy, softnet_k

    frames = [np.full((8, 8), 10.0 * (i >= 5), dtype=np.float32) for i in range(10)]
    energy = frame_difference_energy(frames, k=2, size=4)
    # Frames 3 and 4 see the step two frames later.
    assert list(np.flatnonzero(energy)) == [3, 4] and energy[3] == pytest.approx(10.0)
    dense = dense_proposals(energy, 1, p=0.5, n_frames=10)
    assert dense[["onset", "offset"]].values.tolist() == [[2, 4], [3, 5]]
    table = pd.DataFrame({"onset": [0, 10], "offset": [10, 22], "type": ["micro", "micro"]})
    assert softnet_k(table, "micro") == 6 and softnet_k(table, "macro") is None
