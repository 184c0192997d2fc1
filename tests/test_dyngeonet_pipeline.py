"""The DynGeoNet pipeline's own logic: window lengths, profiles, sampling, packing,
interval merging, tables, and the cached window features against an independent
computation on a real (synthetic-corpus) video."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

from melib.pipelines import dyngeonet as dg
from melib.pipelines.common import ParameterError

torch.set_num_threads(1)


def test_window_length_follows_the_paper_and_extends_to_other_frame_rates():
    assert [dg.window_length(f) for f in (30, 100, 200)] == [11, 35, 65]
    for fps in (25, 60, 90, 120):
        n = dg.window_length(fps)
        assert n % 2 == 1 and abs(n - 0.35 * fps) <= 1


def test_full_profile_is_the_paper_and_smaller_ones_say_what_they_cap():
    full = dg.configure(profile="full")
    assert full.lengths == {"casme_sq": 11, "samm_lv": 65, "smic_e_long": 35}
    assert set(full.strides.values()) == {1}
    assert (full.train.epochs, full.train.lr, full.train.optimizer, full.train.loss) == (
        100,
        1e-4,
        "sgd",
        "bce",
    )
    assert (full.input_size, full.vgg_channels, full.vgg_width) == (224, 1, 4096)
    assert full.negatives_per_positive is None and full.max_folds is None
    assert not full.caps and full.cross_setups == ("A", "B", "C")
    assert full.ablations == ("dyn", "geo")
    smoke = dg.configure(profile="smoke")
    assert smoke.caps["epochs"] == (100, smoke.train.epochs, "profile 'smoke' caps cost")
    assert "VGG input (px)" in smoke.caps and smoke.train.lr == 1e-2
    assert "instead of" in dg.caveats(smoke) and "synthetic corpus" in dg.caveats(smoke)
    # Overrides: L per dataset, stride, branch, a cross setup, 'all' negatives and folds.
    custom = dg.configure(
        profile="book",
        L={"casme_sq": 9},
        stride=1,
        branch="geo",
        cross_setup="B",
        negatives_per_positive="all",
        max_folds="all",
    )
    assert custom.lengths["casme_sq"] == 9 and custom.lengths["samm_lv"] == 65
    assert custom.ablations == ("fusion", "dyn") and custom.cross_setups == ("B",)
    assert custom.negatives_per_positive is None and custom.max_folds is None
    assert "window L for CAS(ME)²: 9 instead of 11" in dg.caveats(custom)
    # a short L keeps the profile's stride within it (windows must touch)
    short = dg.configure(profile="smoke", L=15)
    assert short.strides["samm_lv"] == 15 and short.strides["casme_sq"] == 2


def test_caveats_list_departures_set_by_parameters_and_the_silent_choices():
    setup = dg.configure(
        profile="smoke",
        input_size=64,
        vgg_channels=8,
        vgg_width=128,
        vgg_batch_norm=True,
        stride=3,
        negatives_per_positive=2,
        max_folds=2,
        lr=1e-3,
        epochs=1,
    )
    text = dg.caveats(setup)
    for line in (
        "VGG input (px): 64 instead of 224 (parameter)",
        "64..512 / 8 instead of 64..512 (parameter)",
        "fc6/fc7 units: 128 instead of 4096 (parameter)",
        "VGG-16-BN (BatchNorm after each convolution) instead of plain VGG-16 (parameter)",
        "CAS(ME)² 3, SAMM-LV 3, SMIC-E-Long 3 instead of 1 (parameter)",
        "2 per positive window, drawn at random instead of all windows (parameter)",
        "2 groups of subjects instead of one per subject (parameter)",
        "SGD learning rate: 0.001 instead of 0.0001 (parameter)",
        "epochs: 1 instead of 100 (parameter)",
        "inter-ocular distance",
        "standardised with each training fold",
        "(60, 61)",
        "67 -> 128 -> 128",
        "adaptively pooled to 2x2",
    ):
        assert line in text, line
    assert setup.train.lr == 1e-3  # an explicit lr is used as given, not scaled
    # the paper's values set explicitly are no departure
    paper = dg.configure(profile="full", vgg_batch_norm=False, stride=1, lr=1e-4, max_folds="all")
    assert not paper.caps and "adaptively" not in dg.caveats(paper)
    assert "(parameter)" not in dg.caveats(paper)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"branch": "both"}, "branch"),
        ({"positive_rule": "overlap"}, "positive_rule"),
        ({"merge": "peaks"}, "merge"),
        ({"datasets": ["casme_sq", "samm_lv"], "cross_setup": "A"}, "smic_e_long"),
        ({"cross_setup": "D"}, "cross_setup"),
        ({"stride": 20, "datasets": "casme_sq", "cross_setup": "none"}, "stride"),
        ({"max_folds": 1}, "max_folds"),
        ({"datasets": "casme2"}, "datasets"),
        ({"input_size": 16}, "input_size=16: .*VGG-16 halves"),
        ({"vgg_channels": 3}, "vgg_channels=3: use one of 1, 2, 4, 8"),
        ({"vgg_channels": True}, "vgg_channels=True"),
        ({"epochs": 0}, "epochs=0"),
        ({"epochs": -1}, "epochs=-1"),
        ({"lr": -1}, "lr=-1: use a number > 0"),
        ({"lr": 0}, "lr=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"momentum": 1.5}, "momentum=1.5"),
        ({"threshold": 1.0}, "threshold=1.0"),
        ({"vgg_width": 0}, "vgg_width=0"),
        ({"vgg_batch_norm": "yes"}, "vgg_batch_norm='yes'"),
        ({"ablations": 1}, "ablations=1"),
        ({"negatives_per_positive": 0}, "negatives_per_positive=0"),
        ({"negatives_per_positive": "most"}, "negatives_per_positive='most'"),
        ({"positive_iou": 0}, "positive_iou=0"),
        ({"variant": "rank"}, "variant='rank'"),
        ({"variant": "seed"}, "variant='seed': use one of 'bilen', 'as_printed'"),
        ({"L": 2}, "L=2"),
        ({"L": {"casme2": 9}}, "L='casme2'"),
        ({"workers": 0}, "workers=0"),
        ({"seed": "abc"}, "seed='abc'"),
        ({"profile": "fast"}, "profile='fast'"),
        ({"limit_steps": 0}, "limit_steps=0"),
    ],
)
def test_configure_rejects_bad_parameters_naming_the_field(kwargs, match):
    kwargs = {"profile": "smoke", **kwargs}
    with pytest.raises(ParameterError, match=match):
        dg.configure(**kwargs)


def test_configure_is_keyword_only_and_none_takes_the_profiles_value():
    with pytest.raises(TypeError):
        dg.configure(0, "smoke")
    smoke = dg.configure(profile="smoke")
    assert smoke.train.epochs == 2 and smoke.caps["epochs"][2] == "profile 'smoke' caps cost"
    # an explicit value is used as given, and tagged as a parameter
    more = dg.configure(profile="smoke", epochs=3, negatives_per_positive=2)
    assert more.train.epochs == 3 and more.caps["epochs"] == (100, 3, "parameter")
    assert more.negatives_per_positive == 2.0
    assert dg.configure(profile="smoke", variant="as_printed").spec("casme_sq").variant == "as_printed"
    assert smoke.train.max_steps is None and smoke.limit_steps is None


def test_limit_steps_reaches_every_train_config(monkeypatch):
    setup = dg.configure(profile="smoke", datasets="casme_sq", cross_setup="none", limit_steps=1)
    assert setup.train.max_steps == 1
    assert "at most 1 optimiser steps per training" in dg.caveats(setup)
    seen = []

    def fake_train_folds(folds, make_model, make_data, config, *args, **kwargs):
        seen.append(config)
        return iter(())

    monkeypatch.setattr(sys.modules["melib.pipelines.dyngeonet.run"], "train_folds", fake_train_folds)
    videos = pd.DataFrame({"subject": ["s1", "s2"], "video": ["v1", "v2"], "n_frames": [14, 14]})
    windows = {
        "v1": _windows([0, 1, 0, 1], subject="s1", video="v1"),
        "v2": _windows([1, 0, 0, 0], subject="s2", video="v2"),
    }
    prep = _prepared(videos, pd.DataFrame(columns=["video", "onset", "offset", "type"]), windows)
    dg.run({"casme_sq": prep}, setup, progress=False)
    dg.cross_dataset({name: prep for name in dg.DATASETS}, setup, "C", "frames", progress=False)
    assert len(seen) == 1 + len(setup.ablations) + 1
    assert all(config.max_steps == 1 for config in seen)


def test_configure_checks_vgg_weights_before_any_work(tmp_path):
    with pytest.raises(ParameterError, match="vgg_weights=.*no such file"):
        dg.configure(profile="smoke", vgg_weights=str(tmp_path / "missing.pth"))
    weights = tmp_path / "vgg16.pth"
    weights.write_bytes(b"")
    with pytest.raises(ParameterError, match="vgg_channels"):
        dg.configure(profile="smoke", vgg_weights=str(weights), vgg_channels=8)
    setup = dg.configure(profile="smoke", vgg_weights=str(weights))
    assert (setup.vgg_channels, setup.vgg_batch_norm) == (1, False)


def _windows(labels, geometry=None, size=4, subject="s1", video="v1"):
    n = len(labels)
    geometry = np.arange(n * 67, dtype=np.float32).reshape(n, 67) if geometry is None else geometry
    dynamic = np.broadcast_to(np.arange(n, dtype=np.float16)[:, None, None, None], (n, 3, size, size))
    crops = np.broadcast_to((np.arange(n) * 10).astype(np.uint8)[:, None, None], (n, size, size))
    return dg.VideoWindows(
        video=video,
        subject=subject,
        n_frames=n + 10,
        starts=np.arange(n),
        labels=np.asarray(labels),
        geometry=geometry,
        dynamic=dynamic,
        apex_crops=crops,
        stamp=f"{video}.npy",
    )


def _prepared(videos, gt, windows):
    """CAS(ME)² prepared as windows of 3 frames at stride 1 (no dataset or cache behind it)."""
    return dg.Prepared(
        name="casme_sq",
        dataset=None,
        root=None,
        length=3,
        stride=1,
        videos=videos,
        gt=gt,
        windows=windows,
        spec=None,
    )


def test_training_set_keeps_every_positive_and_draws_negatives_reproducibly():
    labels = np.zeros(200, int)
    labels[[5, 6, 7, 50]] = 1
    w = _windows(labels)
    a = dg.training_set([w], 3.0, seed=1, min_negatives=2)
    b = dg.training_set([w], 3.0, seed=1, min_negatives=2)
    assert np.array_equal(a.rows, b.rows)
    assert set(a.rows[a.targets == 1]) == {5, 6, 7, 50}
    assert (a.targets == 0).sum() == 12
    assert len(dg.training_set([w], None, seed=1)) == 200  # the paper: every window
    assert (dg.training_set([w], 3.0, seed=1, min_negatives=40).targets == 0).sum() == 40


def test_packed_input_is_the_dynamic_image_then_the_standardised_geometry():
    w = _windows([0, 1, 0])
    mean, std = dg.geometry_stats([w])
    assert np.allclose(((w.geometry - mean) / std).mean(axis=0), 0, atol=1e-5)
    data = dg.video_windows(w, "packed", (mean, std))
    x, y = data[1]
    assert x.shape == (3 * 4 * 4 + 67,) and float(y) == 1.0
    assert torch.all(x[:48] == 1.0)  # window 1's dynamic image
    assert np.allclose(x[48:].numpy(), (w.geometry[1] - mean) / std)
    frames, _ = dg.video_windows(w, "frames", (mean, std))[2]
    assert frames.shape == (3, 4, 4) and torch.allclose(frames, torch.full((3, 4, 4), 20 / 255))


def test_packed_rows_feed_dyngeonet_and_the_frames_baseline():
    setup = dg.configure(profile="smoke")
    w = _windows([0, 1, 0, 1], size=setup.input_size)
    data = dg.training_set([w], None, seed=0)
    for branch in ("fusion", "dyn", "geo", "frames"):
        model = dg.model_factory(setup, branch)().eval()
        mode = "frames" if branch == "frames" else "packed"
        probs = dg.score_video(model, w, mode, dg.geometry_stats([w]))
        assert probs.shape == (4,) and np.all((probs > 0) & (probs < 1))
    assert len(data) == 4


def test_merging_positive_windows_into_intervals():
    # Windows of L=5 every 2 frames; windows 2..4 positive (starts 4, 6, 8).
    starts = np.arange(0, 20, 2)
    probs = np.zeros(len(starts))
    probs[[2, 3, 4]] = [0.6, 0.9, 0.7]
    union = dg.spot_video(starts, 5, 2, probs, 0.5, "windows", n_frames=30)
    assert union[["onset", "offset", "apex"]].values.tolist() == [[4, 12, 8]]
    assert union["score"].iloc[0] == pytest.approx(0.9)
    middles = dg.spot_video(starts, 5, 2, probs, 0.5, "middles", n_frames=30)
    # middles 6, 8, 10, each standing for 2 frames: [5, 6], [7, 8], [9, 10]
    assert middles[["onset", "offset", "apex"]].values.tolist() == [[5, 10, 8]]
    assert dg.spot_video(starts, 5, 2, np.zeros(len(starts)), 0.5, "windows").empty


def test_evaluate_counts_hits_at_iou_half():
    setup = dg.configure(profile="smoke", datasets="casme_sq", cross_setup="none")
    labels = np.zeros(40, int)
    w = _windows(labels, video="v1")
    w.starts = np.arange(40)
    gt = pd.DataFrame(
        [("v1", "s1", 10, 12, 14, "micro"), ("v1", "s1", 30, 32, 34, "micro")],
        columns=["video", "subject", "onset", "apex", "offset", "type"],
    )
    prep = _prepared(pd.DataFrame({"subject": ["s1"], "video": ["v1"], "n_frames": [50]}), gt, {"v1": w})
    probs = np.zeros(40)
    probs[10:13] = 0.9  # union of windows 10..12 of L=3: [10, 14], a perfect hit
    probs[20:22] = 0.8  # [20, 23]: a false positive
    run = dg.RunResult("casme_sq", "fusion", "LOSO", {"v1": probs}, {"v1": "s1"}, {}, {}, {})
    table = dg.evaluate({"casme_sq": prep}, {("casme_sq", "fusion"): run}, setup)
    row = table.loc[("CAS(ME)²", "LOSO", "DynGeoNet")]
    assert (row["TP"], row["FP"], row["FN"]) == (1, 1, 1)
    assert row["F1"] == pytest.approx(0.5)
    assert table.attrs["ours"] == "ours (synthetic 'tiny')"
    # no micro-expression among the scored videos: F1 is NaN, not 0 (only false positives)
    prep.gt = gt.assign(type="macro")
    table = dg.evaluate({"casme_sq": prep}, {("casme_sq", "fusion"): run}, setup)
    assert table["GT"].iloc[0] == 0 and np.isnan(table["F1"].iloc[0])
    numbers = dg.spotting_results({"casme_sq": prep}, {("casme_sq", "fusion"): run}, setup)
    assert np.isnan(numbers["casme_sq"].table.loc["micro", "F1"])


def test_loss_figure_is_a_grid_of_datasets_by_networks():
    history = {"f1": {"epoch_loss": [0.7, 0.6]}}
    runs = {
        (d, b): dg.RunResult(d, b, "LOSO", {}, {}, history, {}, {})
        for b in ("fusion", "dyn", "geo")
        for d in ("casme_sq", "samm_lv")
    }
    fig = dg.loss_figure(runs)
    assert fig.axes[0].get_gridspec().get_geometry() == (2, 3)
    assert fig.axes[1].get_title() == "CAS(ME)² (LOSO): DynNet"


def test_tables_put_the_papers_rows_beside_ours():
    index = pd.MultiIndex.from_tuples(
        [
            ("CAS(ME)²", "LOSO", "DynGeoNet"),
            ("CAS(ME)²", "LOSO", "GeoNet"),
            ("CAS(ME)²", "C", "DynGeoNet"),
            ("CAS(ME)²", "C", "VGG16 (frames)"),
        ],
        names=["dataset", "protocol", "network"],
    )
    results = pd.DataFrame(
        {"TP": [1, 0, 2, 1], "FP": [3, 4, 5, 9], "FN": [2, 3, 1, 2], "F1": [0.25, 0.0, 0.4, 0.1333]},
        index=index,
    )
    results.attrs["ours"] = "ours (synthetic 'tiny')"
    t1 = dg.table1(results, ["casme_sq", "smic_e_long"])
    assert list(t1.columns) == ["CAS(ME)²", "SMIC-E-Long"]
    # the paper's digits as published, its "-" as words
    assert t1.loc["paper: DynGeoNet (Ours)", "CAS(ME)²"] == "0.05012"
    assert t1.loc["paper: LBCNN [13]", "SMIC-E-Long"] == "not reported"
    assert t1.loc["ours (synthetic 'tiny'): DynGeoNet", "CAS(ME)²"] == "0.2500"
    assert t1.loc["ours (synthetic 'tiny'): DynGeoNet", "SMIC-E-Long"] == "not run"
    assert "ours (synthetic 'tiny'): DynNet" not in t1.index
    assert "ours: DynGeoNet" in dg.table1(results, ["casme_sq"], ours="ours").index
    t2 = dg.table2(results, ["C"])
    assert t2.loc[("C", "paper", "DynGeoNet"), "FP"] == 1509
    assert t2.loc[("C", "paper", "DynGeoNet"), "F1-score"] == "0.01521"
    assert t2.loc[("C", "ours (synthetic 'tiny')", "VGG16 (frames)"), "FP"] == 9
    # a test set without micro-expressions says so instead of F1 0
    results["GT"] = [3, 3, 0, 3]
    t2 = dg.table2(results, ["C"])
    assert t2.loc[("C", "ours (synthetic 'tiny')", "DynGeoNet"), "F1-score"] == dg.NO_MICRO
    assert list(t2.columns) == ["test set", "TP", "FP", "FN", "F1-score"]
    # no cross-database setup run (cross_setup="none"): empty tables, not errors
    setup = dg.configure(profile="smoke", datasets="casme_sq", cross_setup="none")
    empty = dg.evaluate({}, {}, setup)
    assert empty.empty and list(empty.index.names) == ["dataset", "protocol", "network"]
    assert dg.table2(empty, setup.cross_setups).empty and dg.cross_numbers(empty, setup) == {}


def test_cached_window_features_match_an_independent_computation(tmp_path):
    """One CAS(ME)² video of the tiny synthetic corpus: the cached geometry equals the
    67-d vector recomputed from landmarks predicted here, and the cached input equals the
    region composite of the window's frames."""
    from melib import face
    from melib.data.synth import ensure_corpus
    from melib.features.dynamic_image import region_composite
    from melib.features.dyngeonet_windows import WindowJob, WindowSpec, extract_windows, region_margin
    from melib.features.geometry import RATIO_LINES, geometric_features
    from melib.features.video import open_dataset

    root = ensure_corpus("tiny", 0, progress=False) / "casme_sq"
    ds = open_dataset("casme_sq", str(root))
    video = ds.videos["video"].iloc[0]
    spec = WindowSpec(length=11, stride=3, size=32)
    starts = (0, 30, 93)
    paths = [tmp_path / "dyn.npy", tmp_path / "apex.npy", tmp_path / "index.npz"]
    extract_windows(WindowJob("casme_sq", str(root), video, spec, starts, *map(str, paths)))
    with np.load(paths[2]) as z:
        assert z["starts"].tolist() == list(starts)
        geometry = z["geometry"]
    track = face.track_video(ds, video)
    dynamic = np.load(paths[0])
    for row, s in enumerate(starts):
        onset = face.landmarks(ds.read_frame(video, s, gray=True), track.box)
        apex = face.landmarks(ds.read_frame(video, s + 5, gray=True), track.box)
        assert np.allclose(geometry[row], geometric_features(onset, apex), atol=1e-6)
        # the first ratio by hand: line (18, 28) in the paper's 1-based numbering
        a, b = RATIO_LINES[0]
        by_hand = np.linalg.norm(onset[a - 1] - onset[b - 1]) / np.linalg.norm(apex[a - 1] - apex[b - 1])
        assert geometry[row, 0] == pytest.approx(by_hand, rel=1e-5)
        frames = [ds.read_frame(video, i, gray=True) for i in range(s, s + 11)]
        expected = region_composite(frames, onset, size=32, margin=region_margin(spec, track.box))
        assert np.allclose(dynamic[row].astype(np.float32), expected, atol=2e-3)
    crops = np.load(paths[1])
    assert crops.shape == (3, 32, 32) and crops.dtype == np.uint8
