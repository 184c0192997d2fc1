"""Every paper's feature stage on a tree in the real layouts at the real frame geometry.

The synthetic corpus has 170x170 JPEG frames, one-based names and integer annotations;
a first ``full`` run on a licensed copy meets 640x480 and 2040x1088 frames, BMP files,
absolute frame numbers, fractional SAMM-LV frames, apexes of -1 and 0, offsets of 0
and frames in which dlib finds no face. :mod:`tests.real_geometry` writes a small tree
with all of these (synthetic pixels, real geometry), and each test below runs one
paper's ``configure(data_root=..., profile="full", limit_steps=2)`` + ``prepare`` on it
and checks the shapes, that nothing is NaN, and what a faceless frame becomes.

The landmark cache is shared by the tests (one ``MELIB_CACHE`` for the module), so each
video's face is searched for once, as in a real run.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_geometry as RG  # noqa: E402

from melib import face  # noqa: E402
from melib.data import datasets as D  # noqa: E402

FULL = dict(profile="full", limit_steps=2, device="cpu")
FRAME_SHAPES = {"casme_sq": (480, 640, 3), "samm_lv": (1088, 2040, 3), "casme2": (480, 640, 3)}
FRAME_SHAPES["smic_hs"] = (480, 640, 3)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The data root, and a module-wide ``MELIB_CACHE`` beside it."""
    base = tmp_path_factory.mktemp("real_geometry")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELIB_CACHE", str(base / "cache"))
        yield RG.build_tree(base / "data")


def _finite(array) -> bool:
    return bool(np.isfinite(np.asarray(array, np.float32)).all())


# --------------------------------------------------------------------------- loaders


def test_loaders_read_the_real_layouts(tree):
    expected = {  # (video, onset, apex, offset, type), 0-based
        "casme_sq": [
            ("15_0401eatingworms", 4, 6, 8, "micro"),
            ("15_0401eatingworms", 11, 14, 14, "macro"),  # offset 0 -> the apex
            ("15_0401eatingworms", 16, 19, 22, "macro"),  # apex 0 -> the middle
            ("16_0502funnyerrors", 2, 4, 7, "micro"),
            ("16_0502funnyerrors", 9, 12, 17, "macro"),
        ],
        "samm_lv": [  # 5.4 -> 5, 12.6 -> 13, 22.999999999999 -> 23, 7.5 -> 8; onset 0 dropped
            ("006_1", 4, 7, 12, "micro"),
            ("006_1", 14, 18, 22, "macro"),  # apex -1 -> the middle
            ("007_2", 2, 4, 7, "micro"),
            ("007_2", 8, 11, 15, "macro"),
        ],
    }
    for key in tree.datasets:
        ds = D.load_dataset(key, tree.root / key)
        a = ds.annotations
        if key in expected:
            got = [tuple(r) for r in a[["video", "onset", "apex", "offset", "type"]].itertuples(index=False)]
            assert got == expected[key], key
        assert (a["onset"] <= a["apex"]).all() and (a["apex"] <= a["offset"]).all(), key
        assert (a["offset"] < a["video"].map(ds.n_frames)).all(), key
        for video in ds.videos["video"]:
            image = ds.read_frame(video, 0)
            assert image.shape == FRAME_SHAPES[key] and image.dtype == np.uint8, (key, video)
            assert ds.read_frame(video, 0, gray=True).shape == FRAME_SHAPES[key][:2]
    samm = D.load_dataset("samm_lv", tree.root / "samm_lv")
    # SOFTNet's truncation: 12.6 -> 12 and 7.5 -> 7, but 22.999999999999 is 23, not 22
    floor = D.load_dataset("samm_lv", tree.root / "samm_lv", fractional="floor").annotations
    assert floor[["onset", "apex", "offset"]].values.tolist() == [
        [4, 7, 11],
        [14, 18, 22],
        [2, 4, 6],
        [8, 11, 15],
    ]
    assert D.to_frame_index(7284.999999999999, 1, "floor") == 7284  # the real workbook's 7285
    assert "4 non-integer frame numbers" in " ".join(samm.fix_log)  # float noise is not counted
    assert cv2.imread(str(samm.frame_paths("006_1")[0]), cv2.IMREAD_UNCHANGED).shape == (1088, 2040)
    casme2 = D.load_dataset("casme2", tree.root / "casme2")
    assert casme2.frame_paths("sub01_EP02_01f")[0].name == "img46.jpg"
    assert casme2.annotations.set_index("video").loc["sub01_EP03_02", "apex"] == 5  # "/" -> middle
    smic = D.load_dataset("smic_hs", tree.root / "smic_hs")
    assert smic.frame_paths("s01_s01_ne_01")[0].name == "image045937.bmp"


def test_samm_lv_frame_numbers_past_9999(tree, tmp_path):
    """A SAMM-LV video longer than 9999 frames (434k frames in 147 videos) goes on with
    five-digit names (``006_1_10000.jpg``); frames are indexed by number, not by name."""
    import os

    root = tmp_path / "samm_lv"
    rows = RG.SAMM_LEGEND + [
        RG.SAMM_LV_HEADER,
        ["006", "006_1_1", 1, 9995.4, 10001, 10002.999999999999, 7.6, "Micro - 1/2", "4", None],
    ]
    RG.write_sheets(root / "SAMM_LongVideos_V2_Release.xlsx", {"FACS_Movement_Only": rows})
    folder = root / "SAMM_longvideos" / "006_1"
    folder.mkdir(parents=True)
    src = tree.root / "samm_lv" / "SAMM_longvideos" / "006_1"
    for i in range(1, 10004):  # hard links to the real-size frames: no disk, no encoding
        os.link(src / f"006_1_{(i - 1) % 24 + 1:04d}.jpg", folder / f"006_1_{i:04d}.jpg")
    ds = D.load_dataset("samm_lv", root)
    assert ds.n_frames("006_1") == 10003
    assert [p.name for p in ds.frame_paths("006_1")[9998:10000]] == ["006_1_9999.jpg", "006_1_10000.jpg"]
    assert ds.annotations[["onset", "apex", "offset"]].values.tolist() == [[9994, 10000, 10002]]
    assert ds.read_frame("006_1", 10002).shape == (1088, 2040, 3)


def test_face_track_skips_faceless_first_frames(tree):
    ds = D.load_dataset("casme_sq", tree.root / "casme_sq")
    with pytest.warns(UserWarning, match=r"no face in frames 0\.\.1; the reference box comes from frame 2"):
        track = face.track_video(ds, "15_0401eatingworms")
    assert track.ref_index == 2 and track.frame_shape == FRAME_SHAPES["casme_sq"]
    # The box is the pasted face's (200 px wide in a 640x480 frame), well inside the frame.
    assert 140 <= track.box.width <= 280 and track.box.clip((480, 640)) == track.box
    samm = D.load_dataset("samm_lv", tree.root / "samm_lv")
    with pytest.warns(UserWarning, match="no face in frames 0..0"):
        wide = face.track_video(samm, "006_1")  # grey 2040x1088 frames, read as RGB
    assert wide.ref_index == 1 and 300 <= wide.box.width <= 560


# --------------------------------------------------------------------------- SOFTNet


def test_softnet_features(tree):
    from melib.pipelines import softnet

    # TV-L1 runs on the 128-px face crop, so the frame size never reaches it; the 'fast'
    # preset keeps this test short (the default settings run in the plumbing runs).
    setup = softnet.configure(data_root=tree.root, workers=1, tvl1="fast", **FULL)
    assert setup.crop_size == 128
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the faceless first frames
        prepared = softnet.prepare(setup, progress=False)
    assert set(prepared) == {"casme_sq", "samm_lv"}
    for name, prep in prepared.items():
        assert set(prep.k) == {"micro", "macro"}
        for video in prep.videos["video"]:
            for kind, k in prep.k.items():
                x = np.asarray(prep.features(video, kind))
                assert x.shape == (prep.n_frames(video) - k, 42, 42, 3), (name, video, kind)
                assert _finite(x) and x.max() > 0, (name, video, kind)


# --------------------------------------------------------------------------- LBCNN


def test_lbcnn_inputs(tree):
    from melib.pipelines import lbcnn

    setup = lbcnn.configure(data_root=tree.root, workers=1, **FULL)
    assert setup.input_size == 224
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        prepared = lbcnn.prepare(setup, progress=False)
    for name, prep in prepared.items():
        for video, vs in prep.videos.items():
            assert vs.inputs.shape == (len(vs.frames), 6, 224, 224) and vs.inputs.dtype == np.uint8
            assert set(vs.samples["frame"]) <= set(vs.frames.tolist())
            assert vs.samples["label"].isin([1, 2]).any(), (name, video)  # expression frames sampled
            assert len(vs.truth) == vs.n_frames
            # A faceless frame still gives an input: the wall inside the video's box.
            for f in tree.blank(name, video):
                if f in vs.frames:
                    assert vs.inputs_of([f]).std() > 0


# --------------------------------------------------------------------------- DynGeoNet


def test_dyngeonet_windows(tree):
    from melib.pipelines import dyngeonet

    # The paper's L: 11 frames at 30 fps; SAMM-LV's 65 (200 fps) is longer than these
    # videos, so it is set to 11 there too.
    setup = dyngeonet.configure(
        data_root=tree.root,
        datasets=["casme_sq", "samm_lv"],
        L={"samm_lv": 11},
        cross_setup="none",
        workers=1,
        **FULL,
    )
    assert setup.input_size == 224 and setup.lengths["casme_sq"] == 11
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        prepared = dyngeonet.prepare(setup, progress=False)
    for name, prep in prepared.items():
        for video, w in prep.windows.items():
            n = len(w.starts)  # stride 1 in full (a plumbing run keeps a block of them)
            assert n >= 1 and np.all(np.diff(w.starts) == 1) and w.starts[-1] + 11 <= w.n_frames
            assert w.dynamic.shape == (n, 3, 224, 224) and w.apex_crops.shape == (n, 224, 224)
            assert w.geometry.shape == (n, 67)
            assert _finite(w.dynamic) and _finite(w.geometry), (name, video)
        assert prep.gt["type"].eq("micro").any()


# --------------------------------------------------------------------------- CropNet


def test_cropnet_images(tree):
    from melib.pipelines import cropnet

    setup = cropnet.configure(data_root=tree.root, protocol="casme2_5class", **FULL)
    assert setup.input_size == 320
    data = cropnet.load_protocol(setup)
    assert sorted(data.table["class"]) == ["disgust", "happiness", "repression", "surprise"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for method in ("ars", "rrs"):
            paths = cropnet.prepare_images(data, setup, method=method, progress=False)
            assert len(paths) == len(data.table)
            for path in paths:
                image = np.load(path)
                assert image.shape == (320, 320, 3) and image.dtype == np.uint8
                assert image.max() > 0, (method, path.name)


# --------------------------------------------------------------------------- Bai


@pytest.mark.parametrize("alignment, magnify", [("none", True), ("align", False)])
def test_bai_frames(tree, alignment, magnify):
    from melib.pipelines import bai

    setup = bai.configure(
        data_root=tree.root, dataset="smic_hs", alignment=alignment, magnify=magnify, **FULL
    )
    assert setup.input_size == 224
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clips = bai.prepare(setup, progress=False)
    assert clips.classes == ("negative", "positive", "surprise") and len(clips.table) == 4
    for i, row in enumerate(clips.table.itertuples()):
        frames = clips.load(i)
        assert frames.shape == (row.length, 224, 224, 3) and frames.dtype == np.uint8
        assert frames.std() > 0


# --------------------------------------------------------------------------- no face at all


@pytest.fixture(scope="module")
def faceless(tree, tmp_path_factory):
    """``(data root, {dataset: video})``: the tree plus a video without a face per dataset."""
    root = tmp_path_factory.mktemp("faceless")
    return root, RG.faceless_tree(tree, root)


def test_no_face_anywhere_is_a_clear_error(faceless):
    """A video in which dlib finds no face in any frame stops each feature stage with
    :class:`melib.face.NoFaceError` naming the dataset, the video and its frame folder
    (called on that one video: a whole ``prepare`` stops with the same error)."""
    from melib.features import lbcnn as lbcnn_features
    from melib.features.dyngeonet_windows import WindowJob, WindowSpec, extract_windows
    from melib.features.residual_sums import ResidualSettings, preprocess_clip
    from melib.features.video import DatasetVideo
    from melib.pipelines.bai.data import read_clip

    root, videos = faceless

    def no_face(key):
        video = videos[key]
        folder = D.load_dataset(key, root / key).frame_paths(video)[0].parent
        pattern = f"{video}: dlib found no face in any of its 3 frames.*Dataset {key}, frames in {folder}"
        return pytest.raises(face.NoFaceError, match=pattern.replace("(", r"\(").replace(")", r"\)"))

    key, video = "casme_sq", videos["casme_sq"]
    ds = D.load_dataset(key, root / key)
    with no_face(key):  # SOFTNet's per-video source of crops and landmarks
        DatasetVideo(key, str(root / key), video, 128)()
    with no_face(key):  # LBCNN
        lbcnn_features.video_samples(
            ds, video, lbcnn_features.InputSettings(), lbcnn_features.SamplingSettings()
        )
    spec = WindowSpec(length=3, stride=1, size=224)
    paths = [str(root / f"dyn-{i}.npy") for i in range(3)]
    with no_face(key):  # DynGeoNet
        extract_windows(WindowJob(key, str(root / key), video, spec, (0,), *paths))
    assert not any(Path(p).exists() for p in paths)  # nothing half-written is left behind

    clips = D.load_dataset("casme2", root / "casme2")
    row = clips.annotations.set_index("video", drop=False).loc[videos["casme2"]]
    with no_face("casme2"):  # CropNet
        preprocess_clip(clips, row, ResidualSettings(size=320))

    smic = D.load_dataset("smic_hs", root / "smic_hs")
    with no_face("smic_hs"):  # Bai, when it crops the face
        read_clip(smic, videos["smic_hs"], 0, 2, "crop", 224)
    # Bai's default (the proposal's "no cropping, no alignment") needs no face at all.
    assert read_clip(smic, videos["smic_hs"], 0, 2, "none", 224).shape == (3, 224, 224, 3)
