"""LBCNN's tables: the model, frame-level scores, the MEGC spotting counts, the paper's
Table III beside ours, and the authors' double counting (a labelled aside)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from melib.evaluation.recognition import confusion_table, recognition_scores
from melib.evaluation.spotting import evaluate_spotting, lbcnn_double_counting
from melib.features.lbcnn import CLASS_NAMES, frame_labels
from melib.models.lbcnn import count_parameters
from melib.pipelines import common
from melib.pipelines.lbcnn.config import PAPER_TABLE3, SPOTTING_DATASETS, Setup
from melib.pipelines.lbcnn.run import DatasetRunResult, RunResult

__all__ = [
    "model_summary",
    "frame_metrics",
    "confusion",
    "evaluate",
    "spotting_tables",
    "table_iii",
    "double_counting_table",
]

RATIOS = ("precision", "recall", "F1")


def model_summary(setup: Setup) -> pd.DataFrame:
    model = setup.make_model()
    rows = [
        ("trunk", setup.trunk),
        ("input", f"(N, 6, {setup.input_size}, {setup.input_size})"),
        ("bilinear dim per branch", model.global_branch.dim),
        ("fused feature dim", model.feature_dim),
        ("head", f"fc {setup.hidden} + fc 3" if setup.hidden else "fc 3"),
        ("parameters", f"{count_parameters(model):,}"),
    ]
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


def _truth_of(dr: DatasetRunResult, video: str, p: dict) -> np.ndarray:
    labels = frame_labels(p["n_frames"], dr.truth[dr.truth["video"] == video])
    return labels[p["grid"]]


def frame_metrics(result: RunResult) -> pd.DataFrame:
    """Accuracy, UF1 and UAR of the per-frame classes, pooled over every classified
    frame of every held-out video (neutral, micro, macro)."""
    rows = []
    for name, dr in result.datasets.items():
        y = np.concatenate([_truth_of(dr, video, p) for video, p in dr.predictions.items()])
        yhat = np.concatenate([p["classes"] for p in dr.predictions.values()])
        s = recognition_scores(
            [CLASS_NAMES[i] for i in y], [CLASS_NAMES[i] for i in yhat], labels=list(CLASS_NAMES)
        )
        rows.append(
            {
                "dataset": name,
                "frames": s["n"],
                "accuracy": common.round_value(s["accuracy"]),
                "UF1": common.round_value(s["UF1"]),
                "UAR": common.round_value(s["UAR"]),
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


def confusion(result: RunResult, name: str) -> pd.DataFrame:
    dr = result.datasets[name]
    y = np.concatenate([_truth_of(dr, v, p) for v, p in dr.predictions.items()])
    yhat = np.concatenate([p["classes"] for p in dr.predictions.values()])
    return confusion_table(
        [CLASS_NAMES[i] for i in y], [CLASS_NAMES[i] for i in yhat], labels=list(CLASS_NAMES)
    )


def evaluate(result: RunResult) -> dict:
    """MEGC spotting metric per dataset, on every video (default rules)."""
    return {name: evaluate_spotting(dr.spotted, dr.truth) for name, dr in result.datasets.items()}


def spotting_tables(evaluations: dict) -> pd.DataFrame:
    """Counts and ratios per dataset and type (macro, micro, overall), rounded."""
    return _stack_counts({name: ev.table for name, ev in evaluations.items()})


def _stack_counts(tables: dict) -> pd.DataFrame:
    """Per-dataset count tables (indexed by type) as one table, ratios rounded."""
    parts = []
    for name, t in tables.items():
        t = t[["n_gt", "n_pred", "TP", "FP", "FN", *RATIOS]].copy()
        t.insert(0, "dataset", name)
        parts.append(t.reset_index())
    table = pd.concat(parts, ignore_index=True).set_index(["dataset", "type"])
    table = table.astype({c: float for c in RATIOS})
    return common.round_table(table)


_TABLE_III_COLUMNS = ("TP", "FP", "FN", "Precision", "Recall", "F1-score")


def table_iii(result: RunResult, evaluations: dict) -> pd.DataFrame:
    """The paper's Table III (overall counts: macro and micro pooled) with our rows.

    Rows labelled ``paper`` are the published numbers; ``ours`` is this run, on the
    synthetic corpus unless a ``data_root`` was given.
    """
    ours_source = "ours (synthetic)" if result.setup.data_root is None else "ours"
    rows = []
    for name in SPOTTING_DATASETS:
        label = common.dataset_label(name)
        for method in ("MDMD", "LBCNN"):
            paper = dict(zip(_TABLE_III_COLUMNS, PAPER_TABLE3[(method, name)]))
            rows.append({"method": f"{method} ({label})", "source": "paper", **paper})
        if name in evaluations:
            o = evaluations[name].table.loc["overall"]
            shown = label if result.setup.data_root is not None else f"synthetic {name}"
            counts = [int(o["TP"]), int(o["FP"]), int(o["FN"])]
            ours = counts + [_ratio(o["precision"]), _ratio(o["recall"]), _ratio(o["F1"])]
            rows.append(
                {"method": f"LBCNN ({shown})", "source": ours_source, **dict(zip(_TABLE_III_COLUMNS, ours))}
            )
    return pd.DataFrame(rows).set_index("method")


def _ratio(value) -> float:
    """A ratio for Table III: rounded, NaN (no prediction) kept as NaN."""
    return float("nan") if pd.isna(value) else common.round_value(float(value))


def double_counting_table(result: RunResult) -> pd.DataFrame:
    """Our intervals counted the authors' way (teaching only: one ground truth can be
    counted as several TPs). Compare with :func:`spotting_tables`, never report it."""
    return _stack_counts(
        {
            name: lbcnn_double_counting(dr.spotted, dr.truth).loc[["overall"]]
            for name, dr in result.datasets.items()
        }
    )
