"""DynGeoNet features: the 67-d geometric vector against an independent computation from
the paper's text, dynamic images (rank pooling weights), region composites and figures."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest

from melib.features import dynamic_image as D
from melib.features import geometry as G

matplotlib.use("Agg")


# --------------------------------------------------------------------------- geometry


def _paper_lines() -> list[tuple[int, int]]:
    """The 45 lines written out from the paper's section 3.3 (1-based), independently of
    melib.features.geometry."""
    lines = []
    for brow in [18, 19, 20, 21, 22, 23, 24, 25, 26, 27]:
        for anchor in [28, 32, 36]:
            lines.append((brow, anchor))
    for i in range(49, 61):  # "(P_i, P_i+1) where i is from 49 to 60"
        lines.append((i, i + 1))
    lines += [(51, 59), (53, 57), (49, 55)]
    return lines


def _expected_features(onset: np.ndarray, apex: np.ndarray) -> list[float]:
    """Plain loops over 1-based points: ratios, then deforms / inter-ocular distance."""

    def point(marks, k):  # k is 1-based, as in the paper
        return float(marks[k - 1][0]), float(marks[k - 1][1])

    def dist(a, b):
        return math.hypot(a[0] - b[0], a[1] - b[1])

    out = []
    for a, b in _paper_lines():
        out.append(dist(point(onset, a), point(onset, b)) / dist(point(apex, a), point(apex, b)))
    left = [sum(point(onset, k)[c] for k in range(37, 43)) / 6 for c in (0, 1)]
    right = [sum(point(onset, k)[c] for k in range(43, 49)) / 6 for c in (0, 1)]
    iod = dist(left, right)
    for k in list(range(18, 28)) + list(range(49, 61)):
        out.append(dist(point(onset, k), point(apex, k)) / iod)
    return out


def _face(rng: np.random.Generator) -> np.ndarray:
    """68 landmarks with no two points equal (random, but a valid input)."""
    return rng.uniform(50, 250, size=(68, 2))


def test_constants_match_the_paper():
    assert list(G.RATIO_LINES) == _paper_lines()
    assert len(G.RATIO_LINES) == 45 and len(set(G.RATIO_LINES)) == 45
    assert list(G.DEFORM_POINTS) == list(range(18, 28)) + list(range(49, 61))
    assert G.GEO_DIM == 67
    names = G.feature_names()
    assert len(names) == 67 and len(set(names)) == 67
    assert names[0] == "ratio_18_28" and names[2] == "ratio_18_36" and names[41] == "ratio_60_61"
    assert names[44] == "ratio_49_55" and names[45] == "deform_18" and names[-1] == "deform_60"


def test_geometric_features_match_an_independent_computation():
    rng = np.random.default_rng(7)
    onset = _face(rng)
    apex = onset + rng.normal(0, 2.0, size=onset.shape)
    got = G.geometric_features(onset.astype(np.float32), apex.astype(np.float32))
    assert got.shape == (67,) and got.dtype == np.float32
    np.testing.assert_allclose(
        got, _expected_features(onset.astype(np.float32), apex.astype(np.float32)), rtol=1e-5
    )


def test_hand_worked_example():
    """Landmarks on a grid; the apex moves point 51 (1-based) down by 3 px and points
    18 and 60 right by 4 px. Every value below is worked out by hand."""
    onset = np.zeros((68, 2))
    for k in range(68):
        onset[k] = (10.0 * (k % 10), 10.0 * (k // 10))  # 0-based index k -> grid
    apex = onset.copy()
    apex[50] += (0, 3)  # point 51
    apex[17] += (4, 0)  # point 18
    apex[59] += (4, 0)  # point 60
    got = G.geometric_features(onset, apex, normalize="none")
    names = G.feature_names()
    value = dict(zip(names, got.tolist()))
    # Untouched lines keep their length: ratio 1.
    assert value["ratio_19_28"] == pytest.approx(1.0)
    assert value["ratio_53_57"] == pytest.approx(1.0)
    # Point 51 is 0-based 50 at (0, 50); 50 (0-based 49) at (90, 40); 52 at (10, 50).
    assert value["ratio_50_51"] == pytest.approx(math.hypot(90, 10) / math.hypot(90, 13))
    assert value["ratio_51_52"] == pytest.approx(10 / math.hypot(10, 3))
    # 59 (0-based 58) at (80, 50): onset 80 px from 51, apex hypot(80, 3).
    assert value["ratio_51_59"] == pytest.approx(80 / math.hypot(80, 3))
    # 18 (0-based 17) at (70, 10) -> (74, 10); 28 at (70, 20), 32 at (10, 30), 36 at (50, 30).
    assert value["ratio_18_28"] == pytest.approx(10 / math.hypot(4, 10))
    assert value["ratio_18_32"] == pytest.approx(math.hypot(60, 20) / math.hypot(64, 20))
    assert value["ratio_18_36"] == pytest.approx(math.hypot(20, 20) / math.hypot(24, 20))
    # (60, 61): 60 is (90, 50) -> (94, 50); 61 (0-based 60) is (0, 60).
    assert value["ratio_60_61"] == pytest.approx(math.hypot(90, 10) / math.hypot(94, 10))
    # Deform in pixels: only the moved points.
    assert value["deform_51"] == pytest.approx(3.0)
    assert value["deform_18"] == pytest.approx(4.0)
    assert value["deform_60"] == pytest.approx(4.0)
    assert value["deform_49"] == 0 and value["deform_27"] == 0
    # Inter-ocular normalisation divides only the deform values.
    normed = G.geometric_features(onset, apex)
    left = onset[36:42].mean(0)
    right = onset[42:48].mean(0)
    iod = math.hypot(*(right - left))
    np.testing.assert_allclose(normed[:45], got[:45])
    np.testing.assert_allclose(normed[45:], got[45:] / iod, rtol=1e-6)


def test_geometry_is_scale_invariant_and_batches():
    rng = np.random.default_rng(3)
    onset = _face(rng)
    apex = onset + rng.normal(0, 1.5, size=onset.shape)
    one = G.geometric_features(onset, apex)
    # A face filmed twice as large gives the same vector (ratios and normalised deforms).
    np.testing.assert_allclose(G.geometric_features(onset * 2, apex * 2), one, rtol=1e-5)
    stack = G.geometric_features(np.stack([onset, apex]), np.stack([apex, onset]))
    assert stack.shape == (2, 67)
    np.testing.assert_allclose(stack[0], one, rtol=1e-6)
    # Scaling the face by 2 about the origin: every ratio is 1/2.
    np.testing.assert_allclose(G.geometric_features(onset, onset * 2)[:45], 0.5, rtol=1e-6)
    # Still face: ratios 1, deforms 0.
    still = G.geometric_features(onset, onset)
    np.testing.assert_allclose(still[:45], 1.0)
    np.testing.assert_allclose(still[45:], 0.0)


def test_geometry_bad_input():
    rng = np.random.default_rng(0)
    face = _face(rng)
    with pytest.raises(ValueError, match="onset_marks.*68, 2"):
        G.geometric_features(face[:67], face)
    with pytest.raises(ValueError, match="apex_marks.*NaN"):
        bad = face.copy()
        bad[3, 0] = np.nan
        G.geometric_features(face, bad)
    collapsed = face.copy()
    collapsed[50] = collapsed[58]  # 51 on top of 59
    with pytest.raises(ValueError, match=r"line \(51, 59\)"):
        G.geometric_features(face, collapsed)
    with pytest.raises(ValueError, match="normalize"):
        G.geometric_features(face, face, normalize="face")
    with pytest.raises(ValueError, match="differ in shape"):
        G.geometric_features(np.stack([face, face]), face)


# --------------------------------------------------------------------------- dynamic images


def test_rank_pooling_weights():
    np.testing.assert_array_equal(D.rank_pooling_weights(4), [-3, -1, 1, 3])
    np.testing.assert_array_equal(D.rank_pooling_weights(4, "as_printed"), [-1, 1, 3, 5])
    for n in (2, 11, 35, 65):
        assert D.rank_pooling_weights(n).sum() == 0
        assert D.rank_pooling_weights(n, "as_printed").sum() == 2 * n
        np.testing.assert_array_equal(D.rank_pooling_weights(n, "as_printed") - D.rank_pooling_weights(n), 2)
    with pytest.raises(ValueError, match="variant"):
        D.rank_pooling_weights(5, "fast")
    with pytest.raises(ValueError, match="at least 2"):
        D.rank_pooling_weights(1)


def test_dynamic_image_of_a_ramp_and_a_still_video():
    n = 11
    pattern = np.array([[1.0, 0.0], [-2.0, 3.0]])
    ramp = np.stack([t * pattern for t in range(1, n + 1)])  # I_t = t * pattern
    # sum_t (2t - T - 1) t = T (T + 1) (T - 1) / 6, worked out by hand.
    expected = n * (n + 1) * (n - 1) / 6 * pattern
    got = D.dynamic_image(ramp)
    assert got.dtype == np.float32 and got.shape == (2, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # Brightening pixels come out positive, darkening ones negative; reversed time flips it.
    np.testing.assert_allclose(D.dynamic_image(ramp[::-1]), -expected, rtol=1e-6)
    still = np.full((n, 3, 3, 3), 100, np.uint8)
    np.testing.assert_array_equal(D.dynamic_image(still), 0)
    # The paper's printed weights add 2 * sum_t I_t, i.e. the appearance.
    np.testing.assert_allclose(D.dynamic_image(still, "as_printed"), 2 * n * 100)
    np.testing.assert_allclose(D.dynamic_image(ramp, "as_printed") - got, 2 * ramp.sum(0), rtol=1e-6)
    # A list of frames works like an array.
    np.testing.assert_allclose(D.dynamic_image(list(ramp)), got)


def test_dynamic_image_bad_input_and_display():
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        D.dynamic_image(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="at least 2"):
        D.dynamic_image(np.zeros((1, 5, 5)))
    with pytest.raises(ValueError, match="different shapes"):
        D.dynamic_image([np.zeros((4, 4)), np.zeros((4, 5))])
    shown = D.to_display(np.array([[-2.0, 0.0], [1.0, 2.0]]))
    assert shown.dtype == np.uint8 and shown.min() == 0 and shown.max() == 255
    assert shown[0, 1] == 128
    np.testing.assert_array_equal(D.to_display(np.full((3, 3), 7.0)), 0)


@pytest.fixture(scope="module")
def portrait():
    from melib.data.synth_faces import astronaut_portraits

    p = astronaut_portraits()[0]
    return np.ascontiguousarray(p.image[:, :, ::-1]), p.landmarks


def _mouth_motion(image: np.ndarray, marks: np.ndarray, n: int = 9) -> np.ndarray:
    """A still face whose mouth box's upper half brightens frame by frame."""
    from melib import face as F

    box = F.regions(marks)["mouth"]
    middle = (box.top + box.bottom) // 2
    frames = np.repeat(image[None], n, axis=0).astype(np.int16)
    for t in range(n):
        frames[t, box.top : middle, box.left : box.right] += 3 * t
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_region_dynamic_images_and_composite(portrait):
    from melib import face as F

    image, marks = portrait
    boxes = F.regions(marks)
    assert boxes["eyes_brows"].bottom < boxes["mouth"].top  # the test relies on disjoint boxes
    frames = _mouth_motion(image, marks)
    regions = D.region_dynamic_images(frames, marks, size=32)
    assert set(regions) == {"eyes", "nose", "mouth"}
    assert all(r.shape == (32, 32) and r.dtype == np.float32 for r in regions.values())
    assert np.all(regions["eyes"] == 0)
    assert regions["mouth"].mean() > 0  # brightening -> positive dynamic image
    comp = D.region_composite(frames, marks, size=48)
    assert comp.shape == (3, 48, 48) and comp.dtype == np.float32
    assert comp.min() >= 0 and comp.max() <= 1
    np.testing.assert_array_equal(comp[0], comp[1])  # gray repeated on 3 channels
    # Tiles: eyes on top (16 rows), nose, mouth at the bottom; only the mouth band moves.
    assert np.all(comp[:, :16] == 0) and comp[:, 32:].max() > 0.9
    assert comp[0, 32:38].mean() > comp[0, 42:].mean()  # the brightening upper lip area
    channels = D.compose_regions(regions, size=32, layout="channels")
    assert channels.shape == (3, 32, 32)
    assert np.all(channels[0] == 0) and channels[2].max() == pytest.approx(1)
    with pytest.raises(ValueError, match="layout"):
        D.compose_regions(regions, layout="grid")
    with pytest.raises(ValueError, match="missing region"):
        D.compose_regions({"eyes": regions["eyes"]})
    with pytest.raises(ValueError, match="68, 2"):
        D.region_dynamic_images(frames, marks[:10])


# --------------------------------------------------------------------------- figures


def test_figures(portrait):
    import matplotlib.pyplot as plt

    from melib.visualization.dyngeonet import plot_dynamic_images, plot_landmark_lines

    image, marks = portrait
    fig = plot_landmark_lines(image, marks, numbers=True)
    ax = fig.axes[0]
    assert len(ax.lines) == 45
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 22
    plt.close(fig)
    frames = _mouth_motion(image, marks, n=5)
    comp = D.region_composite(frames, marks, size=32)
    fig = plot_dynamic_images(
        [(comp, "composite"), (D.dynamic_image(frames[:, :64, :64]), "rgb"), (comp[0], "composite")], ncols=2
    )
    assert sum(len(a.images) for a in fig.axes) == 3  # a repeated title keeps its panel
    assert [a.get_title() for a in fig.axes[:3]] == ["composite", "rgb", "composite"]
    assert fig.axes[0].images[0].get_array().shape == (32, 32, 3)  # channel-first shown as RGB
    plt.close(fig)
    with pytest.raises(ValueError, match="68, 2"):
        plot_landmark_lines(image, marks[:20])
