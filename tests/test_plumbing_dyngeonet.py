"""DynGeoNet's `full` profile, proven to run: a plumbing run (``limit_steps``) keeps every
paper-scale setting (plain VGG-16 at 224 px, the ~135 M-parameter fusion, SGD at 1e-4,
100 epochs, stride 1, every negative) on the tiny corpus with at most 2 folds, 2 videos
per dataset and a block of windows per video."""

from __future__ import annotations

import json

import numpy as np
import pytest

from melib.features.dyngeonet_windows import WindowSpec, window_starts
from melib.pipelines import common
from melib.pipelines import dyngeonet as dg


def test_plumbing_setup_keeps_the_full_sizes_on_the_tiny_corpus():
    full = dg.configure(profile="full")
    setup = dg.configure(profile="full", limit_steps=2)
    # every full setting is kept
    for name in ("input_size", "vgg_channels", "vgg_width", "vgg_batch_norm", "negatives_per_positive"):
        assert getattr(setup, name) == getattr(full, name), name
    assert (setup.input_size, setup.vgg_channels, setup.vgg_width, setup.vgg_batch_norm) == (
        224,
        1,
        4096,
        False,
    )
    assert (setup.train.epochs, setup.train.lr, setup.train.optimizer, setup.train.loss) == (
        100,
        1e-4,
        "sgd",
        "bce",
    )
    assert setup.train.batch_size == full.train.batch_size == 16
    assert setup.strides == full.strides == {d: 1 for d in dg.DATASETS}
    assert setup.lengths == full.lengths == dg.PAPER_L
    assert setup.ablations == full.ablations == ("dyn", "geo")
    # the plumbing caps
    assert setup.train.max_steps == 2 and full.train.max_steps is None
    assert setup.limits.corpus == common.PLUMBING_CORPUS == "tiny" and full.limits.corpus == "full"
    assert full.max_folds is None and setup.max_folds is not None and setup.max_folds <= 2
    assert dg.configure(profile="full", limit_steps=2, max_folds=5).max_folds == 2
    assert len(setup.cross_setups) == 1 and full.cross_setups == dg.SETUPS
    assert setup.ablation_datasets() == setup.datasets[:1] and full.ablation_datasets() == full.datasets
    spec = setup.spec("casme_sq")
    assert spec.max_windows == dg.PLUMBING_MAX_WINDOWS and full.spec("casme_sq").max_windows is None
    assert (spec.length, spec.stride, spec.size) == (11, 1, 224)
    text = dg.caveats(setup)
    assert common.plumbing_caveat(setup) in text and "plumbing run" not in dg.caveats(full)
    assert "plumbing caps" in setup.describe().index and "plumbing caps" not in full.describe().index


def test_uncapped_window_cache_keys_are_unchanged():
    """``max_windows`` joined WindowSpec later; the caches of uncapped specs keep their folder."""
    assert WindowSpec(length=11, stride=2, size=32).key() == "309256398b"
    assert WindowSpec(length=35, stride=4, size=64, variant="as_printed").key() == "ab37018272"
    assert WindowSpec(length=11, stride=2, size=32, max_windows=8).key() != "309256398b"


def test_window_starts_keep_a_block_around_the_anchor():
    spec = WindowSpec(length=11, stride=1, size=224)
    assert window_starts(240, spec).tolist() == list(range(230))
    capped = WindowSpec(length=11, stride=1, size=224, max_windows=8)
    block = window_starts(240, capped, anchor=203)
    assert len(block) == 8 and np.all(np.diff(block) == 1)
    middles = block + 11 // 2
    assert middles.min() < 203 <= middles.max()  # negatives before the onset, positives after
    assert window_starts(240, capped).tolist() == list(range(8))
    assert window_starts(240, capped, anchor=239).tolist() == list(range(222, 230))  # clamped to the end
    assert window_starts(240, capped, anchor=0).tolist() == list(range(8))
    assert len(window_starts(12, capped, anchor=5)) == 2  # fewer windows than the cap: all of them


def test_predict_batch_shrinks_with_the_input():
    assert dg.predict_batch(64) == 256 and dg.predict_batch(32, 512) == 512
    assert dg.predict_batch(224) == 20


@pytest.mark.plumbing
def test_full_profile_plumbing_run_executes_every_cell(tmp_path):
    from melib.reproduce import reproduce

    (result,) = reproduce(profile="full", only=["05_dyngeonet"], limit_steps=2, out=tmp_path)
    assert result.status == "ok", result.error
    nb = json.loads(result.output.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    texts = [
        "".join(o.get("text", ""))
        for c in nb["cells"]
        if c["cell_type"] == "code" and "print(dg.caveats(setup))" in "".join(c["source"])
        for o in c.get("outputs", [])
    ]
    assert texts and "plumbing run (limit_steps=2)" in texts[0]
    assert "VGG input (px)" not in texts[0]  # 224 px: no departure from the paper's size
