"""The scaffold every paper pipeline shares: validators, the profile sentinel, rounding
and the seed, step-limit and fold-executor hooks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from melib.pipelines import common
from melib.training import TrainConfig, fit, train_folds


def test_profile_sentinel_and_caps():
    assert common.from_profile(None, 7) == 7
    assert common.from_profile(3, 7) == 3
    assert common.fold_limit(None, 3) == 3
    assert common.fold_limit("all", 3) is None
    assert common.fold_limit(4, 3) == 4
    with pytest.raises(common.ParameterError, match="max_folds=1"):
        common.fold_limit(1, 3)
    with pytest.raises(common.ParameterError, match="max_folds='most'"):
        common.fold_limit("most", 3)


@pytest.mark.parametrize("value", [-1, 0, 2.5, "3", True, float("nan"), None])
def test_whole_number_names_the_field(value):
    with pytest.raises(common.ParameterError, match=r"parameter epochs="):
        common.whole_number("epochs", value)


def test_numbers_choices_and_flags():
    assert common.whole_number("epochs", 3.0) == 3
    assert common.positive_number("lr", 1e-3) == 1e-3
    for bad in (0, -1e-3, float("inf"), "0.1"):
        with pytest.raises(common.ParameterError, match="lr="):
            common.positive_number("lr", bad)
    assert common.number_in("alpha", 0.3, 0, 1, high_open=True) == 0.3
    with pytest.raises(common.ParameterError, match=r"\[0, 1\)"):
        common.number_in("alpha", 1.0, 0, 1, high_open=True)
    assert common.choice("loss", "ce", ("ce", "mse")) == "ce"
    with pytest.raises(common.ParameterError, match="'ce', 'mse'"):
        common.choice("loss", "CE", ("ce", "mse"))
    assert common.flag("augment", False) is False
    with pytest.raises(common.ParameterError, match="True or False"):
        common.flag("augment", 1)


def test_dataset_keys():
    allowed = ("casme_sq", "samm_lv")
    assert common.dataset_keys(None, allowed, ("casme_sq",)) == ("casme_sq",)
    assert common.dataset_keys("both", allowed, ()) == allowed
    assert common.dataset_keys("samm_lv", allowed, ()) == ("samm_lv",)
    assert common.dataset_keys(["samm_lv", "casme_sq"], allowed, ()) == ("samm_lv", "casme_sq")
    with pytest.raises(common.ParameterError, match="datasets='casme2'"):
        common.dataset_keys("casme2", allowed, ())


def test_check_common(tmp_path):
    out = common.check_common(seed=2, profile="smoke", device="auto", data_root=str(tmp_path))
    assert out["data_root"] == tmp_path and out["limit_steps"] is None
    with pytest.raises(common.ParameterError, match="seed='abc'"):
        common.check_common(seed="abc", profile="smoke", device="auto", data_root=None)
    with pytest.raises(common.ParameterError, match="profile='fast'"):
        common.check_common(seed=0, profile="fast", device="auto", data_root=None)
    with pytest.raises(common.ParameterError, match="data_root=.*no such folder"):
        common.check_common(seed=0, profile="smoke", device="auto", data_root=str(tmp_path / "missing"))
    with pytest.raises(common.ParameterError, match="limit_steps=0"):
        common.check_common(seed=0, profile="smoke", device="auto", data_root=None, limit_steps=0)


def test_labels_and_rounding():
    assert common.dataset_label("samm_lv") == "SAMM-LV"
    table = pd.DataFrame({"f1": [0.123456, np.nan], "n": [1, 2], "name": ["a", 0.987654321]})
    rounded = common.round_table(table)
    assert rounded["f1"].iloc[0] == 0.1235 and np.isnan(rounded["f1"].iloc[1])
    assert rounded["n"].tolist() == [1, 2] and rounded["name"].tolist() == ["a", 0.9877]


def test_seed_hook():
    assert common.seed_list(3) == (0, 1, 2)
    assert common.seed_list([4, 7]) == (4, 7)
    with pytest.raises(common.ParameterError):
        common.seed_list([1, 1])
    runs = common.over_seeds(lambda s: {"f1": s / 10}, [1, 3])
    assert runs.values(lambda r: r["f1"]).tolist() == [0.1, 0.3]
    assert [s for s, _ in runs] == [1, 3]


def _data(n=40):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, generator=g), torch.randn(n, 1, generator=g)


def test_step_limit_stops_training_and_keeps_old_keys():
    history = fit(nn.Linear(3, 1), _data(), TrainConfig(epochs=5, batch_size=4, max_steps=3), progress=False)
    assert len(history["batch_loss"]) == 3
    assert "max_steps" not in TrainConfig().key()
    assert TrainConfig(max_steps=2).key()["max_steps"] == 2


def test_fold_executor_trains_what_the_serial_loop_trains(tmp_path):
    folds = ["s1", "s2", "s3"]
    config = TrainConfig(epochs=2, batch_size=8)

    def run(folder, executor):
        return {
            r.fold: r.model.weight.detach().clone()
            for r in train_folds(
                folds,
                lambda: nn.Linear(3, 1),
                lambda f: _data(),
                config,
                folder,
                progress=False,
                executor=executor,
            )
        }

    serial = run(tmp_path / "serial", None)
    # one thread: threads share torch's global RNG, so real parallelism uses processes (Dask)
    with ThreadPoolExecutor(1) as pool:
        parallel = run(tmp_path / "pool", pool)
    assert list(parallel) == folds
    for fold in folds:
        assert torch.equal(serial[fold], parallel[fold])
    again = list(
        train_folds(
            folds,
            lambda: nn.Linear(3, 1),
            lambda f: _data(),
            config,
            tmp_path / "pool",
            progress=False,
            executor=ThreadPoolExecutor(1),
        )
    )
    assert all(r.skipped for r in again)


def test_plumbing_caps():
    from melib.pipelines.softnet.config import PROFILES

    assert common.plumbing_profile(PROFILES["full"], None) is PROFILES["full"]
    capped = common.plumbing_profile(PROFILES["full"], 2)
    assert capped.corpus == "tiny" and capped.crop_size == PROFILES["full"].crop_size
    assert common.plumbing_folds(None, 2) == 2 and common.plumbing_folds(5, 2) == 2
    assert common.plumbing_folds(None, None) is None
    videos = pd.DataFrame({"subject": ["s1", "s1", "s2", "s3"], "video": ["a", "b", "c", "d"]})
    assert common.plumbing_videos(videos, 3)["video"].tolist() == ["a", "c"]
    assert common.plumbing_videos(videos, None) is videos


def test_reproduce_limit_steps_goes_to_its_own_folder_and_only_where_declared(tmp_path, monkeypatch):
    from melib import reproduce as rep

    assert rep.default_output_dir("full", plumbing=True).name == "plumbing-full"
    with pytest.raises(ValueError, match="--limit-steps 0"):
        rep.reproduce(profile="full", only=["03"], limit_steps=0, out=tmp_path)
    with pytest.raises(ValueError, match="conflicts with --limit-steps"):
        rep.reproduce(profile="full", only=["03"], limit_steps=2, overrides={"limit_steps": 3}, out=tmp_path)
    seen = {}
    monkeypatch.setattr(
        rep,
        "execute_one",
        lambda source, output, parameters, *a: (
            seen.setdefault(source.stem, parameters) and rep.RunResult(source.stem, "ok")
        ),
    )
    rep.reproduce(profile="full", only=["00", "03"], limit_steps=2, out=tmp_path)
    assert "limit_steps" not in seen["00_environment"] and seen["03_softnet"]["limit_steps"] == 2
