"""The SOFTNet pipeline's own logic, on small arrays and files made here."""

from __future__ import annotations

import dataclasses
import importlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from melib.evaluation.spotting import evaluate_spotting
from melib.features.cache import write_memmap
from melib.features.flow import TVL1Settings
from melib.pipelines import common
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
    assert smoke.train.batch_size == 12 and smoke.threshold == 0.55
    assert smoke.caps["learning rate"] == (5e-4, pytest.approx(5e-3))  # fewer epochs, larger steps
    assert smoke.max_folds == 2 and smoke.train.max_steps is None and smoke.limit_steps is None
    full = sn.configure(profile="full")
    assert full.train.epochs == 10 and full.crop_size == 128 and full.flow.tvl1 == TVL1Settings()
    assert full.train.lr == 5e-4
    assert not full.caps and full.datasets == ("casme_sq", "samm_lv") and full.max_folds is None
    assert sn.configure(profile="book", datasets="samm_lv", expression="micro").expressions == ("micro",)
    assert "instead of" in sn.caveats(smoke)
    assert isinstance(smoke, common.BaseSetup) and isinstance(smoke.limits, common.BaseProfile)


def test_configure_none_takes_the_profiles_and_all_lifts_the_fold_cap():
    assert sn.configure(profile="smoke", max_folds="all").max_folds is None
    assert sn.configure(profile="smoke", max_folds=3).max_folds == 3
    chosen = sn.configure(profile="smoke", epochs=3, lr=1e-3)  # given values are used as given
    assert chosen.train.epochs == 3 and chosen.train.lr == 1e-3
    assert "epochs" not in chosen.caps and "epochs: 3 instead of 10" in sn.caveats(chosen)
    assert sn.configure(profile="smoke", datasets="all").datasets == sn.SPOTTING_DATASETS
    assert sn.configure(profile="smoke", k={"micro": 5}).k == {"micro": 5}
    assert sn.configure(profile="smoke", tvl1={"nscales": 2}).flow.tvl1.nscales == 2


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", -1),
        ("lr", 0),
        ("batch_size", 2.5),
        ("seed", "abc"),
        ("max_folds", 1),
        ("threshold", 1.5),
        ("datasets", "casme2"),
        ("pseudo_label", "sigmoid"),
        ("augment", 1),
        ("expression", "both types"),
        ("negative_keep", 2),
        ("noise_std", -1),
        ("crop_size", 8),
        ("tvl1", "slow"),
        ("flow_method", "lk"),
        ("workers", 0),
        ("k", 0),
        ("limit_steps", 0),
    ],
)
def test_configure_names_a_bad_parameter(field, value):
    with pytest.raises(common.ParameterError, match=rf"parameter {field}="):
        sn.configure(profile="smoke", **{field: value})


def test_configure_is_keyword_only():
    with pytest.raises(TypeError):
        sn.configure(0, "smoke")


def test_limit_steps_reaches_every_training(tiny_prepared, monkeypatch):
    setup = sn.configure(profile="smoke", limit_steps=1)
    assert setup.train.max_steps == 1 and "limit_steps" in sn.caveats(setup)
    seen = []

    def fake_train_folds(folds, make_model, make_data, config, *args, **kwargs):
        seen.append(config)
        return iter(())

    # the package's ``run`` is the entry point; the module of the same name is reached by path
    monkeypatch.setattr(
        importlib.import_module("melib.pipelines.softnet.run"), "train_folds", fake_train_folds
    )
    prep = dataclasses.replace(tiny_prepared, specs={"micro": SimpleNamespace(key=lambda: "spec")})
    result = sn.loso(prep, setup, "micro", epochs=3)  # an ablation's epoch cap keeps the step limit
    assert seen[0].max_steps == 1 and seen[0].epochs == 3
    assert isinstance(result, sn.RunResult) and result.threshold == 0.55 and result.predictions.empty


def test_the_entry_point_is_run():
    import melib.pipelines.softnet.run  # noqa: F401  (the submodule does not shadow the function)

    assert callable(sn.run) and sn.run.__name__ == "run"
    assert set(sn.__all__) <= set(dir(sn))


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
    gt = pd.DataFrame(
        {
            "subject": ["s1", "s2"],
            "video": ["v1", "v2"],
            "onset": [10, 20],
            "apex": [12, 22],
            "offset": [15, 25],
            "type": ["micro", "micro"],
        }
    )
    paths = {}
    for video in ("v1", "v2"):
        path = tmp_path / f"{video}.npy"
        with write_memmap(path, (36, 42, 42, 3)) as mm:
            mm[:] = 0
            mm[:, 0, 0, 0] = np.arange(36)
            mm[:, 1, 1, 0] = 100.0
        paths[(video, "micro")] = path
    return sn.Prepared(
        name="casme_sq",
        dataset=None,
        root=tmp_path,
        k={"micro": 4},
        videos=videos,
        gt=gt,
        specs={},
        paths=paths,
    )


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
    gt = pd.DataFrame(
        {
            "video": ["a", "a", "b"],
            "onset": [10, 50, 10],
            "offset": [20, 80, 15],
            "type": ["micro", "macro", "micro"],
        }
    )
    pred = pd.DataFrame(
        {
            "video": ["a", "a", "b"],
            "onset": [11, 100, 30],
            "offset": [21, 120, 40],
            "type": ["micro", "macro", "micro"],
            "score": [0.9, 0.5, 0.4],
        }
    )
    res = {"casme_sq": evaluate_spotting(pred, gt)}
    table = sn.table2(res)
    assert list(table.index) == list(sn.TABLE2_ROWS)
    assert table[("CAS(ME)²", "macro", "paper")]["TP"] == 90
    assert table[("CAS(ME)²", "micro", "ours")]["TP"] == 1
    assert table[("CAS(ME)²", "overall", "ours")]["FP"] == 2
    t1 = sn.table1(res, res)
    assert t1.loc["paper: Ours (With SOFTNet)", ("CAS(ME)²", "overall")] == 0.2022
    assert "melib: W/o SOFTNet (feature sum, threshold=0.5)" in t1.index


def test_without_softnet_spots_with_its_own_threshold(tiny_prepared):
    prep = dataclasses.replace(tiny_prepared, specs={"micro": None})
    runs = sn.without_softnet({"casme_sq": prep}, sn.configure(profile="smoke"), threshold=0.5)
    result = runs[("casme_sq", "micro")]
    assert (
        result.threshold == 0.5 and result.model_name == "feature sum" and set(result.scores) == {"v1", "v2"}
    )
    with pytest.raises(common.ParameterError, match="threshold=2"):
        sn.without_softnet({"casme_sq": prep}, sn.configure(profile="smoke"), threshold=2)
