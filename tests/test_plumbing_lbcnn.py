"""LBCNN's plumbing run: the ``full`` profile (224 px, AlexNet widths, ~35 M parameters,
every frame) executed end to end with ``limit_steps`` on the tiny corpus."""

from __future__ import annotations

import nbformat
import numpy as np
import pandas as pd
import pytest
from builders import error_outputs, printed_by

from melib.pipelines import common, lbcnn
from melib.pipelines.lbcnn import configure


def test_full_plumbing_setup_keeps_the_full_sizes_on_the_tiny_corpus():
    full = configure(profile="full")
    setup = configure(profile="full", limit_steps=2)
    assert setup.limits.corpus == common.PLUMBING_CORPUS == "tiny"
    assert full.limits.corpus == "full"
    # every paper-scale setting of `full` is kept
    for name in ("input_size", "channels", "hidden", "dropout", "strides", "max_per_class", "cache_grid"):
        assert getattr(setup, name) == getattr(full, name), name
    assert setup.input_size == lbcnn.PAPER_INPUT_SIZE
    assert tuple(setup.channels) == lbcnn.ALEXNET_CHANNELS
    assert setup.model_kwargs() == full.model_kwargs()
    assert setup.train.epochs == full.train.epochs == lbcnn.CODE_EPOCHS
    assert (setup.train.optimizer, setup.train.lr, setup.train.loss) == (
        full.train.optimizer,
        full.train.lr,
        full.train.loss,
    )
    # ... but the work is capped
    assert setup.train.max_steps == 2 and full.train.max_steps is None
    assert full.max_folds is None and setup.max_folds <= common.PLUMBING_MAX_FOLDS
    assert configure(profile="full", limit_steps=2, max_folds=5).max_folds == 2
    assert setup.tsne_per_class <= lbcnn.PLUMBING_TSNE_PER_CLASS < full.tsne_per_class
    assert "plumbing run (limit_steps=2)" in lbcnn.caveats(setup)
    assert f"first {lbcnn.PLUMBING_GRID_FRAMES} frames" in lbcnn.caveats(setup)
    assert "plumbing" not in lbcnn.caveats(full)


def test_plumbing_classifies_a_capped_window_of_every_frame():
    from types import SimpleNamespace

    from melib.pipelines.lbcnn.run import _test_grid

    video = SimpleNamespace(grid=np.arange(900))  # a tiny SAMM-LV video at stride 1
    assert len(_test_grid(video, configure(profile="full"))) == 900
    window = _test_grid(video, configure(profile="full", limit_steps=2))
    # every frame of the window (stride 1 kept), more than one 256-frame batch
    assert np.array_equal(window, np.arange(lbcnn.PLUMBING_GRID_FRAMES))
    assert lbcnn.PLUMBING_GRID_FRAMES > 256


def test_plumbing_prepare_uses_at_most_two_videos_of_distinct_subjects(monkeypatch, tmp_path):
    from melib.pipelines.lbcnn import data

    class FakeDataset:
        fps = 30.0
        videos = pd.DataFrame({"subject": ["s1", "s1", "s2", "s3"], "video": ["a", "b", "c", "d"]})

    asked = {}

    def fake_prepare_videos(ds, settings, sampling, videos=None, workers=1, progress=True):
        asked[ds] = None if videos is None else list(videos)
        return {}

    monkeypatch.setattr(data, "load_from_data_root", lambda name, root: FakeDataset())
    monkeypatch.setattr(data, "prepare_videos", fake_prepare_videos)
    monkeypatch.setattr(common, "data_root_for", lambda setup: tmp_path)
    lbcnn.prepare(configure(profile="full", datasets="casme_sq", limit_steps=2), progress=False)
    assert list(asked.values()) == [["a", "c"]]
    asked.clear()
    lbcnn.prepare(configure(profile="smoke", datasets="casme_sq"), progress=False)
    assert list(asked.values()) == [None]  # not a plumbing run: every video


@pytest.mark.plumbing
def test_notebook_runs_the_full_profile_as_a_plumbing_run(tmp_path):
    from melib.reproduce import reproduce

    (result,) = reproduce(profile="full", only=["04_lbcnn"], limit_steps=2, out=tmp_path)
    assert result.status == "ok", result.error
    nb = nbformat.read(str(result.output), as_version=4)
    assert nb.cells[1].source.startswith("seed = 0")  # the parameters cell, then papermill's
    assert not error_outputs(nb)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "limit_steps = 2" in injected[0].source
    printed = printed_by(nb, "lbcnn.caveats(setup)")
    assert "plumbing run (limit_steps=2)" in printed
    assert "synthetic corpus 'tiny'" in printed
