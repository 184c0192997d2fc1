"""CropNet preprocessing: clip selection, key frames, ARS / RRS, flow images, CGPO."""

from __future__ import annotations

import numpy as np
import pytest

from melib.features.cgpo import CGPOLayout, cgpo_crops, cgpo_crops_torch, crop_starts
from melib.features.residual_sums import (
    ResidualSettings,
    absolute_residual_sum,
    compute_clip,
    flow_image,
    key_frames,
    relative_residual_sum,
    select_clip,
)

# ------------------------------------------------------------------ clip selection (eqs. 1-2)


@pytest.mark.parametrize(
    "onset, apex, offset, expected",
    [
        (0, 30, 40, (0, 30)),  # apex far from the onset: end at the apex
        (5, 9, 40, (5, 15)),  # apex within 10 frames: onset + 10
        (5, 9, 12, (5, 12)),  # ... but never past the offset
        (5, 5, 5, (5, 5)),  # a one-frame clip
        (0, 10, 40, (0, 10)),  # apex exactly 10 after the onset: the apex rule
        (0, 50, 40, (0, 40)),  # apex annotated after the offset: capped by the offset
        (3, 3, 30, (3, 13)),  # apex at the onset
    ],
)
def test_select_clip(onset, apex, offset, expected):
    assert select_clip(onset, apex, offset) == expected


def test_select_clip_rejects_reversed_clip():
    with pytest.raises(ValueError, match="before onset"):
        select_clip(10, 12, 5)


# ------------------------------------------------------------------ key frames (eqs. 3-4)


@pytest.mark.parametrize(
    "start, end, n_key, expected",
    [
        (0, 10, 5, [2, 4, 6, 8, 10]),  # the capped span with the paper's N_key ends at `end`
        (0, 30, 5, [5, 10, 15, 20, 25]),  # gap ceil(30/6) = 5
        (100, 112, 5, [102, 104, 106, 108, 110]),
        (0, 7, 5, [2, 4, 6, 7]),  # gap 2: 8 and 10 are capped at 7, counted once
        (0, 3, 5, [1, 2, 3]),  # shorter than N_key: the set has no repeats
        (4, 4, 5, [4]),  # zero-length clip
        (0, 10, 1, [5]),
    ],
)
def test_key_frames_paper_rule(start, end, n_key, expected):
    assert key_frames(start, end, n_key) == expected


def test_key_frames_linspace_rule_ends_at_end():
    assert key_frames(0, 30, 5, rule="linspace") == [6, 12, 18, 24, 30]


def test_key_frames_rejects_bad_arguments():
    with pytest.raises(ValueError):
        key_frames(5, 4, 5)
    with pytest.raises(ValueError):
        key_frames(0, 10, 0)
    with pytest.raises(ValueError):
        key_frames(0, 10, 5, rule="other")


# ------------------------------------------------------------------ ARS / RRS (eqs. 5-7)


def _known_clip(n_frames: int = 41, size: int = 12, seed: int = 3) -> np.ndarray:
    """Random RGB frames with a few large jumps so that sums pass 255 and wrap."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 256, (n_frames, size, size, 3), dtype=np.uint8)
    clip[:, :3, :3] = 255
    clip[0, :3, :3] = 0  # the start frame: |255 - 0| on five key frames = 1275 ≡ 251 (mod 256)
    return clip


def _independent_residual(clip: np.ndarray, start: int, keys: list[int]) -> np.ndarray:
    """Eq. 6 pixel by pixel in plain Python integers (no NumPy broadcasting or dtypes)."""
    h, w, c = clip.shape[1:]
    out = np.zeros((h, w, c), dtype=object)
    for y in range(h):
        for x in range(w):
            for z in range(c):
                ref = int(clip[start, y, x, z])
                out[y, x, z] = sum(abs(int(clip[f, y, x, z]) - ref) for f in keys)
    return out


def test_ars_matches_an_independent_computation_on_a_known_clip():
    clip = _known_clip()
    # onset 0, apex 30, offset 40 → start 0, end 30, key frames 5, 10, 15, 20, 25 (by hand)
    keys = [5, 10, 15, 20, 25]
    want = _independent_residual(clip, 0, keys)
    expected = np.vectorize(lambda v: v % 256)(want).astype(np.uint8)
    got = compute_clip(lambda i: clip[i], 0, 30, 40, ResidualSettings(method="ars", size=12))
    assert got.dtype == np.uint8 and got.shape == clip.shape[1:]
    np.testing.assert_array_equal(got, expected)
    # the jumps made the sum wrap: 5 * 255 = 1275 → 251
    assert int(got[0, 0, 0]) == 1275 % 256
    assert int(want.max()) > 255


def test_rrs_matches_an_independent_computation_on_a_known_clip():
    clip = _known_clip(seed=7)
    keys = [5, 10, 15, 20, 25]
    want = _independent_residual(clip, 0, keys)
    lo, hi = min(want.ravel()), max(want.ravel())
    expected = np.array(
        [[[round((v - lo) * 255 / (hi - lo)) for v in px] for px in row] for row in want], dtype=np.uint8
    )
    got = compute_clip(lambda i: clip[i], 0, 30, 40, ResidualSettings(method="rrs", size=12))
    np.testing.assert_array_equal(got, expected)
    assert got.min() == 0 and got.max() == 255


def test_short_apex_clip_uses_onset_plus_ten():
    clip = _known_clip()
    # apex 4 frames after the onset → end = onset + 10 → keys 2, 4, 6, 8, 10
    got = compute_clip(lambda i: clip[i], 0, 4, 40, ResidualSettings(method="ars", size=12))
    expected = np.vectorize(lambda v: v % 256)(_independent_residual(clip, 0, [2, 4, 6, 8, 10]))
    np.testing.assert_array_equal(got, expected.astype(np.uint8))


def test_residual_sums_of_a_still_clip():
    still = np.full((8, 8, 3), 77, np.uint8)
    assert absolute_residual_sum(still, [still, still]).max() == 0
    assert relative_residual_sum(still, [still]).max() == 0  # no range to scale: g_min


def test_residual_sum_rejects_mismatched_frames():
    with pytest.raises(ValueError, match="shape"):
        absolute_residual_sum(np.zeros((8, 8, 3), np.uint8), [np.zeros((9, 8, 3), np.uint8)])


def test_flow_image_is_rgb_uint8_and_sees_motion():
    rng = np.random.default_rng(0)
    base = (rng.random((48, 48)) * 255).astype(np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (7, 7), 2)
    moved = np.roll(base, 2, axis=1)
    for method in ("farneback", "tvl1"):
        s = ResidualSettings(method=method, size=48, tvl1_light=True)
        image = flow_image(np.dstack([base] * 3), np.dstack([moved] * 3), s.flow_settings())
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
        assert image.max() > 0


def test_settings_key_ignores_key_frames_for_flows():
    a = ResidualSettings(method="tvl1", n_key=3).key()
    b = ResidualSettings(method="tvl1", n_key=5).key()
    assert a == b
    assert ResidualSettings(method="ars", n_key=3).key() != ResidualSettings(method="ars", n_key=5).key()
    with pytest.raises(ValueError):
        ResidualSettings(method="sobel")


# ------------------------------------------------------------------ CGPO


def test_cgpo_paper_layout_gives_ten_160px_crops():
    layout = CGPOLayout(320, 160, 0.3)
    assert layout.levels == [320, 160]
    assert layout.n_crops == 10
    assert crop_starts(320, 160, 0.3) == [0, 80, 160]
    assert crop_starts(160, 160, 0.3) == [0]
    boxes = layout.boxes()
    assert boxes[0] == (1, 0, 0)  # z0: the whole 160 px level
    assert [b[1:] for b in boxes[1:]] == [(top, left) for top in (0, 80, 160) for left in (0, 80, 160)]


def test_cgpo_crops_count_size_overlap_and_content():
    import cv2

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (320, 320, 3), dtype=np.uint8)
    crops = cgpo_crops(image)
    assert crops.shape == (10, 160, 160, 3)
    np.testing.assert_array_equal(crops[0], cv2.pyrDown(image))
    np.testing.assert_array_equal(crops[1], image[:160, :160])
    np.testing.assert_array_equal(crops[5], image[80:240, 80:240])
    np.testing.assert_array_equal(crops[9], image[160:, 160:])
    # neighbours overlap by at least α of a crop; together they cover the whole input
    starts = crop_starts(320, 160, 0.3)
    overlaps = [1 - (b - a) / 160 for a, b in zip(starts, starts[1:])]
    assert min(overlaps) >= 0.3
    covered = np.zeros((320, 320), bool)
    for level, top, left in CGPOLayout().boxes():
        if level == 0:
            covered[top : top + 160, left : left + 160] = True
    assert covered.all()


@pytest.mark.parametrize("alpha, per_side", [(0.0, 2), (0.3, 3), (0.5, 3), (0.6, 4), (0.8, 6)])
def test_crop_starts_respect_the_least_overlap(alpha, per_side):
    starts = crop_starts(320, 160, alpha)
    assert len(starts) == per_side
    assert starts[0] == 0 and starts[-1] == 160
    steps = np.diff(starts)
    assert (steps <= 160 * (1 - alpha) + 1).all()
    assert CGPOLayout(320, 160, alpha).n_crops == per_side**2 + 1


def test_cgpo_scales_with_the_input():
    assert CGPOLayout(64, 32, 0.3).n_crops == 10
    with pytest.raises(ValueError):
        CGPOLayout(100, 160)
    with pytest.raises(ValueError):
        crop_starts(320, 160, 1.0)


def test_torch_cgpo_matches_numpy():
    import torch

    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    layout = CGPOLayout(64, 32, 0.3)
    want = cgpo_crops(image, layout).astype(np.float32)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    got = cgpo_crops_torch(x, layout)[0].permute(0, 2, 3, 1).numpy()
    assert got.shape == want.shape
    # cv2.pyrDown rounds to uint8; the float pyramid differs by at most that rounding
    assert np.abs(got - want).max() <= 0.5 + 1e-4
    np.testing.assert_array_equal(got[1:], want[1:])
