"""Bai's `full` profile as a plumbing run (issue 16): paper sizes, tiny corpus, 2 optimiser steps.

The notebook test trains 224 px ResNet-50 frame classifiers (up to 100 MB a checkpoint,
eight: three experiments and the EVM run, two folds each) on CPU; it runs against its own
MELIB_CACHE under ``tmp_path`` (the tiny corpus linked in from the project's cache, never
written) and deletes it at the end (the run writes about 770 MB there), so neither the
project's cache nor /tmp keeps the checkpoints.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from melib.pipelines import bai, common


def test_configure_full_plumbing_keeps_the_sizes_on_the_tiny_corpus():
    full = bai.PROFILES["full"]
    setup = bai.configure(profile="full", limit_steps=2)
    assert setup.limits.corpus == common.PLUMBING_CORPUS == "tiny"
    assert setup.max_folds is not None and setup.max_folds <= common.PLUMBING_MAX_FOLDS
    assert setup.max_folds == bai.configure(profile="full", limit_steps=2, max_folds="all").max_folds
    assert (setup.input_size, setup.batch_size, setup.epochs, setup.decoder_epochs) == (
        full.input_size,
        full.batch_size,
        full.epochs,
        full.decoder_epochs,
    )
    assert setup.frames_per_clip == full.frames_per_clip
    assert setup.limits.decoders == full.decoders and setup.limits.experiments == full.experiments
    assert setup.limits.n_sweep == (full.n_sweep[0], full.n_sweep[-1])
    assert setup.limits.cam_clips <= bai.PLUMBING_CAM_CLIPS
    frames, decoders = setup.frame_train_config(), setup.decoder_train_config()
    assert frames.max_steps == decoders.max_steps == 2
    assert (frames.optimizer, frames.loss, frames.lr) == ("adam", "ce", 1e-3)
    assert common.plumbing_caveat(setup) in bai.caveats(setup)
    # Without limit_steps nothing changes.
    plain = bai.configure(profile="full")
    assert plain.limits is full and plain.max_folds is None and plain.limit_steps is None
    assert "plumbing" not in bai.caveats(plain)


def test_plumbing_clips_one_per_class_from_two_subjects():
    table = pd.DataFrame(
        {
            "subject": ["a", "a", "a", "b", "b", "c", "c", "c", "c"],
            "class": ["x", "y", "x", "x", "x", "x", "y", "z", "z"],
        }
    )
    table["label"] = table["class"].map({"x": 0, "y": 1, "z": 2})
    assert bai.plumbing_clips(table, ("x", "y", "z"), None) == (table, ("x", "y", "z"))
    kept, classes = bai.plumbing_clips(table, ("x", "y", "z"), 2)
    # c has three classes, a two, b one: c and a, one clip per (subject, class), table order.
    assert kept[["subject", "class"]].values.tolist() == [
        ["a", "x"],
        ["a", "y"],
        ["c", "x"],
        ["c", "y"],
        ["c", "z"],
    ]
    assert classes == ("x", "y", "z") and kept["label"].tolist() == [0, 1, 0, 1, 2]
    only_xz, classes = bai.plumbing_clips(
        table[table["class"] != "y"].reset_index(drop=True), ("x", "y", "z"), 2
    )
    assert classes == ("x", "z") and set(only_xz["label"]) == {0, 1}


@pytest.mark.plumbing
def test_notebook_full_plumbing_run(tmp_path, monkeypatch):
    from melib.data.synth import ensure_corpus
    from melib.reproduce import reproduce

    corpus = ensure_corpus(common.PLUMBING_CORPUS, common.CORPUS_SEED, progress=False)
    cache = tmp_path / "cache"
    (cache / "synth").mkdir(parents=True)
    os.symlink(corpus, cache / "synth" / corpus.name)
    monkeypatch.setenv("MELIB_CACHE", str(cache))  # the kernel inherits it
    try:
        results = reproduce(profile="full", only=["07"], limit_steps=2, out=tmp_path / "out")
        assert [(r.name, r.status) for r in results] == [("07_bai", "ok")], results[0].error
        nb = nbformat.read(str(results[0].output), as_version=4)
        errors = [
            o
            for cell in nb.cells
            if cell.cell_type == "code"
            for o in cell.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        assert not errors
        assert nb.metadata["melib"]["parameters"]["limit_steps"] == 2
        caveats = next(c for c in nb.cells if c.cell_type == "code" and "bai.caveats(setup)" in c.source)
        text = "".join(o.get("text", "") for o in caveats.outputs)
        assert "plumbing run (limit_steps=2)" in text and "224 px ResNet-50" in text
        written = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file() and not p.is_symlink())
        print(f"plumbing run wrote {written / 1e6:.0f} MB to its cache")
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # the ResNet-50 checkpoints (hundreds of MB)
