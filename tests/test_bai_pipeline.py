"""The Bai pipeline's own logic (melib.pipelines.bai), on small arrays and files made here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from melib.evaluation.protocols import loso_splits
from melib.pipelines import bai, common
from melib.pipelines.bai import gradcam


@pytest.fixture(autouse=True)
def one_thread(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    monkeypatch.setenv("MELIB_CACHE", str(tmp_path / "cache"))


def test_sequences_run_from_onset_to_offset():
    seq = bai.sequence_indices(35, 11)
    assert len(seq) == 11 and seq[0] == 0 and seq[-1] == 34
    assert np.all(np.diff(seq) > 0)
    short = bai.sequence_indices(5, 11)  # a clip shorter than N repeats frames
    assert len(short) == 11 and short[0] == 0 and short[-1] == 4 and np.all(np.diff(short) >= 0)
    with pytest.raises(ValueError):
        bai.sequence_indices(0, 11)


def test_frame_level_frames_come_from_the_sequence_away_from_its_ends():
    seq = bai.sequence_indices(40, 11)
    picked = bai.frame_level_indices(40, 11, 3)
    assert len(picked) == 3 and set(picked) <= set(seq)
    assert seq[0] not in picked and seq[-1] not in picked
    assert np.array_equal(bai.frame_level_indices(40, 11, None), seq)


def test_label_tables():
    ann = pd.DataFrame(
        {
            "subject": ["a", "a", "b", "b", "b"],
            "onset": [0] * 5,
            "offset": [9, 19, 9, 9, 9],
            "emotion": ["happiness", "others", "repression", "surprise", "fear"],
        }
    )
    table, names = bai.label_table(ann, "casme2", "megc2019")
    assert names == ("negative", "positive", "surprise")
    assert list(table["class"]) == ["positive", "negative", "surprise"]  # others and fear have no MEGC class
    assert list(table["label"]) == [1, 0, 2] and list(table["length"]) == [10, 10, 10]
    table, names = bai.label_table(ann, "casme2", "all")
    assert len(table) == 5 and names == ("fear", "happiness", "others", "repression", "surprise")
    smic = pd.DataFrame({"subject": ["s1"], "onset": [3], "offset": [30], "emotion": ["negative"]})
    table, names = bai.label_table(smic, "smic_hs", "all")  # SMIC keeps its three classes
    assert names == ("negative",) and table["length"].iat[0] == 28


def test_region_share():
    masks = np.zeros((3, 8, 8), bool)
    masks[:, 2:4, 2:6] = True  # 8 of 64 pixels
    cams = np.zeros((3, 8, 8))
    cams[0, 2:4, 2:6] = 1.0  # all inside
    cams[1] = 1.0  # uniform
    # cams[2] all zero: counts as uniform
    share = bai.region_share(cams, masks)
    assert share == pytest.approx([1.0, 0.125, 0.125])


def _landmarks(size: int) -> np.ndarray:
    """68 plausible points on a face filling a size x size frame."""
    rng = np.random.default_rng(0)
    p = np.zeros((68, 2), np.float32)
    s = size / 64
    p[0:17] = np.stack([np.linspace(8, 56, 17), 30 + 20 * np.sin(np.linspace(0, np.pi, 17))], 1) * s
    p[17:27] = np.stack([np.linspace(14, 50, 10), np.full(10, 18)], 1) * s
    p[27:36] = np.stack([np.full(9, 32) + rng.uniform(-4, 4, 9), np.linspace(22, 38, 9)], 1) * s
    p[36:48] = np.stack([np.r_[np.linspace(16, 26, 6), np.linspace(38, 48, 6)], np.full(12, 24)], 1) * s
    outer = np.linspace(np.pi, -np.pi, 12, endpoint=False)  # 48 (left corner) round the lips
    inner = np.linspace(np.pi, -np.pi, 8, endpoint=False)  # 60 (left) .. 64 (right corner)
    p[48:60] = np.stack([32 + 10 * np.cos(outer), 46 - 4 * np.sin(outer)], 1) * s
    p[60:68] = np.stack([32 + 9 * np.cos(inner), 46 - 2 * np.sin(inner)], 1) * s
    return p


def test_feature_mask_covers_eyes_brows_nose_and_mouth_only():
    marks = _landmarks(64)
    mask = bai.feature_mask(marks, 64)
    assert mask.shape == (64, 64)
    for name, idx in {
        "brows": range(17, 27),
        "eyes": range(36, 48),
        "nose": range(27, 36),
        "mouth": range(48, 68),
    }.items():
        pts = np.round(marks[list(idx)]).astype(int)
        assert mask[pts[:, 1], pts[:, 0]].all(), name
    assert not mask[2, 2] and not mask[62, 62]  # corners are background
    assert 0.1 < mask.mean() < 0.6


@pytest.fixture
def tiny_clips(tmp_path):
    """Six 12-frame clips of two subjects, three classes, 32 px, written as cached frames."""
    rng = np.random.default_rng(0)
    rows, paths = [], []
    for k in range(6):
        frames = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
        path = tmp_path / f"clip{k}.npy"
        np.save(path, frames)
        paths.append(path)
        rows.append(
            {
                "sample": f"s{k // 3}_c{k}",
                "subject": f"s{k // 3}",
                "video": f"v{k}",
                "onset": 0,
                "apex": 6,
                "offset": 11,
                "emotion": "x",
                "class": ("negative", "positive", "surprise")[k % 3],
                "label": k % 3,
                "length": 12,
            }
        )
    clips = bai.Clips(
        dataset=None,
        table=pd.DataFrame(rows),
        classes=("negative", "positive", "surprise"),
        fps=100.0,
        frames=paths,
    )
    return clips


def test_the_specific_layer_is_reproducible_for_a_seed(tiny_clips, monkeypatch):
    monkeypatch.setattr(gradcam, "landmarks_in_input", lambda clips, i, alignment, size: _landmarks(size))
    setup = bai.configure(profile="smoke", input_size=32)
    first = bai.choose_specific_layer(tiny_clips, setup)
    second = bai.choose_specific_layer(tiny_clips, setup)
    assert first.layer == second.layer and first.layer in bai.STAGES
    pd.testing.assert_frame_equal(first.scores, second.scores)
    assert list(first.scores.index) == list(bai.STAGES)
    assert first.scores.loc[first.layer, "CAM share in regions"] == first.scores["CAM share in regions"].max()
    assert first.clips == bai.cam_examples(tiny_clips, setup)
    given = bai.choose_specific_layer(tiny_clips, setup.with_(specific_layer="layer1"))
    assert given.layer == "layer1" and given.given


def test_the_criterion_picks_the_stage_whose_cam_sits_on_the_face(tiny_clips, monkeypatch):
    size = 32
    monkeypatch.setattr(gradcam, "landmarks_in_input", lambda clips, i, alignment, s: _landmarks(s))
    mask = bai.feature_mask(_landmarks(size), size)

    def fake_cams(model, frames, targets=None):
        k = len(frames)
        on_face = np.repeat(mask[None].astype(np.float32), k, 0)
        off_face = 1.0 - on_face
        half = 0.5 * on_face + 0.5 * off_face
        return {"conv1": off_face, "layer1": half, "layer2": on_face, "layer3": half, "layer4": off_face}

    monkeypatch.setattr(gradcam, "stage_cams", fake_cams)
    choice = bai.choose_specific_layer(tiny_clips, bai.configure(profile="smoke", input_size=size))
    assert choice.layer == "layer2"
    assert choice.scores.loc["layer2", "CAM share in regions"] == pytest.approx(1.0)
    assert choice.scores.loc["conv1", "CAM share in regions"] == pytest.approx(0.0)


def test_configure_validates_and_follows_the_profiles():
    smoke = bai.configure(profile="smoke")
    assert smoke.input_size == 48 and smoke.max_folds == 2 and smoke.lr == pytest.approx(1e-3)
    full = bai.configure(profile="full")
    assert full.input_size == 224 and full.max_folds is None and full.limits.n_sweep == tuple(range(11, 18))
    assert set(full.limits.decoders) == {"lstm", "bilstm", "gru", "tcn"}
    for bad in (
        {"dataset": "casme_sq"},
        {"decoder": "transformer"},
        {"experiment": "IV"},
        {"specific_layer": "fc"},
        {"alignment": "warp"},
        {"low_hz": 5, "high_hz": 2},
        {"n_frames": 1},
        {"input_size": 16},
        {"training": "online"},
    ):
        with pytest.raises(common.ParameterError):
            bai.configure(profile="smoke", **bad)
    with pytest.raises(common.ParameterError, match="weights_path"):
        bai.configure(profile="smoke", weights_path="/nonexistent/vggface2.pth")
    text = bai.caveats(smoke)
    assert "from scratch" in text and "synthetic" in text
    assert "48 px" in text


def _fake_run(clips, scores_true, scores_pred, dataset="smic_hs"):
    from melib.evaluation.recognition import evaluate_recognition

    frame = pd.DataFrame(
        {
            "sample": clips.table["sample"],
            "subject": clips.table["subject"],
            "true": scores_true,
            "predicted": scores_pred,
        }
    )
    return evaluate_recognition(frame, labels=list(clips.classes))


def test_paper_numbers_are_labelled_and_only_on_smic(tiny_clips):
    truth = list(tiny_clips.table["class"])
    ev = _fake_run(tiny_clips, truth, truth)
    frame_run = bai.FrameRunResult("experiment II", "II", "layer3", None, None, None, ev, ev, {}, {}, {}, ())
    seq_run = bai.SequenceRunResult(
        "lstm, N = 11", "lstm", False, 11, None, None, ev, np.zeros((6, 2)), {}, {}
    )
    table = bai.comparison_table(frame_run, seq_run, "smic_hs")
    assert list(table["paper accuracy (SMIC)"]) == [0.326, 0.326, 0.6006]
    assert (table["accuracy"] == 1.0).all()
    other = bai.comparison_table(frame_run, seq_run, "casme2")
    assert set(other["paper accuracy (SMIC)"]) == {"SMIC only in the proposal"}
    assert bai.frame_table([frame_run], "smic_hs")["paper accuracy (SMIC)"].iat[0].startswith("32.6%")
    assert bai.frame_table([frame_run], "samm")["paper accuracy (SMIC)"].iat[0] == "SMIC only in the proposal"


def _frame_run(tmp_path, folds):
    """An experiment II frame-level run over ``folds`` whose checkpoints would sit in ``tmp_path``."""
    checkpoints = {f: tmp_path / f"{f}.pt" for f in folds}
    return bai.FrameRunResult(
        "experiment II", "II", "layer3", None, None, None, None, None, {}, checkpoints, folds, ()
    )


def test_decoders_learn_separable_cached_sequences(tiny_clips, tmp_path):
    """Cached features whose class shows in one dimension: every decoder must learn them."""
    rng = np.random.default_rng(1)
    n, dim = 11, 8
    # Twelve clips of four subjects so each fold trains on three subjects.
    table = pd.concat(
        [
            tiny_clips.table.assign(
                subject=tiny_clips.table["subject"] + suffix, sample=tiny_clips.table["sample"] + suffix
            )
            for suffix in ("a", "b")
        ],
        ignore_index=True,
    )
    clips = bai.Clips(None, table, tiny_clips.classes, 100.0, frames=tiny_clips.frames * 2)
    features = rng.normal(0, 0.1, (len(table), n, dim)).astype(np.float32)
    features[np.arange(len(table)), :, table["label"].to_numpy()] += 2.0
    folds = {f"f{f.index}": f for f in loso_splits(table["subject"], max_folds=2)}
    paths = {}
    for name in folds:
        paths[name] = tmp_path / f"{name}.npz"
        np.savez(paths[name], n11=features)
    encoded = bai.Encoded(paths, (n,), None)
    frame_run = _frame_run(tmp_path, folds)
    setup = bai.configure(profile="smoke", decoder_epochs=100).with_(fc=(16, dim), hidden=16)
    for decoder in ("lstm", "tcn"):
        run = bai.run_sequence_level(clips, frame_run, encoded, setup, decoder=decoder, progress=False)
        assert run.scores["accuracy"] >= 0.9, decoder
        assert run.embeddings.shape[0] == len(table) and np.abs(run.embeddings).sum() > 0
        again = bai.run_sequence_level(clips, frame_run, encoded, setup, decoder=decoder, progress=False)
        assert again.trained_folds == 0  # checkpoints per fold: a rerun trains nothing
        pd.testing.assert_frame_equal(again.predictions, run.predictions)


@pytest.mark.parametrize(
    "field,value",
    [
        ("epochs", 0),
        ("epochs", -1),
        ("alpha", -1.0),
        ("decoder_lr", 0.0),
        ("lr", 0),
        ("batch_size", 2.5),
        ("seed", "abc"),
        ("hidden", 0),
        ("decoder_epochs", 1.5),
        ("input_size", 16),
        ("n_frames", 65),
        ("attention", 1),
        ("magnify", "yes"),
        ("max_folds", 1),
        ("max_folds", "some"),
        ("limit_steps", 0),
        ("fc", (512,)),
        ("fc", (512, 0)),
        ("training", "online"),
        ("low_hz", -1.0),
        ("high_hz", 0),
        ("profile", "huge"),
        ("dataset", "casme_sq"),
    ],
)
def test_configure_rejects_bad_parameters_naming_them(field, value):
    with pytest.raises(common.ParameterError, match=f"parameter {field}="):
        bai.configure(**{"profile": "smoke", field: value})


def test_configure_is_keyword_only_and_none_takes_the_profile():
    with pytest.raises(TypeError):
        bai.configure(0, "smoke")
    book = bai.configure(profile="book", epochs=None, batch_size=None, max_folds=None, input_size=None)
    limits = bai.PROFILES["book"]
    assert (book.epochs, book.batch_size, book.max_folds, book.input_size) == (
        limits.epochs,
        limits.batch_size,
        limits.max_folds,
        limits.input_size,
    )
    assert bai.configure(profile="book", max_folds="all").max_folds is None  # one fold per subject
    assert bai.configure(profile="book", max_folds=4).max_folds == 4
    assert isinstance(book, bai.Setup) and isinstance(book, common.BaseSetup)


def test_limit_steps_reaches_every_training(tiny_clips, tmp_path):
    setup = bai.configure(profile="smoke", limit_steps=1)
    assert setup.frame_train_config().max_steps == 1 and setup.decoder_train_config().max_steps == 1
    assert "limit_steps" in bai.caveats(setup) and "step limit" in setup.describe().index
    unlimited = bai.configure(profile="smoke")
    assert unlimited.frame_train_config().max_steps is None and "limit_steps" not in bai.caveats(unlimited)
    # A decoder trained through run_sequence_level takes one optimiser step per fold.
    folds = {f"f{f.index}": f for f in loso_splits(tiny_clips.table["subject"])}
    paths = {}
    for name in folds:
        paths[name] = tmp_path / f"{name}.npz"
        np.savez(paths[name], n11=np.random.default_rng(0).normal(size=(6, 11, 4)).astype(np.float32))
    frame_run = _frame_run(tmp_path, folds)
    run = bai.run_sequence_level(
        tiny_clips,
        frame_run,
        bai.Encoded(paths, (11,), None),
        setup.with_(fc=(8, 4), hidden=4, decoder_epochs=5),
        progress=False,
    )
    assert all(len(h["batch_loss"]) == 1 for h in run.histories.values()) and len(run.histories) == 2
