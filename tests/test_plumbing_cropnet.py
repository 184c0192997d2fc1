"""The CropNet notebook's `full` path, exercised: a plumbing run (``limit_steps``) keeps the
paper-scale settings (320 px inputs, ReXNet-1.0x, default TV-L1, AdamP, cross-entropy) on
the tiny corpus, with at most 2 folds and a handful of clips per class."""

from __future__ import annotations

import json

import pytest

from melib.pipelines import common
from melib.pipelines import cropnet as cn


def test_full_plumbing_keeps_the_full_sizes_on_the_tiny_corpus():
    full = cn.PROFILES["full"]
    setup = cn.configure(profile="full", limit_steps=2)
    assert (setup.input_size, setup.crop_size, setup.backbone, setup.tvl1_light) == (
        320,
        160,
        "rexnet_100",
        False,
    )
    assert (setup.epochs, setup.composite_epochs, setup.batch_size) == (
        full.epochs,
        full.composite_epochs,
        full.batch_size,
    )
    train = setup.train_config()
    assert (train.optimizer, train.loss, train.max_steps) == ("adamp", "ce", 2)
    assert (
        setup.image_settings("tvl1").flow_settings()
        == cn.configure(profile="full").image_settings("tvl1").flow_settings()
    )
    assert setup.limits.corpus == common.PLUMBING_CORPUS == "tiny"
    assert setup.max_folds is not None and setup.max_folds <= 2
    assert cn.configure(profile="full", limit_steps=2, max_folds="all").max_folds <= 2
    assert setup.limits.nkey_sweep == (5, 9)  # the run's own N_key (reused) and the farthest
    assert cn.configure(profile="full", limit_steps=2, n_key=2).limits.nkey_sweep == (2, 9)
    assert cn.configure(profile="full", limit_steps=2, n_key=12).limits.nkey_sweep == (1, 9)
    assert cn.configure(profile="full").limits is full and full.corpus == "full"
    text = cn.caveats(setup)
    assert common.plumbing_caveat(setup) in text and "at most 2 clips per dataset and class" in text


def test_plumbing_clips_keep_two_per_class_from_distinct_subjects():
    import pandas as pd

    table = pd.DataFrame(
        {
            "dataset": ["a"] * 6 + ["b"] * 2,
            "class": ["x", "x", "x", "y", "y", "x"] + ["x", "x"],
            "fold_key": ["s1", "s1", "s2", "s1", "s1", "s3"] + ["t1", "t2"],
        }
    )
    kept = cn.plumbing_clips(table, 2)
    assert kept.groupby(["dataset", "class"]).size().max() <= 2
    # class x of dataset a: s1 then s2 (distinct subjects first), not the second s1 clip
    assert kept[(kept["dataset"] == "a") & (kept["class"] == "x")]["fold_key"].tolist() == ["s1", "s2"]
    assert len(kept) == 6 and cn.plumbing_clips(table, None) is table


def test_tsne_with_too_few_clips_shows_a_note(tmp_path, monkeypatch):
    import importlib

    import numpy as np
    import pandas as pd

    figures = importlib.import_module("melib.pipelines.cropnet.figures")
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.npy")
        np.save(paths[-1], np.full((16, 16, 3), 40 * i, dtype=np.uint8))
    labels = pd.Series(["negative", "positive", "surprise"])
    monkeypatch.setattr(figures, "tsne_data", lambda setup: (None, labels, "three clips"))
    monkeypatch.setattr(figures, "prepare_images", lambda data, setup, method, progress=True: paths)
    fig = cn.tsne_figure(cn.configure(profile="smoke", limit_steps=2), progress=False)
    assert "3 clips: too few for t-SNE" in [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.plumbing
def test_notebook_runs_the_full_path_with_two_steps(tmp_path):
    from melib.reproduce import reproduce

    (result,) = reproduce(profile="full", only=["06"], limit_steps=2, out=tmp_path)
    assert result.status == "ok", result.error
    notebook = json.loads(result.output.read_text())
    outputs = [o for cell in notebook["cells"] for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    caveats = next(c for c in notebook["cells"] if "".join(c["source"]).strip() == "print(cn.caveats(setup))")
    printed = "".join("".join(o.get("text", "")) for o in caveats["outputs"])
    assert "plumbing run (limit_steps=2)" in printed and "320 px" not in printed  # no input departure
