"""Recognition metrics against scikit-learn and hand counts; protocols."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from melib.evaluation.protocols import (
    CROSS_DATASET_SETUPS,
    composite_loso_splits,
    cross_dataset_split,
    cross_dataset_splits,
    fold_assignment,
    loso_splits,
)
from melib.evaluation.recognition import (
    confusion_table,
    evaluate_recognition,
    recognition_scores,
)

CLASSES = ["negative", "positive", "surprise"]


def composite_predictions(seed=0, n=120):
    rng = np.random.default_rng(seed)
    datasets = rng.choice(["smic_hs", "casme2", "samm"], n)
    subjects = [f"s{rng.integers(4)}" for _ in range(n)]
    true = rng.choice(CLASSES, n, p=[0.5, 0.3, 0.2])
    predicted = np.where(rng.random(n) < 0.6, true, rng.choice(CLASSES, n))
    return pd.DataFrame(
        {
            "sample": [f"x{i}" for i in range(n)],
            "subject": subjects,
            "dataset": datasets,
            "true": true,
            "predicted": predicted,
        }
    )


def test_uf1_and_uar_hand_computed():
    true = ["a", "a", "a", "b", "c", "c"]
    pred = ["a", "a", "b", "b", "a", "c"]
    # a: TP2 FP1 FN1 -> F1 4/6; b: TP1 FP1 FN0 -> 2/3; c: TP1 FP0 FN1 -> 2/3.
    scores = recognition_scores(true, pred)
    assert scores["UF1"] == pytest.approx(2 / 3)
    # Recalls 2/3, 1, 1/2.
    assert scores["UAR"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert scores["accuracy"] == pytest.approx(4 / 6)


@pytest.mark.parametrize("seed", range(5))
def test_pooled_scores_agree_with_sklearn(seed):
    frame = composite_predictions(seed)
    result = evaluate_recognition(frame)
    row = result.table.loc["all"]
    assert row["UF1"] == pytest.approx(f1_score(frame["true"], frame["predicted"], average="macro"))
    assert row["UAR"] == pytest.approx(recall_score(frame["true"], frame["predicted"], average="macro"))
    assert row["UAR"] == pytest.approx(balanced_accuracy_score(frame["true"], frame["predicted"]))
    for dataset, subset in frame.groupby("dataset"):
        assert result.table.loc[dataset, "UF1"] == pytest.approx(
            f1_score(subset["true"], subset["predicted"], average="macro")
        )
    assert result.confusion.to_numpy().sum() == len(frame)
    assert list(result.confusion.index) == CLASSES


def test_per_fold_mean_uses_classes_present_in_each_fold():
    frame = pd.DataFrame(
        {
            "sample": list("abcde"),
            "subject": ["s1", "s1", "s2", "s2", "s2"],
            "true": ["neg", "neg", "neg", "pos", "sur"],
            "predicted": ["neg", "pos", "neg", "pos", "neg"],
        }
    )
    result = evaluate_recognition(frame, per_fold_mean=True)
    folds = result.per_fold.set_index("subject")
    # s1 shows only "neg": F1 = 2*1/(2+0+1) = 2/3, recall 1/2 (pos is not averaged).
    assert folds.loc["s1", "UF1"] == pytest.approx(2 / 3)
    assert folds.loc["s1", "UAR"] == pytest.approx(1 / 2)
    # s2: neg F1 2/3, pos 1, sur 0 -> 5/9; recalls 1, 1, 0 -> 2/3.
    assert folds.loc["s2", "UF1"] == pytest.approx(5 / 9)
    assert result.table.loc["all", "UF1"] == pytest.approx((2 / 3 + 5 / 9) / 2)
    assert result.table.loc["all", "UAR"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    pooled = evaluate_recognition(frame)
    assert pooled.table.loc["all", "UF1"] == pytest.approx(
        f1_score(frame["true"], frame["predicted"], average="macro")
    )


def test_prediction_of_a_class_absent_from_truth_stays_visible():
    confusion = confusion_table(["a", "a"], ["a", "z"])
    assert list(confusion.columns) == ["a", "z"]
    assert confusion.loc["a", "z"] == 1


def test_missing_column_is_reported():
    with pytest.raises(ValueError, match="missing column"):
        evaluate_recognition(pd.DataFrame({"sample": ["x"], "true": ["a"], "predicted": ["a"]}))


# ------------------------------------------------------------------------ protocols


def test_loso_holds_out_each_subject_once():
    subjects = ["s3", "s1", "s2", "s1", "s3", "s2", "s4"]
    folds = loso_splits(subjects)
    assert [fold.held_out for fold in folds] == [("s1",), ("s2",), ("s3",), ("s4",)]
    tested = np.concatenate([fold.test for fold in folds])
    assert sorted(tested) == list(range(len(subjects)))
    for fold in folds:
        assert not set(np.asarray(subjects)[fold.train]) & set(fold.held_out)


def test_reduced_folds_are_deterministic_and_grouped():
    subjects = [f"s{i % 9}" for i in range(50)]
    folds = loso_splits(subjects, max_folds=3)
    again = loso_splits(subjects, max_folds=3)
    assert len(folds) == 3
    assert all(np.array_equal(a.test, b.test) for a, b in zip(folds, again))
    assert sorted(np.concatenate([f.test for f in folds])) == list(range(50))
    for fold in folds:
        assert not set(np.asarray(subjects)[fold.train]) & set(fold.held_out)
    assert (fold_assignment(subjects, folds) >= 0).all()
    assert len(loso_splits(subjects, max_folds=20)) == 9


def test_cross_dataset_setups():
    datasets = ["casme_sq", "samm_lv", "smic_e_long", "samm_lv", "casme2"]
    fold_a = cross_dataset_split(datasets, "A")
    assert list(fold_a.test) == [1, 3] and list(fold_a.train) == [0, 2]
    assert CROSS_DATASET_SETUPS["B"]["test"] == "smic_e_long"
    assert list(cross_dataset_split(datasets, "C").test) == [0]
    assert set(cross_dataset_splits(datasets)) == {"A", "B", "C"}
    with pytest.raises(ValueError, match="no samples from"):
        cross_dataset_split(["casme_sq", "samm_lv"], "A")


def test_composite_keys_subjects_by_dataset():
    table = pd.DataFrame(
        {"dataset": ["smic_hs", "casme2", "samm", "casme2"], "subject": ["1", "1", "1", "2"]}
    )
    folds = composite_loso_splits(table)
    # "1" in three datasets is three different people, plus casme2/2.
    assert len(folds) == 4
    with pytest.raises(ValueError, match="expected 68"):
        composite_loso_splits(table, expect_full=True)
