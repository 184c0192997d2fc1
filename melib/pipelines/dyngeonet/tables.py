"""From window probabilities to intervals and scores: :func:`spot_video` merges the
positive windows, :func:`evaluate` scores every run with the MEGC metric, and the
other tables look at the windows themselves and at the merge rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from melib.evaluation.postprocess import merge_window_proposals
from melib.evaluation.spotting import evaluate_spotting
from melib.pipelines.common import dataset_label, round_value
from melib.pipelines.dyngeonet.config import BRANCH_NAMES, MERGES, Setup
from melib.pipelines.dyngeonet.data import Prepared
from melib.pipelines.dyngeonet.paper import ours_label
from melib.pipelines.dyngeonet.run import RunResult

__all__ = [
    "spot_video",
    "predictions",
    "score_run",
    "evaluate",
    "spotting_results",
    "cross_numbers",
    "window_metrics",
    "merge_comparison",
]


def spot_video(
    starts,
    length: int,
    stride: int,
    probs,
    threshold: float = 0.5,
    merge: str = "windows",
    n_frames: int | None = None,
) -> pd.DataFrame:
    """Positive windows (p >= threshold) of one video merged into intervals.

    ``"windows"``: the union of overlapping or touching positive windows. ``"middles"``:
    each positive window stands for the ``stride`` frames around its middle frame (the
    apex), and touching ones merge, so the interval spans the positive apexes.
    """
    starts = np.asarray(starts, np.int64)
    if merge == "windows":
        return merge_window_proposals(starts, length, probs, threshold, n_frames=n_frames)
    if merge == "middles":
        # stride <= L, so the blocks start inside the video; their middles are the apexes
        return merge_window_proposals(
            starts + length // 2 - stride // 2, stride, probs, threshold, n_frames=n_frames
        )
    raise ValueError(f"merge={merge!r}: use one of {MERGES}")


def predictions(prep: Prepared, result: RunResult, threshold: float, merge: str) -> pd.DataFrame:
    """Spotted micro-expression intervals of every scored video."""
    parts = []
    for video, probs in result.probs.items():
        w = prep.windows[video]
        spotted = spot_video(w.starts, prep.length, prep.stride, probs, threshold, merge, w.n_frames)
        parts.append(spotted.assign(video=video, type="micro"))
    if not parts:
        return pd.DataFrame(columns=["onset", "offset", "apex", "score", "video", "type"])
    return pd.concat(parts, ignore_index=True)


def score_run(
    prep: Prepared, result: RunResult, setup: Setup, threshold: float | None = None, merge: str | None = None
):
    """The MEGC result (micro rows) of one run, on the videos it scored."""
    pred = predictions(
        prep, result, setup.threshold if threshold is None else threshold, merge or setup.merge
    )
    gt = prep.gt[prep.gt["video"].isin(list(result.probs)) & (prep.gt["type"] == "micro")]
    return evaluate_spotting(
        pred[["video", "onset", "offset", "type", "score"]],
        gt[["video", "onset", "offset", "type"]],
        iou_threshold=0.5,
        types=["micro"],
    )


def evaluate(prepared: dict, runs: dict, setup: Setup) -> pd.DataFrame:
    """TP, FP, FN, precision, recall and F1 (micro, IoU >= 0.5) of every run."""
    rows = []
    for result in runs.values():
        r = score_run(prepared[result.dataset], result, setup).table.loc["micro"]
        rows.append(
            {
                "dataset": dataset_label(result.dataset),
                "protocol": result.protocol,
                "network": result.method,
                "GT": int(r["n_gt"]),
                "TP": int(r["TP"]),
                "FP": int(r["FP"]),
                "FN": int(r["FN"]),
                "precision": round_value(r["precision"]),
                "recall": round_value(r["recall"]),
                # no micro-expression to find: F1 would only count the false positives
                "F1": round_value(r["F1"]) if r["n_gt"] else np.nan,
            }
        )
    columns = ["dataset", "protocol", "network", "GT", "TP", "FP", "FN", "precision", "recall", "F1"]
    table = pd.DataFrame(rows, columns=columns).set_index(["dataset", "protocol", "network"])
    table.attrs["ours"] = ours_label(setup)
    return table


def spotting_results(prepared: dict, runs: dict, setup: Setup, branch: str | None = None) -> dict:
    """``{dataset: SpottingResult}`` of the LOSO runs of one branch (the chosen one by
    default), for :func:`melib.book.spotting_numbers`."""
    branch = branch or setup.branch
    return {
        name: _nan_without_truth(score_run(prepared[name], result, setup))
        for (name, b), result in runs.items()
        if b == branch and result.protocol == "LOSO"
    }


def _nan_without_truth(result):
    """F1 is NaN (not 0) for a type with no annotated interval among the scored videos."""
    table = result.table.copy()
    table.loc[table["n_gt"] == 0, "F1"] = np.nan
    return replace(result, table=table)


def cross_numbers(results: pd.DataFrame, setup: Setup) -> dict:
    """``{setup_<x>_f1, setup_<x>_vgg16_f1}``: our F1 of each cross-database setup run."""
    out = {}
    for cross in setup.cross_setups:
        ours = results.xs(cross, level="protocol").droplevel("dataset")["F1"]
        out[f"setup_{cross.lower()}_f1"] = ours.get(BRANCH_NAMES[setup.branch], np.nan)
        out[f"setup_{cross.lower()}_vgg16_f1"] = ours.get("VGG16 (frames)", np.nan)
    return out


def window_metrics(runs: dict, prepared: dict, threshold: float = 0.5) -> pd.DataFrame:
    """Window-level accuracy of the classifier itself (before merging): positives,
    predicted positives, recall and precision of the positive windows."""
    rows = []
    for result in runs.values():
        y = np.concatenate([prepared[result.dataset].windows[v].labels for v in result.probs])
        p = np.concatenate([result.probs[v] for v in result.probs]) >= threshold
        tp = int((y.astype(bool) & p).sum())
        rows.append(
            {
                "dataset": dataset_label(result.dataset),
                "protocol": result.protocol,
                "network": result.method,
                "windows": len(y),
                "positive": int(y.sum()),
                "predicted positive": int(p.sum()),
                "window recall": round_value(tp / y.sum()) if y.sum() else np.nan,
                "window precision": round_value(tp / p.sum()) if p.sum() else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index(["dataset", "protocol", "network"])


def merge_comparison(prepared: dict, runs: dict, setup: Setup) -> pd.DataFrame:
    """F1 of the same scores merged both ways (no retraining): how much of the result the
    interval rule decides."""
    rows = []
    for (name, branch), result in runs.items():
        if branch != setup.branch:
            continue
        row = {"dataset": dataset_label(name), "network": result.method}
        for merge in MERGES:
            r = score_run(prepared[name], result, setup, merge=merge).table.loc["micro"]
            row[f"F1 ({merge})"] = round_value(r["F1"])
            row[f"TP/FP ({merge})"] = f"{int(r['TP'])}/{int(r['FP'])}"
        rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "network"])
