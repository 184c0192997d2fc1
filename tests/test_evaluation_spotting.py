"""The MEGC spotting metric on hand-computed cases and against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from melib.evaluation.spotting import (
    AP_IOU_THRESHOLDS,
    ap_constant_confidence,
    ap_from_points,
    evaluate_spotting,
    interval_iou,
    lbcnn_double_counting,
    precision_recall_points,
)


def intervals(rows, with_score=None):
    """rows: (video, onset, offset, type[, score])."""
    columns = ["video", "onset", "offset", "type"]
    if rows and len(rows[0]) == 5 or with_score:
        columns.append("score")
    return pd.DataFrame(rows, columns=columns)


def counts(result, kind="overall"):
    row = result.table.loc[kind]
    return int(row["TP"]), int(row["FP"]), int(row["FN"])


# ----------------------------------------------------------------------------- IoU


def test_iou_on_inclusive_ranges():
    assert interval_iou(0, 9, 0, 9) == 1.0
    assert interval_iou(0, 9, 5, 14) == pytest.approx(5 / 15)
    assert interval_iou(0, 4, 5, 9) == 0.0  # adjacent: no shared frame
    assert interval_iou(0, 4, 4, 9) == pytest.approx(1 / 10)  # one shared frame
    assert interval_iou(3, 3, 3, 3) == 1.0  # single-frame intervals


def test_iou_exactly_half_matches():
    # [0, 9] vs [0, 4]: 5 shared frames out of 10 -> IoU exactly 0.5.
    gt = intervals([("v", 0, 9, "micro")])
    pred = intervals([("v", 0, 4, "micro", 0.9)])
    assert counts(evaluate_spotting(pred, gt)) == (1, 0, 0)
    # One frame shorter: 4/10 < 0.5.
    pred_short = intervals([("v", 0, 3, "micro", 0.9)])
    assert counts(evaluate_spotting(pred_short, gt)) == (0, 1, 1)


def test_decimal_thresholds_met_exactly():
    # IoU 13/20 = 0.65 must match at threshold 0.65 despite binary rounding.
    gt = intervals([("v", 0, 19, "micro")])
    pred = intervals([("v", 0, 12, "micro", 1.0)])
    assert counts(evaluate_spotting(pred, gt, iou_threshold=0.65)) == (1, 0, 0)
    assert counts(evaluate_spotting(pred, gt, iou_threshold=0.66)) == (0, 1, 1)


def test_adjacent_intervals_do_not_match():
    gt = intervals([("v", 10, 19, "macro")])
    pred = intervals([("v", 0, 9, "macro", 1.0), ("v", 20, 29, "macro", 1.0)])
    assert counts(evaluate_spotting(pred, gt)) == (0, 2, 1)


# ------------------------------------------------------------------- counting rules


def test_no_predictions():
    gt = intervals([("v1", 0, 9, "micro"), ("v2", 5, 30, "macro")])
    result = evaluate_spotting(intervals([], with_score=True), gt)
    assert counts(result, "micro") == (0, 0, 1)
    assert counts(result, "macro") == (0, 0, 1)
    assert counts(result) == (0, 0, 2)
    assert math.isnan(result.table.loc["overall", "precision"])
    assert result.table.loc["overall", "recall"] == 0.0
    assert result.table.loc["overall", "F1"] == 0.0
    assert result.table.loc["overall", "AP"] == 0.0


def test_video_without_ground_truth_adds_false_positives():
    gt = intervals([("v1", 0, 9, "micro")])
    pred = intervals([("v1", 0, 9, "micro", 0.9), ("v2", 0, 9, "micro", 0.8), ("v2", 40, 49, "micro", 0.7)])
    result = evaluate_spotting(pred, gt)
    assert counts(result) == (1, 2, 0)
    assert result.table.loc["overall", "F1"] == pytest.approx(2 / 4)
    per_video = result.per_video.set_index("video")
    assert per_video.loc["v2", "FP"] == 2 and per_video.loc["v2", "n_gt"] == 0


def test_one_prediction_over_two_ground_truths():
    # The prediction has IoU >= 0.5 with both (overlapping) ground truths.
    gt = intervals([("v", 0, 9, "micro"), ("v", 2, 11, "micro")])
    pred = intervals([("v", 1, 10, "micro", 0.9)])
    assert interval_iou(1, 10, 0, 9) >= 0.5 and interval_iou(1, 10, 2, 11) >= 0.5
    assert counts(evaluate_spotting(pred, gt)) == (1, 0, 1)


def test_two_predictions_on_one_ground_truth():
    gt = intervals([("v", 0, 9, "micro")])
    pred = intervals([("v", 0, 9, "micro", 0.9), ("v", 1, 9, "micro", 0.8)])
    result = evaluate_spotting(pred, gt)
    assert counts(result) == (1, 1, 0)
    assert result.table.loc["overall", "precision"] == 0.5
    assert len(result.matches) == 1
    # The LBCNN code counts the ground truth twice.
    quirk = lbcnn_double_counting(pred, gt)
    assert tuple(quirk.loc["overall", ["TP", "FP", "FN"]]) == (2, 0, 0)


def test_maximum_matching_beats_greedy():
    # Greedy by confidence gives the top prediction its best GT (g1, IoU 1) and leaves the
    # second prediction, which can only match g1, unmatched. Maximum matching re-routes.
    gt = intervals([("v", 3, 12, "micro"), ("v", 4, 13, "micro")])
    pred = intervals([("v", 3, 12, "micro", 0.9), ("v", 0, 9, "micro", 0.5)])
    assert interval_iou(0, 9, 4, 13) < 0.5 <= interval_iou(0, 9, 3, 12)
    result = evaluate_spotting(pred, gt)
    assert counts(result) == (2, 0, 0)
    assert set(zip(result.matches["pred_row"], result.matches["gt_row"])) == {(0, 1), (1, 0)}


def test_types_are_matched_separately_and_pooled_overall():
    gt = intervals([("v", 0, 9, "micro"), ("v", 100, 159, "macro")])
    pred = intervals([("v", 0, 9, "macro", 0.9), ("v", 100, 159, "macro", 0.8)])
    result = evaluate_spotting(pred, gt)
    assert counts(result, "macro") == (1, 1, 0)
    assert counts(result, "micro") == (0, 0, 1)
    assert counts(result, "overall") == (1, 1, 1)
    assert list(result.table.index) == ["macro", "micro", "overall"]


def test_only_videos_with_type_drops_predictions_elsewhere():
    gt = intervals([("v1", 0, 9, "micro"), ("v2", 0, 99, "macro")])
    pred = intervals([("v1", 0, 9, "micro", 0.9), ("v2", 50, 59, "micro", 0.8), ("v3", 0, 9, "micro", 0.7)])
    default = evaluate_spotting(pred, gt)
    authors = evaluate_spotting(pred, gt, only_videos_with_type=True)
    assert counts(default, "micro") == (1, 2, 0)
    assert counts(authors, "micro") == (1, 0, 0)
    assert counts(authors, "macro") == (0, 0, 1)


def test_counts_ignore_row_order_and_scores():
    rng = np.random.default_rng(3)
    gt, pred = random_case(rng, n_videos=3, n_gt=12, n_pred=15)
    base = evaluate_spotting(pred, gt).table[["TP", "FP", "FN"]]
    shuffled = pred.sample(frac=1.0, random_state=1)
    shuffled["score"] = rng.random(len(shuffled))
    assert base.equals(evaluate_spotting(shuffled, gt).table[["TP", "FP", "FN"]])


def test_validation_errors():
    gt = intervals([("v", 0, 9, "micro")])
    with pytest.raises(ValueError, match="onset 5 is after offset 3"):
        evaluate_spotting(intervals([("v", 5, 3, "micro", 1.0)]), gt)
    with pytest.raises(ValueError, match="unknown type"):
        evaluate_spotting(intervals([("v", 0, 3, "tiny", 1.0)]), gt)
    with pytest.raises(ValueError, match="integer frame"):
        evaluate_spotting(intervals([("v", 0.5, 3, "micro", 1.0)]), gt)
    with pytest.raises(ValueError, match="missing column"):
        evaluate_spotting(gt.drop(columns="type"), gt)


# ------------------------------------------------------------------------------ AP


def test_ap_hand_computed():
    gt = intervals([("v", 0, 9, "micro"), ("v", 50, 59, "micro")])
    # Ranked: FP (0.9), TP (0.8), TP (0.7) at every threshold.
    pred = intervals([("v", 20, 29, "micro", 0.9), ("v", 0, 9, "micro", 0.8), ("v", 50, 59, "micro", 0.7)])
    result = evaluate_spotting(pred, gt)
    # Operating points (R, P): (0, 0), (.5, .5), (1, 2/3); envelope 2/3 everywhere.
    assert result.table.loc["micro", "AP"] == pytest.approx(2 / 3)
    recall, precision = precision_recall_points([0.9, 0.8, 0.7], [False, True, True], 2)
    assert ap_from_points(recall, precision, 2, "all") == pytest.approx(2 / 3)
    # Perfect ranking -> 1; precision 1 up to recall 0.5 only -> 51/101 (COCO 101).
    assert ap_from_points(np.array([0.5]), np.array([1.0]), 2) == pytest.approx(51 / 101)
    assert ap_from_points(np.array([0.5]), np.array([1.0]), 2, "all") == pytest.approx(0.5)


def test_ap_uses_scores_and_ties_are_order_free():
    gt = intervals([("v", 0, 9, "micro")])
    good_first = intervals([("v", 0, 9, "micro", 0.9), ("v", 30, 39, "micro", 0.1)])
    bad_first = intervals([("v", 0, 9, "micro", 0.1), ("v", 30, 39, "micro", 0.9)])
    assert evaluate_spotting(good_first, gt).table.loc["micro", "AP"] == 1.0
    assert evaluate_spotting(bad_first, gt).table.loc["micro", "AP"] == pytest.approx(0.5)
    tied = good_first.assign(score=0.5)
    ap_tied = evaluate_spotting(tied, gt).table.loc["micro", "AP"]
    assert ap_tied == evaluate_spotting(tied.iloc[::-1], gt).table.loc["micro", "AP"]
    assert ap_tied == pytest.approx(0.5)
    # The constant-confidence artefact depends on row order.
    assert ap_constant_confidence(tied, gt) == 1.0
    assert ap_constant_confidence(tied.iloc[::-1], gt) == pytest.approx(0.5)


def test_ap_without_ground_truth_is_nan():
    pred = intervals([("v", 0, 9, "micro", 0.9)])
    result = evaluate_spotting(pred, intervals([]))
    assert math.isnan(result.table.loc["micro", "AP"])
    assert counts(result) == (0, 1, 0)


# ----------------------------------------------------------- randomized, brute force


def random_case(rng, n_videos, n_gt, n_pred, max_frame=60, max_length=14):
    def make(count, scored):
        rows = []
        for _ in range(count):
            onset = int(rng.integers(0, max_frame))
            offset = onset + int(rng.integers(0, max_length))
            row = (f"v{rng.integers(n_videos)}", onset, offset, ("micro", "macro")[int(rng.integers(2))])
            rows.append(row + ((round(float(rng.random()), 3),) if scored else ()))
        return intervals(rows, with_score=scored)

    # A repeated ground-truth row is one expression (counted once, with a warning).
    return make(n_gt, False).drop_duplicates(ignore_index=True), make(n_pred, True)


def brute_force_matching(edges: np.ndarray) -> int:
    """Largest one-to-one matching by trying every assignment (small cases only)."""
    n_pred, n_gt = edges.shape
    best = 0
    for assignment in itertools.product(*[[None] + list(np.flatnonzero(edges[p])) for p in range(n_pred)]):
        chosen = [g for g in assignment if g is not None]
        if len(chosen) == len(set(chosen)):
            best = max(best, len(chosen))
    return best


def exact_edges(pred, gt, threshold):
    """IoU >= threshold decided in integers: shared * 100 >= threshold% * union."""
    percent = round(threshold * 100)
    edges = np.zeros((len(pred), len(gt)), dtype=bool)
    for i, p in enumerate(pred.itertuples()):
        for j, g in enumerate(gt.itertuples()):
            if p.video != g.video or p.type != g.type:
                continue
            shared = max(0, min(p.offset, g.offset) - max(p.onset, g.onset) + 1)
            union = (p.offset - p.onset + 1) + (g.offset - g.onset + 1) - shared
            edges[i, j] = shared * 100 >= percent * union
    return edges


def small_case(rng, n_gt, n_pred):
    """A random case whose few videos and short frame ranges make many conflicting overlaps;
    the numbers of ground-truth and predicted intervals are drawn from ``[low, high)``."""
    n_gt, n_pred = int(rng.integers(*n_gt)), int(rng.integers(*n_pred))
    return random_case(rng, n_videos=2, n_gt=n_gt, n_pred=n_pred, max_frame=20, max_length=10)


@pytest.mark.parametrize("seed", range(40))
def test_counts_equal_brute_force_maximum_matching(seed):
    rng = np.random.default_rng(seed)
    gt, pred = small_case(rng, n_gt=(0, 6), n_pred=(0, 7))
    threshold = float(rng.choice([0.3, 0.5, 0.7]))
    result = evaluate_spotting(pred, gt, iou_threshold=threshold)
    for kind in ("micro", "macro"):
        keep_pred, keep_gt = pred[pred["type"] == kind], gt[gt["type"] == kind]
        if kind not in result.table.index:
            assert len(keep_pred) == len(keep_gt) == 0
            continue
        tp = brute_force_matching(exact_edges(keep_pred, keep_gt, threshold))
        assert counts(result, kind) == (tp, len(keep_pred) - tp, len(keep_gt) - tp)
    tp_all = brute_force_matching(exact_edges(pred, gt, threshold))
    assert counts(result) == (tp_all, len(pred) - tp_all, len(gt) - tp_all)


@pytest.mark.parametrize("seed", range(10))
def test_counts_equal_scipy_matching_on_larger_cases(seed):
    rng = np.random.default_rng(100 + seed)
    gt, pred = random_case(rng, n_videos=4, n_gt=60, n_pred=80, max_frame=150)
    result = evaluate_spotting(pred, gt, compute_ap=False)
    edges = exact_edges(pred, gt, 0.5)
    matched = maximum_bipartite_matching(csr_matrix(edges.astype(np.int8)), perm_type="column")
    tp = int((matched >= 0).sum())
    assert counts(result) == (tp, len(pred) - tp, len(gt) - tp)
    # Every reported pair is a legal, one-to-one match.
    assert result.matches["pred_row"].is_unique and result.matches["gt_row"].is_unique
    assert (result.matches["iou"] >= 0.5).all()


@pytest.mark.parametrize("seed", range(15))
def test_ap_equals_prefix_brute_force(seed):
    rng = np.random.default_rng(1000 + seed)
    gt, pred = small_case(rng, n_gt=(1, 5), n_pred=(1, 7))
    pred["score"] = rng.permutation(len(pred)) / len(pred)  # distinct scores
    order = np.argsort(-pred["score"].to_numpy())
    ranked = pred.iloc[order]
    expected = []
    for threshold in AP_IOU_THRESHOLDS:
        edges = exact_edges(ranked, gt, threshold)
        tp_prefix = [brute_force_matching(edges[:r]) for r in range(1, len(ranked) + 1)]
        recall = np.array(tp_prefix) / len(gt)
        precision = np.array(tp_prefix) / np.arange(1, len(ranked) + 1)
        envelope = [precision[i:].max() for i in range(len(precision))]
        levels = [
            max([e for e, r in zip(envelope, recall) if r >= level - 1e-12], default=0)
            for level in np.linspace(0, 1, 101)
        ]
        expected.append(np.mean(levels))
    result = evaluate_spotting(pred, gt)
    assert result.table.loc["overall", "AP"] == pytest.approx(np.mean(expected))
