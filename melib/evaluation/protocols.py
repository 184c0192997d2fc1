"""Evaluation protocols: LOSO, leave-one-dataset-out (DynGeoNet A/B/C), MEGC2019 composite.

A split is a :class:`Fold`: positional ``train`` and ``test`` index arrays into the
table the caller passed, plus the held-out subjects (or datasets). All splitters are
deterministic: the same table gives the same folds in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

# DynGeoNet (Tran, Vo & Zhao 2021, section 4.1): train on two long-video datasets, test on the third.
CROSS_DATASET_SETUPS = {
    "A": {"train": ("smic_e_long", "casme_sq"), "test": "samm_lv"},
    "B": {"train": ("casme_sq", "samm_lv"), "test": "smic_e_long"},
    "C": {"train": ("smic_e_long", "samm_lv"), "test": "casme_sq"},
}

# MEGC2019 composite: SMIC-HS 16 + CASME II 24 + SAMM 28 subjects.
COMPOSITE_DATASETS = ("smic_hs", "casme2", "samm")
COMPOSITE_SUBJECTS = 68


@dataclass(frozen=True)
class Fold:
    index: int
    train: np.ndarray
    test: np.ndarray
    held_out: tuple

    def __repr__(self) -> str:
        return (
            f"Fold({self.index}, train={len(self.train)}, test={len(self.test)}, "
            f"held_out={list(self.held_out)})"
        )


def loso_splits(subjects, max_folds: int | None = None) -> list[Fold]:
    """Leave-one-subject-out folds over ``subjects`` (one entry per sample or video).

    ``max_folds`` (for CPU profiles) caps the number of folds with scikit-learn's
    ``GroupKFold``: several subjects are held out together, but every sample is still
    tested exactly once and no subject is split across train and test. ``None``, or a
    value at least the number of subjects, gives true LOSO, ordered by subject id.
    """
    groups = pd.Series(subjects, dtype=object).astype(str).to_numpy()
    n_subjects = len(set(groups))
    if n_subjects < 2:
        raise ValueError(f"LOSO needs at least 2 subjects, got {n_subjects}")
    if max_folds is not None and max_folds < 2:
        raise ValueError(f"max_folds must be >= 2 (or None for full LOSO), got {max_folds}")
    placeholder = np.zeros(len(groups))
    if max_folds is None or max_folds >= n_subjects:
        splitter = LeaveOneGroupOut()
    else:
        # GroupKFold without shuffling balances fold sizes deterministically.
        splitter = GroupKFold(n_splits=max_folds)
    folds = []
    for index, (train, test) in enumerate(splitter.split(placeholder, groups=groups)):
        held_out = tuple(sorted(set(groups[test])))
        folds.append(Fold(index, np.asarray(train), np.asarray(test), held_out))
    return folds


def fold_assignment(subjects, folds: list[Fold]) -> pd.Series:
    """The test fold of every sample (for tables and plots)."""
    assignment = np.full(len(subjects), -1, dtype=int)
    for fold in folds:
        assignment[fold.test] = fold.index
    return pd.Series(assignment, name="fold")


def cross_dataset_split(datasets, setup: str) -> Fold:
    """DynGeoNet's leave-one-dataset-out setup ``"A"``, ``"B"`` or ``"C"``.

    ``datasets`` holds the dataset key of every sample/video; samples of datasets the
    setup does not name are in neither part.
    """
    if setup not in CROSS_DATASET_SETUPS:
        raise ValueError(f"unknown cross-dataset setup {setup!r}; use one of {sorted(CROSS_DATASET_SETUPS)}")
    spec = CROSS_DATASET_SETUPS[setup]
    keys = pd.Series(datasets, dtype=object).astype(str).to_numpy()
    train = np.flatnonzero(np.isin(keys, spec["train"]))
    test = np.flatnonzero(keys == spec["test"])
    missing = [name for name in (*spec["train"], spec["test"]) if name not in set(keys)]
    if missing:
        raise ValueError(
            f"cross-dataset setup {setup}: no samples from {missing}; it trains "
            f"on {list(spec['train'])} and tests on {spec['test']}"
        )
    return Fold(ord(setup) - ord("A"), train, test, (spec["test"],))


def cross_dataset_splits(datasets) -> dict[str, Fold]:
    """All three DynGeoNet setups that the given datasets allow."""
    present = set(pd.Series(datasets, dtype=object).astype(str))
    return {
        setup: cross_dataset_split(datasets, setup)
        for setup, spec in CROSS_DATASET_SETUPS.items()
        if set(spec["train"]) | {spec["test"]} <= present
    }


def composite_subject_keys(table: pd.DataFrame) -> pd.Series:
    """``dataset/subject`` keys: subject ids alone collide across the composite's datasets."""
    missing = [column for column in ("dataset", "subject") if column not in table.columns]
    if missing:
        raise ValueError(f"composite protocol: table lacks column(s) {missing}")
    return table["dataset"].astype(str) + "/" + table["subject"].astype(str)


def composite_loso_splits(
    table: pd.DataFrame, max_folds: int | None = None, expect_full: bool = False
) -> list[Fold]:
    """MEGC2019 composite protocol: LOSO over every subject of SMIC, CASME II and SAMM.

    With the real datasets that is 68 folds; ``expect_full=True`` checks it (the
    synthetic corpus has fewer subjects).
    """
    keys = composite_subject_keys(table)
    if expect_full and keys.nunique() != COMPOSITE_SUBJECTS:
        raise ValueError(
            f"composite protocol: expected {COMPOSITE_SUBJECTS} subjects "
            f"(SMIC 16 + CASME II 24 + SAMM 28), found {keys.nunique()}"
        )
    return loso_splits(keys, max_folds=max_folds)
