"""Face pipeline on a real face: scikit-image's astronaut portrait."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from builders import SAMM_LV_HEADER
from skimage import data

from melib import face as F
from melib.data import datasets as D


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.fixture(scope="module")
def marks(astronaut):
    return F.landmarks(astronaut, F.detect_face(astronaut))


def test_detects_the_face_not_the_badge(astronaut):
    box = F.detect_face(astronaut)
    # The face is in the upper half; the shoulder badge also fires, with a lower score.
    assert box is not None and box.bottom < 256 and 60 <= box.width <= 140
    assert F.detect_face(np.zeros((200, 200), np.uint8)) is None


def test_landmarks_are_anatomical(astronaut, marks):
    assert marks.shape == (68, 2)
    box = F.detect_face(astronaut).scaled(1.3)
    assert (marks[:, 0] >= box.left).all() and (marks[:, 0] <= box.right).all()
    brow_y = marks[17:27, 1].mean()
    eye_y = marks[36:48, 1].mean()
    nose_y = marks[F.NOSE_BRIDGE, 1]
    mouth_y = marks[48:68, 1].mean()
    assert brow_y < eye_y < nose_y < mouth_y
    left, right = F.eye_centers(marks)
    assert left[0] < right[0]  # 36-41 is the image-left eye


def test_regions_follow_softnet(marks):
    r = F.regions(marks, margin=12)
    assert set(r) == set(F.REGION_NAMES)
    eb, mo = r["eyes_brows"], r["mouth"]
    assert eb.left == round(marks[17, 0]) - 12 and eb.right == round(marks[26, 0]) + 13
    assert eb.top == round(min(marks[19, 1], marks[24, 1])) - 12
    assert mo.top == round(marks[50, 1]) - 12 and mo.bottom == round(marks[57, 1]) + 13
    assert eb.bottom <= mo.bottom and r["brow_left"].right <= r["brow_right"].right
    assert r["nose"].top < mo.top


def test_crop_and_points_to_crop(astronaut, marks):
    box = F.detect_face(astronaut)
    c = F.crop(astronaut, box, 128, gray=True)
    assert c.shape == (128, 128) and c.dtype == np.uint8
    inside = F.points_to_crop(marks, box, 128)
    assert inside.shape == (68, 2) and (inside > -20).all() and (inside < 148).all()
    # A box that leaves the frame is zero-padded, not shifted.
    edge = F.crop(astronaut, F.Box(-10, -10, 30, 30), None)
    assert edge.shape == (40, 40, 3) and edge[:10].max() == 0
    assert (edge[10:, 10:] == astronaut[:30, :30]).all()
    crops = F.region_crops(astronaut, marks, size=(42, 21), names=("eyes_brows", "mouth"))
    assert crops["mouth"].shape == (21, 42, 3)


def test_alignment_levels_the_eyes(astronaut, marks):
    centre = tuple(float(v) for v in marks.mean(axis=0))
    rot = cv2.getRotationMatrix2D(centre, 12.0, 1.0)
    tilted = cv2.warpAffine(astronaut, rot, astronaut.shape[1::-1])
    tilted_marks = F.transform_points(marks, rot)
    left, right = F.eye_centers(tilted_marks)
    assert abs(right[1] - left[1]) > 5
    aligned, m = F.align(tilted, tilted_marks, eye_distance=60, center=(100, 80), output_shape=(200, 200))
    moved = F.transform_points(tilted_marks, m)
    left, right = F.eye_centers(moved)
    assert aligned.shape == (200, 200, 3)
    assert abs(right[1] - left[1]) < 0.5 and abs(right[0] - left[0] - 60) < 0.5
    assert np.allclose((left + right) / 2, (100, 80), atol=0.5)
    # The aligned face is still a face to dlib.
    assert F.detect_face(aligned) is not None


def test_eye_mask(astronaut, marks):
    mask = F.eye_mask(astronaut.shape, marks, grow=15)
    thin = F.eye_mask(astronaut.shape, marks, grow=0)
    x, y = np.round(F.eye_centers(marks)[0]).astype(int)
    assert mask[y, x] and thin[y, x] and mask.sum() > 3 * thin.sum()
    assert not mask[int(marks[57, 1]), int(marks[57, 0])]


def test_reference_box_warns_and_errors(astronaut):
    blank = np.zeros_like(astronaut)
    with pytest.warns(UserWarning, match="reference box comes from frame 2"):
        index, box = F.reference_box([blank, blank, astronaut, astronaut], video="v1")
    assert index == 2 and box == F.detect_face(astronaut)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert F.reference_box([astronaut, blank])[0] == 0
    with pytest.raises(F.NoFaceError, match="s15/clip_x: dlib found no face in any of its 3"):
        F.reference_box([blank] * 3, video="s15/clip_x")


def _astronaut_video(root, astronaut, n=4, blank_first=1):
    """A one-video SAMM-LV layout whose first frames are blank."""
    import pandas as pd

    folder = root / "SAMM_longvideos" / "006_1"
    folder.mkdir(parents=True)
    small = cv2.resize(astronaut, (256, 256))
    for i in range(n):
        image = np.zeros_like(small) if i < blank_first else np.roll(small, i, axis=1)
        cv2.imwrite(str(folder / f"006_1_{i + 1:04d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    rows = [[None]] * 9 + [
        SAMM_LV_HEADER,
        ["006", "006_1_1", 1, 1, 1, 2, 1, "Micro - 1/2", "12", None],
    ]
    width = max(len(r) for r in rows)
    rows = [list(r) + [None] * (width - len(r)) for r in rows]
    with pd.ExcelWriter(root / "SAMM_LongVideos_V2_Release.xlsx") as w:
        pd.DataFrame(rows).to_excel(w, sheet_name="FACS_Movement_Only", header=False, index=False)
    return D.load_dataset("samm_lv", root)


def test_track_video_caches(tmp_path, monkeypatch, astronaut):
    monkeypatch.setenv("MELIB_CACHE", str(tmp_path / "cache"))
    ds = _astronaut_video(tmp_path / "samm_lv", astronaut)
    with pytest.warns(UserWarning, match="frame 1"):
        track = F.track_video(ds, "006_1", per_frame=True)
    assert track.ref_index == 1 and track.per_frame.shape == (4, 68, 2)
    assert np.allclose(track.per_frame[1], track.landmarks)
    # Frames 2 and 3 are shifted 1 and 2 px right; per-frame landmarks follow.
    shift = (track.per_frame[3, :, 0] - track.per_frame[1, :, 0]).mean()
    assert 1.0 < shift < 3.0
    files = list((tmp_path / "cache" / "landmarks" / "samm_lv").glob("*.npz"))
    assert len(files) == 1
    again = F.track_video(ds, "006_1", per_frame=True)  # from cache: no detection, no warning
    assert again.box == track.box and np.array_equal(again.per_frame, track.per_frame)
    crops = list(F.iter_crops(ds, "006_1", track, size=64, start=1, stop=3))
    assert len(crops) == 2 and crops[0].shape == (64, 64)


def test_track_video_no_face(tmp_path, monkeypatch, astronaut):
    monkeypatch.setenv("MELIB_CACHE", str(tmp_path / "cache"))
    ds = _astronaut_video(tmp_path / "samm_lv", astronaut, n=2, blank_first=2)
    with pytest.raises(F.NoFaceError, match="006_1: dlib found no face"):
        F.track_video(ds, "006_1")
