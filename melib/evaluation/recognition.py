"""Recognition metrics: accuracy, UF1 and UAR (MEGC2019), confusion matrices.

Definitions (scikit-learn computes each of them):

- accuracy: ``accuracy_score``.
- UF1: mean over classes of ``2TP_c / (2TP_c + FP_c + FN_c)``, i.e. ``f1_score(...,
  average="macro")``.
- UAR: mean over classes of the recall of that class, i.e. ``recall_score(...,
  average="macro")`` (balanced accuracy when no predicted class is outside the
  classes averaged over).

Which classes are averaged over
-------------------------------
By default the classes present in the **ground truth of the samples being scored**. A
prediction of a class outside that set is still an error (an FN of the true class),
but that class does not add a zero F1/recall of its own. This matters in two places:

- pooled scoring (the MEGC2019 convention, our default): every class of the dataset
  occurs in the pooled ground truth, so this is just the macro average over classes;
- the per-fold mean (``per_fold_mean=True``, what some papers report): a LOSO fold is
  one subject, who rarely shows every class. Averaging over classes absent from that
  subject would add 0/0 terms; we leave them out, so each fold's UF1/UAR averages over
  the classes that subject shows, and the folds are then averaged with equal weight.

Pass ``labels=`` to average over a fixed class list instead (absent classes then count
as 0, scikit-learn's ``zero_division=0``).

Labels
------
Class names are compared as spotting compares its types: without surrounding spaces
and case (``"Negative "`` is ``"negative"``); tables and matrices show the lower-case
form. A sample (``sample``, within its ``dataset`` when that column is given) listed
twice with the same labels is counted once, with an ``EvaluationWarning`` naming the
row; listed twice with different labels it is an error naming both rows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from melib.evaluation.spotting import drop_repeated_rows, row_namer

RECOGNITION_COLUMNS = ("sample", "subject", "dataset", "true", "predicted")
LABEL_COLUMNS = ("true", "predicted")


def normalize_label(value):
    """The form a class name is compared in: stripped and lower-case (other values as is)."""
    return value.strip().lower() if isinstance(value, str) else value


def _normalized(values) -> np.ndarray:
    return np.asarray([normalize_label(v) for v in np.asarray(values, dtype=object)], dtype=object)


def _normalized_labels(labels):
    if labels is None:
        return None
    return list(dict.fromkeys(normalize_label(label) for label in labels))


def _class_list(y_true, labels=None) -> list:
    if labels is not None:
        return list(labels)
    return sorted(pd.unique(pd.Series(y_true, dtype=object)).tolist(), key=str)


def recognition_scores(y_true, y_pred, labels=None) -> dict:
    """Accuracy, UF1 and UAR of one set of predictions (see module doc for ``labels``)."""
    y_true = _normalized(y_true)
    y_pred = _normalized(y_pred)
    labels = _normalized_labels(labels)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if len(y_true) == 0:
        return {"n": 0, "accuracy": math.nan, "UF1": math.nan, "UAR": math.nan}
    classes = _class_list(y_true, labels)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "UF1": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        "UAR": float(recall_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
    }


def confusion_table(y_true, y_pred, labels=None) -> pd.DataFrame:
    """Confusion matrix as a DataFrame: rows are true classes, columns predicted ones.

    The default class list is every class seen in either column, so predictions of a
    class absent from the ground truth stay visible.
    """
    y_true, y_pred = _normalized(y_true), _normalized(y_pred)
    labels = _normalized_labels(labels)
    if labels is None:
        labels = sorted(set(pd.Series(y_true, dtype=object)) | set(pd.Series(y_pred, dtype=object)), key=str)
    with warnings.catch_warnings():
        # scikit-learn warns about a single label even when ``labels`` lists them all.
        warnings.filterwarnings("ignore", message="A single label was found")
        matrix = confusion_matrix(
            np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object), labels=list(labels)
        )
    return pd.DataFrame(
        matrix, index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="predicted")
    )


def validate_recognition(frame: pd.DataFrame, what: str = "predictions") -> pd.DataFrame:
    """Check a recognition table (``sample, subject, [dataset,] true, predicted``).

    Returns a copy with stripped text, lower-case labels and each sample once (module doc).
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}")
    what, where = row_namer(frame, what)
    required = ["sample", "subject", "true", "predicted"]
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{what}: missing column(s) {missing}; the table needs "
            f"{list(RECOGNITION_COLUMNS)} (dataset optional), found "
            f"{list(frame.columns)}"
        )
    clean = frame.copy()
    for column in [c for c in RECOGNITION_COLUMNS if c in clean.columns]:
        blank = (clean[column].isna() | (clean[column].astype(str).str.strip() == "")).to_numpy()
        if blank.any():
            raise ValueError(f"{what}: {where(int(np.flatnonzero(blank)[0]))}: empty {column}")
        clean[column] = clean[column].astype(str).str.strip()
        if column in LABEL_COLUMNS:
            clean[column] = clean[column].str.lower()
    return _drop_repeated_samples(clean, what, where)


def _drop_repeated_samples(clean: pd.DataFrame, what: str, where) -> pd.DataFrame:
    key = [c for c in ("dataset", "sample") if c in clean.columns]
    repeated = clean.duplicated(key, keep="first").to_numpy()
    if not repeated.any():
        return clean
    positions = np.arange(len(clean))
    first_of = {}
    for position, sample_key in zip(positions, map(tuple, clean[key].to_numpy())):
        first_of.setdefault(sample_key, position)
    values = clean[["subject", *LABEL_COLUMNS]].to_numpy()
    for position in np.flatnonzero(repeated):
        first = first_of[tuple(clean[key].iloc[position])]
        if tuple(values[position]) != tuple(values[first]):
            shown = ", ".join(
                f"{c} {values[first][i]!r} / {values[position][i]!r}"
                for i, c in enumerate(["subject", *LABEL_COLUMNS])
                if values[first][i] != values[position][i]
            )
            raise ValueError(
                f"{what}: {where(position)}: sample "
                f"{clean['sample'].iloc[position]!r} is also {where(first)} with "
                f"other values ({shown}); keep one row per sample"
            )
    row = int(np.flatnonzero(repeated)[0])
    first = first_of[tuple(clean[key].iloc[row])]
    return drop_repeated_rows(
        clean,
        repeated,
        f"{what}: {where(row)} repeats sample {clean['sample'].iloc[row]!r} of {where(first)}",
        earlier="samples",
        each="each sample",
        stacklevel=5,
    )


@dataclass
class RecognitionResult:
    """Outcome of :func:`evaluate_recognition`.

    ``table``: rows ``all`` then one per source dataset (when a ``dataset`` column is
    given), columns n, accuracy, UF1, UAR. ``per_fold``: the same per subject.
    ``confusion``: pooled confusion matrix. ``per_dataset_confusion``: one per dataset.
    """

    table: pd.DataFrame
    per_fold: pd.DataFrame
    confusion: pd.DataFrame
    per_dataset_confusion: dict
    per_fold_mean: bool = False

    def to_dict(self) -> dict:
        def clean(value):
            if isinstance(value, np.integer):
                return int(value)
            if isinstance(value, (float, np.floating)):
                return None if math.isnan(value) else float(value)
            return value

        return {
            "averaging": "mean over folds (subjects)"
            if self.per_fold_mean
            else "pooled over all folds (MEGC2019)",
            "results": {
                name: {k: clean(v) for k, v in row.items()}
                for name, row in self.table.to_dict(orient="index").items()
            },
            "confusion": {
                "labels": [str(c) for c in self.confusion.columns],
                "matrix": self.confusion.to_numpy().tolist(),
            },
        }

    def __str__(self) -> str:
        shown = self.table.copy()
        for column in ("accuracy", "UF1", "UAR"):
            shown[column] = shown[column].map(lambda v: "nan" if pd.isna(v) else f"{v:.4f}")
        return shown.to_string()


def _fold_key(frame: pd.DataFrame) -> pd.Series:
    # Subject ids repeat across the composite's datasets (SMIC "s1" vs CASME II "1"),
    # so a fold is a (dataset, subject) pair whenever the dataset is known.
    if "dataset" in frame.columns:
        return frame["dataset"].astype(str) + "/" + frame["subject"].astype(str)
    return frame["subject"].astype(str)


def per_fold_scores(frame: pd.DataFrame, labels=None) -> pd.DataFrame:
    """Accuracy/UF1/UAR of every LOSO fold (one subject each)."""
    rows = []
    for fold, rows_of_fold in frame.groupby(_fold_key(frame), sort=True):
        scores = recognition_scores(rows_of_fold["true"], rows_of_fold["predicted"], labels)
        entry = {"fold": fold, "subject": rows_of_fold["subject"].iloc[0]}
        if "dataset" in frame.columns:
            entry["dataset"] = rows_of_fold["dataset"].iloc[0]
        rows.append({**entry, **scores})
    return pd.DataFrame(rows)


def _summarise(frame: pd.DataFrame, folds: pd.DataFrame, per_fold_mean: bool, labels) -> dict:
    if not per_fold_mean:
        return recognition_scores(frame["true"], frame["predicted"], labels)
    return {
        "n": int(len(frame)),
        "accuracy": float(folds["accuracy"].mean()),
        "UF1": float(folds["UF1"].mean()),
        "UAR": float(folds["UAR"].mean()),
    }


def evaluate_recognition(frame: pd.DataFrame, per_fold_mean: bool = False, labels=None) -> RecognitionResult:
    """Score LOSO predictions (columns ``sample, subject, [dataset,] true, predicted``).

    Pooled over every fold by default (MEGC2019); ``per_fold_mean`` averages the
    per-subject scores instead. With a ``dataset`` column the table also breaks the
    composite down by source dataset (each pooled within that dataset, or averaged over
    that dataset's subjects).
    """
    frame = validate_recognition(frame)
    if frame.empty:
        raise ValueError("predictions: the table has no rows; give one row per scored sample")
    labels = _normalized_labels(labels)
    if labels is not None:
        present = list(dict.fromkeys([*frame["true"], *frame["predicted"]]))
        unlisted = [label for label in present if label not in labels]
        if unlisted:
            raise ValueError(
                f"labels={list(labels)} leaves out {unlisted}, which the predictions use; "
                "those samples would be dropped from UF1/UAR: list every class in labels"
            )
    folds = per_fold_scores(frame, labels)
    rows = {"all": _summarise(frame, folds, per_fold_mean, labels)}
    per_dataset_confusion = {}
    # One class list for every matrix, so that the per-dataset ones line up.
    confusion_labels = (
        list(labels) if labels is not None else sorted(set(frame["true"]) | set(frame["predicted"]), key=str)
    )
    if "dataset" in frame.columns:
        for dataset, subset in frame.groupby("dataset", sort=True):
            rows[dataset] = _summarise(subset, folds[folds["dataset"] == dataset], per_fold_mean, labels)
            per_dataset_confusion[dataset] = confusion_table(
                subset["true"], subset["predicted"], confusion_labels
            )
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "subset"
    return RecognitionResult(
        table=table,
        per_fold=folds,
        confusion=confusion_table(frame["true"], frame["predicted"], confusion_labels),
        per_dataset_confusion=per_dataset_confusion,
        per_fold_mean=per_fold_mean,
    )
