"""SOFTNet's plumbing run: the ``full`` profile (128 px crops, OpenCV's default TV-L1,
every Table 3 backbone trained) executed end to end with ``limit_steps`` on the tiny corpus."""

from __future__ import annotations

import nbformat
import pandas as pd
import pytest
from builders import error_outputs, printed_by

from melib.features.flow import TVL1Settings
from melib.models.backbones import BACKBONES
from melib.pipelines import common
from melib.pipelines import softnet as sn


def test_full_plumbing_setup_keeps_the_full_sizes_on_the_tiny_corpus():
    full = sn.configure(profile="full")
    setup = sn.configure(profile="full", limit_steps=2)
    assert full.limits.corpus == "full" and setup.limits.corpus == common.PLUMBING_CORPUS == "tiny"
    # every paper-scale setting of `full` is kept
    assert setup.crop_size == full.crop_size == 128
    assert setup.geometry == full.geometry
    assert setup.flow == full.flow and setup.flow.tvl1 == TVL1Settings() and setup.flow.method == "tvl1"
    assert setup.datasets == full.datasets == ("casme_sq", "samm_lv")
    assert setup.expressions == full.expressions
    assert setup.limits.backbone_train == full.limits.backbone_train == BACKBONES
    for name in ("epochs", "batch_size", "lr", "optimizer", "loss"):
        assert getattr(setup.train, name) == getattr(full.train, name), name
    assert (setup.train.epochs, setup.train.lr) == (sn.PAPER_EPOCHS, sn.PAPER_LR)
    assert not setup.caps and not full.caps
    # ... but the work is capped
    assert setup.train.max_steps == 2 and full.train.max_steps is None
    assert full.max_folds is None and setup.max_folds == common.PLUMBING_MAX_FOLDS
    assert sn.configure(profile="full", limit_steps=2, max_folds=5).max_folds == 2
    assert sn.configure(profile="full", limit_steps=2, max_folds="all").max_folds == 2
    assert setup.limits.ablation_max_folds == 2 and full.limits.ablation_max_folds is None
    assert setup.limits.k_factors == sn.PLUMBING_K_FACTORS and len(full.limits.k_factors) == 3
    assert setup.limits.backbone_frames == sn.PLUMBING_BACKBONE_FRAMES < full.limits.backbone_frames
    assert setup.limits.tsne_points == sn.PLUMBING_TSNE_POINTS < full.limits.tsne_points
    printed = sn.caveats(setup)
    assert "plumbing run (limit_steps=2)" in printed and "synthetic corpus 'tiny'" in printed
    assert "plumbing" not in sn.caveats(full)
    assert sn.plumbing_limits(sn.PROFILES["full"], None) is sn.PROFILES["full"]


def test_plumbing_prepare_uses_at_most_two_videos_of_distinct_subjects(monkeypatch, tmp_path):
    from melib.pipelines.softnet import data

    class FakeDataset:
        name = "casme_sq"
        videos = pd.DataFrame(
            {"subject": ["s1", "s1", "s2", "s3"], "video": ["a", "b", "c", "d"], "n_frames": [90] * 4}
        )
        annotations = pd.DataFrame(
            {"video": ["a", "c"], "subject": ["s1", "s2"], "onset": [10, 20], "offset": [30, 40]}
        ).assign(type="macro")

    asked = []

    def fake_extract(ds, root, videos, specs, setup, *, progress=True):
        asked.append(list(videos))
        return {}

    monkeypatch.setattr(data, "open_dataset", lambda name, root: FakeDataset())
    monkeypatch.setattr(data, "extract", fake_extract)
    monkeypatch.setattr(common, "data_root_for", lambda setup: tmp_path)
    prepared = sn.prepare(sn.configure(profile="full", datasets="casme_sq", limit_steps=2), progress=False)
    assert asked == [["a", "c"]] and prepared["casme_sq"].subjects == ["s1", "s2"]
    asked.clear()
    sn.prepare(sn.configure(profile="full", datasets="casme_sq", max_folds=3), progress=False)
    assert asked == [["a", "b", "c", "d"]]  # not a plumbing run: every video of the folds


@pytest.mark.plumbing
def test_notebook_runs_the_full_profile_as_a_plumbing_run(tmp_path):
    from melib.reproduce import reproduce

    (result,) = reproduce(profile="full", only=["03_softnet"], limit_steps=2, out=tmp_path)
    assert result.status == "ok", result.error
    nb = nbformat.read(str(result.output), as_version=4)
    assert not error_outputs(nb)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "limit_steps = 2" in injected[0].source and 'profile = "full"' in injected[0].source
    printed = printed_by(nb, "sn.caveats(setup)")
    assert "plumbing run (limit_steps=2)" in printed
    assert "synthetic corpus 'tiny'" in printed
    # every Table 3 backbone was trained (an F1 of its own), at the full 128 px TV-L1 input
    tables = printed_by(nb, "ablation_backbones", lambda out: str(out.get("data", {}).get("text/plain", "")))
    assert all(name in tables for name in BACKBONES)
