"""The SOFTNet pipeline's own logic, on small arrays and files made here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from melib.evaluation.spotting import evaluate_spotting
from melib.features.cache import write_memmap
from melib.pipelines import softnet as sn


def test_k_is_derived_as_the_paper_does():
    # CAS(ME)²'s mean durations (12.58 micro, 35.44 macro frames) give the paper's 6 and 18.
    rows = [("micro", 0, d) for d in (12, 13, 12, 13, 12.9)] + [("macro", 0, d) for d in (35, 36, 35.32)]
    table = pd.DataFrame(rows, columns=["type", "onset", "offset"])
    ks, means = sn.derive_k(table)
    assert ks == {"micro": 6, "macro": 18}
    assert means["micro"] == pytest.approx(12.58)


def test_configure_caps_cost_but_keeps_the_papers_defaults():
    smoke = sn.configure(profile="smoke")
    assert smoke.train.epochs == 1 and smoke.caps["epochs"] == (10, 1)
    assert smoke.train.batch_size == 12 and smoke.p == 0.55
    assert smoke.caps["learning rate"] == (5e-4, pytest.approx(5e-3))  # fewer epochs, larger steps
    full = sn.configure(profile="full")
    assert full.train.epochs == 10 and full.crop_size == 128 and full.flow.tvl1 == sn.TVL1Settings()
    assert full.train.lr == 5e-4
    assert not full.caps and full.datasets == ("casme_sq", "samm_lv")
    assert sn.configure(profile="book", dataset="samm_lv", expression="micro").expressions == ("micro",)
    assert "instead of" in sn.caveats(smoke)
    with pytest.raises(ValueError, match="casme_sq"):
        sn.configure(dataset="casme2")
    with pytest.raises(ValueError, match="pseudo_label"):
        sn.configure(pseudo_label="sigmoid")


def test_normalise_is_per_image_per_channel():
    x = np.zeros((2, 4, 4, 3), np.float32)
    x[0, ..., 0] = np.arange(16).reshape(4, 4)
    x[0, ..., 1] = 5.0  # flat channel
    x[1, ..., 2] = np.linspace(-2, 2, 16).reshape(4, 4)
    y = sn.normalise(x)
    assert y[0, ..., 0].min() == 0 and y[0, ..., 0].max() == 1
    assert np.all(y[0, ..., 1] == 0) and np.all(y[1, ..., :2] == 0)
    assert y[1, ..., 2].min() == 0 and y[1, ..., 2].max() == 1


def test_augmentations():
    x = np.random.default_rng(0).random((42, 42, 3)).astype(np.float32)
    assert np.array_equal(sn.augment(x, "flip"), x[:, ::-1])
    blurred = sn.augment(x, "blur")
    assert blurred.shape == x.shape and blurred.std() < x.std()
    a = sn.augment(x, "noise", np.random.default_rng(1))
    b = sn.augment(x, "noise", np.random.default_rng(1))
    assert np.array_equal(a, b) and abs(float((a - x).std()) - 1.0) < 0.05  # N(0, 1), the paper's
    with pytest.raises(ValueError):
        sn.augment(x, "rotate")


@pytest.fixture
def tiny_prepared(tmp_path):
    """Two videos of 40 frames, k = 4, features whose first channel encodes the row."""
    videos = pd.DataFrame({"subject": ["s1", "s2"], "video": ["v1", "v2"], "n_frames": [40, 40]})
    gt = pd.DataFrame({"subject": ["s1", "s2"], "video": ["v1", "v2"], "onset": [10, 20], "apex": [12, 22],
                       "offset": [15, 25], "type": ["micro", "micro"]})
    paths = {}
    for video in ("v1", "v2"):
        path = tmp_path / f"{video}.npy"
        with write_memmap(path, (36, 42, 42, 3)) as mm:
            mm[:] = 0
            mm[:, 0, 0, 0] = np.arange(36)
            mm[:, 1, 1, 0] = 100.0
        paths[(video, "micro")] = path
    return sn.Prepared(name="casme_sq", dataset=None, root=tmp_path, k={"micro": 4}, videos=videos, gt=gt,
                       specs={}, paths=paths)


def test_training_set_thins_negatives_and_augments_positives(tiny_prepared):
    y = sn.labels_for(tiny_prepared, "v1", "micro")
    assert len(y) == 36 and y[6] == 0 and y[7] == 1 and y[15] == 1 and y[16] == 0  # windows [i, i+3]
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    plain = sn.training_set(tiny_prepared, ["v1"], "micro", "unit_step")
    assert len(plain) == n_pos + (n_neg + 1) // 2  # one of every two negatives
    augmented = sn.training_set(tiny_prepared, ["v1", "v2"], "micro", "unit_step", augment_positives=True)
    assert len(augmented) == 2 * (4 * n_pos + (n_neg + 1) // 2)
    assert set(np.unique(augmented.augs[augmented.targets == 0])) == {0}
    assert np.bincount(augmented.augs).tolist() == [len(augmented) - 3 * 2 * n_pos] + [2 * n_pos] * 3
    x, target = augmented[0]
    assert tuple(x.shape) == (3, 42, 42) and float(x.max()) <= 1.0
    rand = sn.training_set(tiny_prepared, ["v1"], "micro", "unit_step", negative_sampling="random", seed=3)
    assert abs(len(rand) - len(plain)) <= 8


def test_video_windows_read_rows_in_order(tiny_prepared):
    ws = sn.video_windows(tiny_prepared, "v2", "micro", rows=[5, 9])
    raw = [ws.input(0), ws.input(1)]
    assert raw[0][0, 0, 0] == pytest.approx(5 / 100) and raw[1][0, 0, 0] == pytest.approx(9 / 100)


def test_table2_has_the_papers_layout():
    gt = pd.DataFrame({"video": ["a", "a", "b"], "onset": [10, 50, 10], "offset": [20, 80, 15],
                       "type": ["micro", "macro", "micro"]})
    pred = pd.DataFrame({"video": ["a", "a", "b"], "onset": [11, 100, 30], "offset": [21, 120, 40],
                         "type": ["micro", "macro", "micro"], "score": [0.9, 0.5, 0.4]})
    res = {"casme_sq": evaluate_spotting(pred, gt)}
    table = sn.table2(res)
    assert list(table.index) == list(sn.TABLE2_ROWS)
    assert table[("CAS(ME)²", "macro", "paper")]["TP"] == 90
    assert table[("CAS(ME)²", "micro", "ours")]["TP"] == 1
    assert table[("CAS(ME)²", "overall", "ours")]["FP"] == 2
    t1 = sn.table1(res, res)
    assert t1.loc["paper: Ours (With SOFTNet)", ("CAS(ME)²", "overall")] == 0.2022
