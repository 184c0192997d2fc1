"""The CropNet pipeline's own pieces (melib.pipelines.cropnet): configure's validation,
the setup's derived configs, the tables, and one LOSO run on images made here."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from melib.pipelines import common
from melib.pipelines import cropnet as cn


@pytest.fixture(autouse=True)
def one_thread(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    monkeypatch.setenv("MELIB_CACHE", str(tmp_path / "cache"))


def test_configure_is_keyword_only():
    with pytest.raises(TypeError):
        cn.configure(0, "smoke")


def test_configure_takes_the_profile_and_lifts_caps():
    setup = cn.configure(profile="smoke")
    prof = cn.PROFILES["smoke"]
    assert isinstance(setup, cn.Setup) and isinstance(setup, common.BaseSetup)
    assert (
        setup.backbone,
        setup.input_size,
        setup.epochs,
        setup.composite_epochs,
        setup.batch_size,
        setup.max_folds,
    ) == (prof.backbone, prof.input_size, prof.epochs, prof.composite_epochs, prof.batch_size, prof.max_folds)
    assert setup.limit_steps is None and setup.limits is prof
    assert cn.configure(profile="smoke", max_folds="all").max_folds is None  # one fold per subject
    assert cn.configure(profile="smoke", max_folds=4).max_folds == 4
    assert cn.configure(profile="book", epochs=3).composite_epochs == 3  # epochs sets both protocols


@pytest.mark.parametrize(
    "name, value",
    [
        ("seed", "abc"),
        ("profile", "fast"),
        ("epochs", -1),
        ("epochs", 2.5),
        ("lr", 0),
        ("batch_size", 2.5),
        ("n_key", 0),
        ("alpha", 1.0),
        ("label_smoothing", -0.1),
        ("max_folds", 1),
        ("max_folds", "most"),
        ("input_size", 66),
        ("input_size", 4),
        ("protocol", "casme2"),
        ("preprocessing", "sobel"),
        ("backbone", "resnet"),
        ("cgpo", 1),
        ("position_embedding", "sinusoid"),
        ("pretrained", "/no/such.pth"),
        ("limit_steps", 0),
    ],
)
def test_bad_parameters_name_the_field(name, value):
    with pytest.raises(common.ParameterError, match=rf"parameter {name}="):
        cn.configure(**{"profile": "smoke", name: value})


def test_setup_builds_the_model_and_training_configs():
    setup = cn.configure(profile="smoke", limit_steps=1, lr=2e-3)
    train = setup.train_config()
    assert (train.max_steps, train.optimizer, train.loss, train.lr) == (1, "adamp", "ce", 2e-3)
    assert cn.configure(profile="smoke").train_config().max_steps is None
    model = setup.model_config(5)
    assert (model.input_size, model.crop_size, model.backbone) == (64, 32, "tiny")
    assert setup.for_protocol("megc2019").epochs == setup.composite_epochs
    assert setup.with_(cgpo=False).cgpo is False and setup.cgpo is True


def test_caveats_list_the_departures():
    text = cn.caveats(cn.configure(profile="smoke", limit_steps=2, n_key=3))
    assert "synthetic corpus 'tiny'" in text and "2 folds of grouped subjects" in text
    assert "N_key = 3 instead of 5" in text and "at most 2 optimiser steps" in text
    assert common.plumbing_caveat(cn.configure(profile="smoke", limit_steps=2)) in text
    assert "optimiser steps" not in cn.caveats(cn.configure(profile="smoke"))
    assert "step limit" in cn.configure(profile="smoke", limit_steps=2).describe().index


def test_paper_tables_name_no_invented_numbers():
    given, silent = cn.paper_numbers()
    assert "CGPO" in given.index and given.columns.tolist() == ["in the paper"]
    assert silent.index.name == "not in the paper"
    assert cn.reference_table().loc["STSTNet (Liong et al. 2019)", "UF1"] == 0.7353


def _images(tmp_path, n_per_subject=3, subjects=("s1", "s2", "s3"), size=16):
    """A hand-made protocol: random images on disk, three subjects, three classes."""
    rng = np.random.default_rng(0)
    rows, paths = [], []
    for s in subjects:
        for k in range(n_per_subject):
            path = tmp_path / f"{s}_{k}.npy"
            np.save(path, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            paths.append(path)
            rows.append(
                {
                    "sample": f"{s}_{k}",
                    "subject": s,
                    "dataset": "casme2",
                    "class": cn.CLASSES["megc2019"][k],
                    "label": k,
                    "fold_key": s,
                }
            )
    data = cn.ProtocolData(
        "casme2_5class", SimpleNamespace(root=tmp_path), pd.DataFrame(rows), cn.CLASSES["megc2019"]
    )
    return data, paths


def test_run_trains_every_fold_with_the_step_limit(tmp_path, monkeypatch):
    # the submodule, not the function of the same name that the package re-exports
    run_module = importlib.import_module("melib.pipelines.cropnet.run")
    data, paths = _images(tmp_path)
    monkeypatch.setattr(run_module, "prepare_images", lambda data, setup, progress=True: paths)
    setup = cn.configure(profile="smoke", input_size=16, batch_size=2, limit_steps=1)
    assert setup.max_folds == 2  # a plumbing run caps the folds; here every subject is one
    setup = setup.with_(max_folds=None)
    result = cn.run(data, setup, progress=False)
    assert isinstance(result, cn.RunResult) and result.trained_folds == 3
    assert all(len(h["batch_loss"]) == 1 for h in result.histories.values())  # limit_steps reached fit
    assert sorted(result.predictions["sample"]) == sorted(data.table["sample"])
    assert result.confusion.to_numpy().sum() == len(paths)
    table = cn.scores_table(result)
    assert table.index[0] == "all" and table["paper (CropNet, ARS)"].str.startswith("Table 2").all()
    assert cn.training_summary([result]).loc["CropNet", "folds"] == 3
    again = cn.run(data, setup, progress=False)  # the checkpoints are reused
    assert again.trained_folds == 0
    pd.testing.assert_frame_equal(again.predictions, result.predictions)
