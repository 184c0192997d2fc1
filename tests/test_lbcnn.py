"""LBCNN: bilinear pooling, model shapes, frame sampling, interval runs and filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from melib.evaluation.postprocess import length_limits
from melib.features import lbcnn as feats
from melib.models.lbcnn import LBCNN, BilinearBranch, bilinear_pool, signed_sqrt
from melib.pipelines import common, lbcnn
from melib.pipelines.lbcnn import balanced_items, configure, spot_video

# ------------------------------------------------------------------ bilinear pooling


def test_bilinear_pool_is_the_mean_outer_product_over_locations():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, 4, 5, generator=g)
    b = torch.randn(2, 6, 4, 5, generator=g)
    got = bilinear_pool(a, b)
    assert got.shape == (2, 18)
    fa, fb = a.reshape(2, 3, 20), b.reshape(2, 6, 20)
    want = torch.stack(
        [sum(torch.outer(fa[n, :, k], fb[n, :, k]) for k in range(20)) / 20 for n in range(2)]
    ).reshape(2, 18)
    assert torch.allclose(got, want, atol=1e-6)
    sym = bilinear_pool(a).reshape(2, 3, 3)
    assert torch.allclose(sym, sym.transpose(1, 2))


def test_bilinear_pool_rejects_mismatched_maps():
    with pytest.raises(ValueError, match="spatial"):
        bilinear_pool(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 4, 4))


def test_signed_sqrt_keeps_the_sign_and_has_finite_gradient_at_zero():
    x = torch.tensor([-4.0, -0.25, 0.0, 1.0, 9.0], requires_grad=True)
    y = signed_sqrt(x)
    assert torch.allclose(y, torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0]))
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_branch_output_is_l2_normalised():
    torch.manual_seed(0)
    branch = BilinearBranch("alexnet_like", channels=(4, 6, 5), input_size=48)
    out = branch(torch.rand(3, 3, 48, 48))
    assert out.shape == (3, 25) and branch.dim == 25
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


# ------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    "kwargs, dim",
    [
        (dict(trunk="alexnet_like", input_size=48, channels=(4, 8, 6), hidden=16), 2 * 36),
        (dict(trunk="alexnet_like", input_size=48, channels=(4, 8, 6), hidden=0, streams=2), 2 * 36),
        (dict(trunk="alexnet_like", input_size=224, channels=(4, 8, 6), hidden=8), 2 * 36),
        (dict(trunk="resnet18", input_size=32, hidden=0), 2 * 512 * 512),
    ],
)
def test_lbcnn_forward_shapes(kwargs, dim):
    torch.manual_seed(0)
    model = LBCNN(**kwargs).eval()
    s = kwargs["input_size"]
    x = torch.rand(2, 6, s, s) * 255
    with torch.no_grad():
        assert model(x).shape == (2, 3)
        assert model.embed(x).shape == (2, dim)
    assert set(model.cam_layers()) == {"global", "local"}


def test_alexnet_like_trunk_map_sizes():
    from melib.models.lbcnn import AlexNetLikeTrunk

    assert AlexNetLikeTrunk((4, 4, 4), 224)(torch.zeros(1, 3, 224, 224)).shape[-1] == 13
    assert AlexNetLikeTrunk((4, 4, 4), 64)(torch.zeros(1, 3, 64, 64)).shape[-1] == 7


def test_lbcnn_rejects_three_channel_input():
    with pytest.raises(ValueError, match="6"):
        LBCNN(input_size=48, channels=(4, 4, 4), hidden=0)(torch.zeros(1, 3, 48, 48))


# ----------------------------------------------------------------------- sampling


ANN = pd.DataFrame({"onset": [10, 50, 55], "offset": [20, 80, 60], "type": ["micro", "macro", "micro"]})


def test_frame_labels_micro_wins_overlaps():
    labels = feats.frame_labels(100, ANN)
    assert (labels[10:21] == 1).all() and labels[9] == 0 and labels[21] == 0
    assert (labels[50:55] == 2).all() and (labels[55:61] == 1).all() and (labels[61:81] == 2).all()


def test_expression_frames_are_even_and_include_both_ends():
    f = feats.expression_frames(10, 40, stride=5)
    assert f[0] == 10 and f[-1] == 40 and len(f) == 7
    assert np.ptp(np.diff(f)) <= 1
    assert len(feats.expression_frames(3, 4, stride=10, min_count=3)) == 2  # never more than the frames
    assert len(feats.expression_frames(0, 99, stride=100, min_count=3)) == 3


def test_neutral_samples_stay_away_from_every_expression():
    sampling = feats.SamplingSettings(stride=3, neutral_gap=7)
    table = feats.sample_frames(120, ANN, sampling)
    neutral = table.loc[table["label"] == 0, "frame"].to_numpy()
    assert len(neutral) and (neutral % 3 == 0).all()
    for onset, offset in zip(ANN["onset"], ANN["offset"]):
        distance = np.maximum(onset - neutral, neutral - offset)
        assert (distance >= 7).all()
    labels = feats.frame_labels(120, ANN)
    expression = table[table["label"] > 0]
    assert (labels[expression["frame"]] == expression["label"]).all()
    assert table["frame"].is_unique and table["frame"].is_monotonic_increasing


def test_roi_mosaic_places_the_four_regions():
    crops = [np.full((10 + i, 20, 3), 10 * (i + 1), np.uint8) for i in range(4)]
    m = feats.roi_mosaic(crops, 9)
    assert m.shape == (9, 9, 3)
    assert m[0, 0, 0] == 10 and m[0, 8, 0] == 20 and m[8, 0, 0] == 30 and m[8, 8, 0] == 40


# --------------------------------------------------------------- runs and filters


def _scores(classes):
    return np.eye(3)[np.asarray(classes)]


def test_spot_video_runs_and_length_filters_on_a_hand_made_sequence():
    limits = length_limits("casme_sq")  # micro 6-16, macro >= 17
    seq = (
        [0] * 5
        + [1] * 8
        + [0] * 3
        + [1]
        + [0] * 3
        + [2] * 20
        + [0] * 2
        + [1] * 20
        + [0] * 2
        + [2] * 10
        + [0] * 2
    )
    n = len(seq)
    own = spot_video(seq, _scores(seq), np.arange(n), n, 1, limits, min_run_length=2)
    assert own[["onset", "offset", "type"]].values.tolist() == [[5, 12, "micro"], [20, 39, "macro"]]
    assert (own["score"] == 1.0).all()
    by_length = spot_video(seq, _scores(seq), np.arange(n), n, 1, limits, 2, "by_length")
    assert by_length[["onset", "offset", "type"]].values.tolist() == [
        [5, 12, "micro"],
        [20, 39, "macro"],
        [42, 61, "macro"],
        [64, 73, "micro"],
    ]
    single = spot_video([0, 1, 1, 0], _scores([0, 1, 1, 0]), np.arange(4), 4, 1, {"micro": (1, 5)}, 3)
    assert single.empty


def test_spot_video_maps_strided_runs_back_to_frames():
    limits = length_limits("samm_lv")  # micro 20-105, macro >= 106
    classes = [0, 1, 1, 1, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    grid = np.arange(len(classes)) * 8
    out = spot_video(classes, _scores(classes), grid, 150, 8, limits, 2)
    # micro: frames 8 .. 24+7; macro: 40 .. min(144+7, 149)
    assert out[["onset", "offset", "type"]].values.tolist() == [[8, 31, "micro"], [40, 149, "macro"]]


# ------------------------------------------------------------------ balance, setup


class _FakeVideo:
    def __init__(self, labels):
        self.samples = pd.DataFrame({"frame": np.arange(len(labels)), "label": labels})

    def rows(self, frames):
        return np.asarray(frames)


def test_balanced_items_equalise_the_classes():
    video = _FakeVideo([0] * 50 + [1] * 4 + [2] * 12)
    over = balanced_items([video], "oversample", None, seed=0)
    assert np.bincount([i[2] for i in over]).tolist() == [50, 50, 50]
    capped = balanced_items([video], "oversample", 20, seed=0)
    assert np.bincount([i[2] for i in capped]).tolist() == [20, 20, 20]
    under = balanced_items([video], "undersample", None, seed=0)
    assert np.bincount([i[2] for i in under]).tolist() == [4, 4, 4]
    assert balanced_items([video], "oversample", 20, seed=0) == capped


def test_configure_resolves_profiles_and_rejects_bad_values():
    s = configure(profile="full")
    assert s.input_size == 224 and s.strides == {"casme_sq": 1, "samm_lv": 1} and s.train.loss == "ce"
    assert isinstance(s, common.BaseSetup) and isinstance(s.limits, common.BaseProfile)
    s = configure(profile="smoke", datasets="samm_lv", sampling_stride=4, trunk="resnet18", loss="mse")
    assert s.datasets == ("samm_lv",) and s.strides["samm_lv"] == 4 and s.hidden == 0
    for bad in (dict(trunk="vgg"), dict(loss="l1"), dict(datasets="casme2"), dict(min_run_length=0)):
        with pytest.raises(ValueError):
            configure(profile="smoke", **bad)


def test_configure_caps_take_the_profile_or_all():
    s = configure(profile="smoke")
    assert (s.max_per_class, s.max_folds) == (32, 2)
    s = configure(profile="smoke", max_per_class="all", max_folds="all", datasets="all")
    assert (s.max_per_class, s.max_folds) == (None, None) and s.datasets == ("casme_sq", "samm_lv")
    s = configure(profile="smoke", max_per_class=5, max_folds=3, sampling_stride={"casme_sq": 6})
    assert (s.max_per_class, s.max_folds) == (5, 3) and s.strides == {"casme_sq": 6, "samm_lv": 20}


@pytest.mark.parametrize(
    "name, value",
    [
        ("epochs", -1),
        ("lr", 0),
        ("batch_size", 2.5),
        ("seed", "abc"),
        ("max_folds", 1),
        ("max_per_class", 0),
        ("sampling_stride", 0),
        ("dropout", 1.0),
        ("batch_norm", 1),
        ("streams", 3),
        ("input_size", 8),
        ("hidden", -1),
        ("neutral_gap_s", -0.5),
        ("workers", 0),
        ("limit_steps", 0),
        ("length_rule", "longest"),
        ("channels", (8, 16)),
        ("datasets", "casme2"),
    ],
)
def test_configure_names_the_bad_parameter(name, value):
    with pytest.raises(common.ParameterError, match=rf"parameter {name}="):
        configure(profile="smoke", **{name: value})


def test_configure_is_keyword_only_and_weights_need_resnet():
    with pytest.raises(TypeError):
        configure(0, "smoke")
    with pytest.raises(common.ParameterError, match="weights="):
        configure(profile="smoke", weights="resnet18.pt")
    with pytest.raises(common.ParameterError, match="no such file"):
        configure(profile="smoke", trunk="resnet18", weights="/no/such/resnet18.pt")


def test_limit_steps_reaches_the_train_config(monkeypatch):
    import importlib
    from types import SimpleNamespace

    run_module = importlib.import_module("melib.pipelines.lbcnn.run")  # the module, not lbcnn.run

    setup = configure(profile="smoke", datasets="casme_sq", limit_steps=1)
    assert setup.train.max_steps == 1 and "limit_steps" in lbcnn.caveats(setup)
    assert configure(profile="smoke").train.max_steps is None
    seen = []

    def fake_train_folds(names, make_model, make_data, config, *args, **kwargs):
        seen.append(config)
        return iter(())

    monkeypatch.setattr(run_module, "train_folds", fake_train_folds)
    annotations = pd.DataFrame(
        {"subject": ["s1"], "video": ["v1"], "onset": [3], "offset": [9], "type": ["micro"]}
    )
    dataset = SimpleNamespace(root="/nowhere", fps=30.0, annotations=annotations)
    videos = {v: SimpleNamespace(subject=s) for v, s in (("v1", "s1"), ("v2", "s2"))}
    prep = lbcnn.Prepared("casme_sq", dataset, videos, feats.SamplingSettings(stride=3))
    result = lbcnn.run({"casme_sq": prep}, setup, progress=False)
    assert [c.max_steps for c in seen] == [1]
    assert isinstance(result, lbcnn.RunResult) and result.datasets["casme_sq"].spotted.empty
