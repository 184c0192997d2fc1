"""The teaching figures of melib.visualization.metrics draw without error."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from melib.evaluation.protocols import loso_splits  # noqa: E402
from melib.evaluation.spotting import precision_recall_curve  # noqa: E402
from melib.visualization.metrics import (  # noqa: E402
    plot_interval_matching,
    plot_loso_folds,
    plot_matching_cases,
    plot_metric_comparison,
    plot_precision_recall,
)

PRED = pd.DataFrame(
    {
        "video": ["v", "v", "w"],
        "onset": [0, 1, 5],
        "offset": [9, 9, 8],
        "type": ["micro"] * 3,
        "score": [0.9, 0.8, 0.4],
    }
)
GT = pd.DataFrame({"video": ["v", "v"], "onset": [0, 30], "offset": [9, 40], "type": ["micro", "macro"]})


def test_figures_draw():
    figures = [
        plot_interval_matching(PRED, GT, video="v"),
        plot_matching_cases({"case": (PRED, GT), "empty": (PRED.iloc[:0], GT)}),
        plot_precision_recall({"scores": (PRED, GT, 0.5), "row order": (PRED, GT, 0.5, True)}),
        plot_loso_folds(["a", "b", "c", "a"], loso_splits(["a", "b", "c", "a"])),
        plot_metric_comparison(
            pd.DataFrame({"F1": [0.5, 0.2], "AP": [0.3, float("nan")]}, index=["MEGC", "authors"])
        ),
    ]
    assert all(fig.axes for fig in figures)
    for fig in figures:
        plt.close(fig)


def test_precision_recall_curve_points():
    points = precision_recall_curve(PRED, GT)
    assert points["recall"].tolist() == [0.5, 0.5, 0.5]  # the macro GT is never matched
    assert points["precision"].tolist() == [1.0, 0.5, 1 / 3]
