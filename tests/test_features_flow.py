"""Optical flow, strain and the SOFTNet 42x42 input, on arrays made here."""

from __future__ import annotations

import numpy as np
import pytest

from melib.features.cache import load_features, write_memmap
from melib.features.flow import FarnebackSettings, FlowSettings, TVL1Settings, make_flow, optical_strain
from melib.features.softnet_input import (
    SoftnetInputSettings,
    remove_head_motion,
    softnet_input,
    softnet_regions,
)
from melib.runtime import stable_hash


def face_landmarks(size: int = 128) -> np.ndarray:
    """A plausible frontal 68-point layout in a size x size crop (only the points
    SOFTNet uses are placed with care; the rest sit at the face centre)."""
    f = size / 128.0
    lm = np.full((68, 2), 64.0)
    lm[17], lm[19], lm[21] = (20, 38), (32, 32), (52, 38)
    lm[22], lm[24], lm[26] = (76, 38), (96, 32), (108, 38)
    lm[27], lm[28], lm[30] = (64, 46), (64, 56), (64, 74)
    for base, cx in ((36, 40), (42, 88)):
        lm[base : base + 6] = [
            (cx - 10, 50),
            (cx - 4, 46),
            (cx + 4, 46),
            (cx + 10, 50),
            (cx + 4, 54),
            (cx - 4, 54),
        ]
    lm[48], lm[50], lm[54], lm[57] = (44, 98), (58, 92), (84, 98), (64, 108)
    lm[60], lm[64] = (48, 98), (80, 98)
    return lm * f


def smooth_image(size: int = 48, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


@pytest.mark.parametrize(
    "settings",
    [
        FlowSettings("tvl1", tvl1=TVL1Settings.light()),
        FlowSettings("farneback", farneback=FarnebackSettings(winsize=9)),
    ],
)
def test_flow_recovers_a_one_pixel_shift(settings):
    img = smooth_image()
    shifted = np.roll(img, 1, axis=1)  # content moves +1 px in x
    flow = make_flow(settings)(img, shifted)
    assert flow.shape == (48, 48, 2) and flow.dtype == np.float32
    centre = flow[12:36, 12:36]
    assert abs(centre[..., 0].mean() - 1.0) < 0.2
    assert abs(centre[..., 1].mean()) < 0.2


def test_flow_rejects_unknown_method():
    with pytest.raises(ValueError, match="farneback"):
        make_flow(FlowSettings(method="lucas"))  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["central", "forward"])
def test_strain_of_a_linear_flow_field(scheme):
    a, b, c, d = 0.3, -0.2, 0.1, 0.5  # u = a x + c y, v = d x + b y
    y, x = np.mgrid[0:20, 0:30].astype(np.float32)
    strain = optical_strain(a * x + c * y, d * x + b * y, scheme=scheme)
    expected = np.sqrt(a**2 + b**2 + 0.5 * (c + d) ** 2)
    np.testing.assert_allclose(strain, expected, rtol=1e-5)


def test_strain_ignores_rigid_translation_and_rotation_shear():
    y, x = np.mgrid[0:16, 0:16].astype(np.float32)
    assert np.allclose(optical_strain(np.full_like(x, 3.0), np.full_like(x, -2.0)), 0)
    # an infinitesimal rotation (u = -y, v = x) has no symmetric part, so no strain
    assert np.allclose(optical_strain(-y, x), 0, atol=1e-6)


def test_head_motion_removal_subtracts_the_nose_patch_mean():
    lm = face_landmarks()
    flow = np.zeros((128, 128, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0  # the whole head drifts
    flow[90:110, 40:90, 1] += 3.0  # the mouth moves on top of it
    still = remove_head_motion(flow, lm, index=28, half=5)
    x, y = lm[28].astype(int)
    assert np.allclose(still[y - 5 : y + 6, x - 5 : x + 6], 0)
    assert np.allclose(still[10, 10], 0) and np.allclose(still[100, 60], (0, 3))


def test_geometry_masks_the_eyes_with_the_margin_and_boxes_the_reference_blocks():
    lm = face_landmarks()
    g = softnet_regions(lm, (128, 128))
    assert g["eye_mask"][50, 40] and g["eye_mask"][50, 40 - 10 - 14]  # 14 px left of corner 36
    assert not g["eye_mask"][100, 64]  # the mouth is untouched
    # SOFTNet's boxes (reference facts): rows min(y19,y24)-12 .. max(y41,y46)+12 inclusive
    assert g["eyes"].as_tuple() == (20 - 12, 32 - 12, 108 + 12 + 1, 54 + 12 + 1)
    assert g["mouth"].as_tuple() == (48 - 12, 92 - 12, 80 + 12 + 1, 108 + 12 + 1)
    small = softnet_regions(face_landmarks(64), (64, 64), SoftnetInputSettings(crop_size=64))
    assert small["eyes"].as_tuple() == (10 - 6, 16 - 6, 54 + 6 + 1, 27 + 6 + 1)


def test_softnet_input_shape_masking_and_layout():
    lm = face_landmarks()
    flow = np.zeros((128, 128, 2), np.float32)
    flow[28:36, 30:56, 1] = 1.5  # left brow rises (outside the grown eye mask? partly)
    flow[46:55, 32:49, 0] = 4.0  # a blink inside the left eye: must vanish
    flow[95:110, 50:78, 1] = 2.0  # the mouth opens
    x = softnet_input(flow, lm)
    assert x.shape == (42, 42, 3) and x.dtype == np.float32
    assert np.all(x >= 0)  # |u|, |v| and strain are magnitudes
    # u only moved inside the eye: masked, so the u channel is zero everywhere.
    assert np.allclose(x[..., 0], 0)
    assert x[:21, :, 1].max() > 1.0  # brow motion lands in the top block
    assert x[21:, :, 1].max() > 1.5  # mouth motion lands in the bottom block
    assert x[..., 2].max() > 0  # strain at the edges of the moving patches


def test_margins_scale_with_the_crop_size():
    assert SoftnetInputSettings(crop_size=64).scaled() == {"nose_half": 2, "eye_margin": 8, "block_margin": 6}
    lm = face_landmarks(64)
    x = softnet_input(np.ones((64, 64, 2), np.float32), lm, SoftnetInputSettings(crop_size=64))
    assert x.shape == (42, 42, 3)
    assert np.allclose(x[..., :2], 0, atol=1e-6)  # uniform flow is pure head motion


def test_stable_hash_is_stable_and_sensitive():
    a = stable_hash(FlowSettings(), SoftnetInputSettings(), 6)
    assert a == stable_hash(FlowSettings(), SoftnetInputSettings(), 6)
    assert a != stable_hash(FlowSettings(), SoftnetInputSettings(), 18)
    assert a != stable_hash(FlowSettings(tvl1=TVL1Settings.light()), SoftnetInputSettings(), 6)
    assert len(a) == 10


def test_write_memmap_is_atomic(tmp_path):
    target = tmp_path / "video.npy"
    with pytest.raises(RuntimeError):
        with write_memmap(target, (5, 42, 42, 3)) as mm:
            mm[0] = 1.0
            raise RuntimeError("killed mid-video")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file
    with write_memmap(target, (5, 4)) as mm:
        mm[:] = np.arange(20).reshape(5, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "video.npy",
        "video.npy.check",
    ]  # + its size and hash
    loaded = load_features(target)
    assert isinstance(loaded, np.memmap) and loaded[4, 3] == 19


# ------------------------------------------------------------------ video-level cache

from melib.features.softnet_input import FeatureJob, SoftnetFeatureSpec, compute_features  # noqa: E402

CALLS: list[int] = []


class MovingMouth:
    """A 64x64 'face' whose mouth region drifts down over 8 frames (picklable source)."""

    def __call__(self):
        CALLS.append(1)
        base = smooth_image(64, seed=3)

        def crops():
            for t in range(8):
                img = base.copy()
                img[44:60, 20:44] = np.roll(base[44:60, 20:44], t // 2, axis=0)
                yield img

        return 8, face_landmarks(64), crops()


def test_video_features_are_cached_and_not_recomputed(tmp_path):
    spec = SoftnetFeatureSpec(
        k=2, flow=FlowSettings(tvl1=TVL1Settings.light()), geometry=SoftnetInputSettings(crop_size=64)
    )
    job = FeatureJob(MovingMouth(), spec, tmp_path / spec.key() / "v1.npy")
    CALLS.clear()
    [path] = compute_features([job], workers=1, progress=False)
    feats = load_features(path)
    assert feats.shape == (6, 42, 42, 3) and CALLS == [1]
    assert feats[:, 21:].max() > feats[:, :21].max()  # the motion is in the mouth block
    stamp = path.stat().st_mtime_ns
    compute_features([job], workers=1, progress=False)
    assert CALLS == [1] and path.stat().st_mtime_ns == stamp  # cache hit: source never opened
    other = SoftnetFeatureSpec(k=3, flow=spec.flow, geometry=spec.geometry)
    assert other.key() != spec.key()
