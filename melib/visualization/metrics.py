"""Figures that teach the evaluation: interval matches, IoU cases, PR curves, LOSO folds.

Every function returns a Matplotlib ``Figure`` (drawing on ``ax`` when one is given).
Colours: ground truth green, matched predictions blue, false positives red, missed
ground truth hatched.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from melib.evaluation.spotting import (
    evaluate_spotting,
    iou_matrix,
    precision_recall_curve,
    validate_intervals,
)

__all__ = [
    "plot_interval_matching",
    "plot_matching_cases",
    "plot_precision_recall",
    "plot_loso_folds",
    "plot_metric_comparison",
]

GT_COLOR = "tab:green"
TP_COLOR = "tab:blue"
FP_COLOR = "tab:red"


def _new_axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize)


def _lanes(intervals: pd.DataFrame) -> list[int]:
    """Stack overlapping intervals on separate lanes (first lane that is free)."""
    lane_ends: list[int] = []
    lanes = [0] * len(intervals)
    for position in np.argsort(intervals["onset"].to_numpy(), kind="stable"):
        onset, offset = intervals["onset"].iloc[position], intervals["offset"].iloc[position]
        for lane, end in enumerate(lane_ends):
            if onset > end:
                lane_ends[lane] = offset
                lanes[position] = lane
                break
        else:
            lane_ends.append(offset)
            lanes[position] = len(lane_ends) - 1
    return lanes


def plot_interval_matching(
    pred: pd.DataFrame,
    gt: pd.DataFrame,
    iou_threshold: float = 0.5,
    video: str | None = None,
    ax=None,
    title: str | None = None,
    show_counts: bool = True,
):
    """Ground truth (bottom) and predictions (top) of one video, with the matching.

    Bars span inclusive frames ``[onset, offset + 1)``. Matched pairs are joined by a
    line labelled with their IoU; each prediction is labelled with its best IoU when it
    did not match. ``video`` defaults to the first video of either table.
    """
    pred = validate_intervals(pred, "predictions").reset_index(drop=True)
    gt = validate_intervals(gt, "ground truth").reset_index(drop=True)
    if video is None:
        videos = sorted(set(pred["video"]) | set(gt["video"]))
        video = videos[0] if videos else ""
    pred = pred[pred["video"] == video].reset_index(drop=True)
    gt = gt[gt["video"] == video].reset_index(drop=True)
    result = evaluate_spotting(pred, gt, iou_threshold=iou_threshold, compute_ap="score" in pred.columns)
    matched_gt = dict(zip(result.matches["pred_row"], result.matches["gt_row"]))
    matched_iou = dict(zip(result.matches["pred_row"], result.matches["iou"]))

    fig, ax = _new_axes(ax, (8, 1.2 + 0.35 * (len(pred) + len(gt))))
    gt_lanes, pred_lanes = _lanes(gt), _lanes(pred)
    n_gt_lanes = max(gt_lanes, default=-1) + 1
    gt_y = {i: lane for i, lane in enumerate(gt_lanes)}
    pred_y = {i: n_gt_lanes + 1 + lane for i, lane in enumerate(pred_lanes)}
    for i, row in gt.iterrows():
        missed = i not in matched_gt.values()
        ax.barh(
            gt_y[i],
            row["offset"] + 1 - row["onset"],
            left=row["onset"],
            height=0.6,
            color="white" if missed else GT_COLOR,
            edgecolor=GT_COLOR,
            hatch="//" if missed else None,
            lw=1.5,
        )
        ax.text(row["onset"], gt_y[i], f" GT {row['type']}", va="center", fontsize=7)
    best_iou = _best_iou(pred, gt)
    for i, row in pred.iterrows():
        matched = i in matched_gt
        ax.barh(
            pred_y[i],
            row["offset"] + 1 - row["onset"],
            left=row["onset"],
            height=0.6,
            color=TP_COLOR if matched else FP_COLOR,
            alpha=0.8,
        )
        label = f"IoU {matched_iou[i]:.2f}" if matched else f"best IoU {best_iou[i]:.2f}"
        if "score" in pred.columns:
            label += f", score {row['score']:.2f}"
        ax.text(row["offset"] + 1, pred_y[i], " " + label, va="center", fontsize=7)
        if matched:
            target = gt.loc[matched_gt[i]]
            ax.plot(
                [(row["onset"] + row["offset"] + 1) / 2, (target["onset"] + target["offset"] + 1) / 2],
                [pred_y[i] - 0.3, gt_y[matched_gt[i]] + 0.3],
                color="0.3",
                lw=0.8,
            )
    ax.set_yticks([])
    ax.set_xlabel("frame (0-based; a bar covers its inclusive frames)")
    counts = result.table.loc["overall"]
    heading = title if title is not None else f"video {video}"
    if show_counts:
        heading += (
            f"  TP {int(counts['TP'])}  FP {int(counts['FP'])}  FN {int(counts['FN'])}"
            f"  (IoU >= {iou_threshold:g})"
        )
    ax.set_title(heading, fontsize=9)
    ax.set_ylim(-0.8, n_gt_lanes + 1 + max(pred_lanes, default=-1) + 0.8)
    frames = pd.concat([pred[["onset", "offset"]], gt[["onset", "offset"]]])
    if len(frames):
        span = frames["offset"].max() + 1 - frames["onset"].min()
        ax.set_xlim(frames["onset"].min() - 0.05 * span, frames["offset"].max() + 1 + 0.45 * span)
    return fig


def _best_iou(pred: pd.DataFrame, gt: pd.DataFrame) -> list[float]:
    if len(pred) == 0:
        return []
    best = np.zeros(len(pred))
    for kind in set(pred["type"]):
        rows = np.flatnonzero(pred["type"].to_numpy() == kind)
        same_type = gt[gt["type"] == kind]
        if len(same_type):
            best[rows] = iou_matrix(pred.iloc[rows], same_type).max(axis=1)
    return list(best)


def plot_matching_cases(cases: dict, iou_threshold: float = 0.5, width: float = 8.0):
    """Small multiples: ``{title: (pred, gt)}``, each drawn by :func:`plot_interval_matching`."""
    import matplotlib.pyplot as plt

    heights = [1.0 + 0.35 * (len(p) + len(g)) for p, g in cases.values()]
    fig, axes = plt.subplots(
        len(cases), 1, figsize=(width, sum(heights)), gridspec_kw={"height_ratios": heights}, squeeze=False
    )
    for ax, (title, (pred, gt)) in zip(axes[:, 0], cases.items()):
        plot_interval_matching(pred, gt, iou_threshold=iou_threshold, ax=ax, title=title)
    fig.tight_layout()
    return fig


def plot_precision_recall(curves: dict, ax=None, title: str = "Precision-recall"):
    """Step plots of ``{label: (pred, gt, iou_threshold[, rank_by_row_order])}``.

    The dashed line is the interpolated envelope (precision's running maximum from the
    high-recall end) whose average over recall levels is the AP.
    """
    fig, ax = _new_axes(ax, (4.8, 3.6))
    for label, spec in curves.items():
        pred, gt, threshold = spec[:3]
        by_row_order = bool(spec[3]) if len(spec) > 3 else False
        points = precision_recall_curve(pred, gt, threshold, rank_by_row_order=by_row_order)
        if points.empty:
            continue
        recall = np.concatenate([[0.0], points["recall"].to_numpy()])
        precision = np.concatenate([[points["precision"].iloc[0]], points["precision"].to_numpy()])
        (line,) = ax.step(recall, precision, where="post", label=label)
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        ax.step(recall, envelope, where="post", ls="--", color=line.get_color(), alpha=0.6)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig


def plot_loso_folds(subjects, folds, ax=None, title: str = "LOSO folds"):
    """Which subjects each fold tests (dark) and trains on (light); one row per fold."""
    from matplotlib.colors import ListedColormap

    subject_names = sorted(set(pd.Series(subjects, dtype=object).astype(str)))
    column = {name: i for i, name in enumerate(subject_names)}
    grid = np.zeros((len(folds), len(subject_names)))
    subject_array = pd.Series(subjects, dtype=object).astype(str).to_numpy()
    for row, fold in enumerate(folds):
        for name in set(subject_array[fold.train]):
            grid[row, column[name]] = 1
        for name in set(subject_array[fold.test]):
            grid[row, column[name]] = 2
    fig, ax = _new_axes(
        ax, (min(12.0, max(4.0, 0.28 * len(subject_names) + 1.5)), max(2.0, 0.25 * len(folds) + 1.2))
    )
    ax.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(["white", "#c6dbef", "#08519c"]),
        vmin=0,
        vmax=2,
    )
    ax.set_xticks(range(len(subject_names)))
    ax.set_xticklabels(subject_names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(folds)))
    ax.set_yticklabels([f"fold {fold.index}" for fold in folds], fontsize=6)
    ax.set_xlabel("subject (dark: tested, light: trained on)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_metric_comparison(
    table: pd.DataFrame, metrics=("F1", "AP"), ax=None, title: str = "How evaluation choices move the numbers"
):
    """Grouped bars: one group per row of ``table`` (a setting), one bar per metric."""
    fig, ax = _new_axes(ax, (1.2 + 1.3 * len(table), 3.2))
    positions = np.arange(len(table))
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        values = table[metric].astype(float).to_numpy()
        bars = ax.bar(
            positions + (i - (len(metrics) - 1) / 2) * width, np.nan_to_num(values), width, label=metric
        )
        for bar, value in zip(bars, values):
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                bar.get_height(),
                "nan" if np.isnan(value) else f"{value:.3f}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xticks(positions)
    ax.set_xticklabels([str(name) for name in table.index], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("score")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
