"""Eulerian magnification checked against independent computations on synthetic clips."""

import numpy as np
import pytest

from melib.features.magnification import (
    collapse_pyramid,
    laplacian_pyramid,
    level_alphas,
    magnify,
    temporal_bandpass,
)

FPS = 32.0
T = 64  # bins every FPS / T = 0.5 Hz: the test tones sit exactly on bins
F_IN, F_OUT = 4.0, 12.0
BAND = (2.0, 6.0)


def _amplitude(series: np.ndarray, freq: float, fps: float = FPS) -> float:
    """Amplitude of the ``freq`` component of a 1-D series (numpy FFT, not scipy's)."""
    spectrum = np.fft.rfft(series - series.mean())
    k = int(round(freq * len(series) / fps))
    return 2 * abs(spectrum[k]) / len(series)


def _tone(freq: float, n: int = T, fps: float = FPS) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(n) / fps)


@pytest.mark.parametrize("shape", [(32, 32), (37, 53), (37, 53, 3)])
@pytest.mark.parametrize("levels", [1, 3, 4])
def test_pyramid_round_trip_is_exact(shape, levels):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, size=shape)
    pyramid = laplacian_pyramid(image, levels)
    assert len(pyramid) == levels
    assert pyramid[0].shape == image.shape
    np.testing.assert_allclose(collapse_pyramid(pyramid), image, atol=1e-9)
    image32 = image.astype(np.float32)
    np.testing.assert_allclose(collapse_pyramid(laplacian_pyramid(image32, levels)), image32, atol=1e-3)
    as_uint8 = image.astype(np.uint8)
    np.testing.assert_allclose(collapse_pyramid(laplacian_pyramid(as_uint8, levels)), as_uint8, atol=1e-3)


def test_pyramid_levels_halve_and_bands_are_zero_mean_for_flat_images():
    pyramid = laplacian_pyramid(np.full((40, 64), 90.0), 4)
    assert [p.shape for p in pyramid] == [(40, 64), (20, 32), (10, 16), (5, 8)]
    for band in pyramid[:-1]:
        np.testing.assert_allclose(band, 0, atol=1e-9)
    np.testing.assert_allclose(pyramid[-1], 90.0, atol=1e-9)


def test_ideal_bandpass_keeps_in_band_tone_and_removes_the_rest():
    signal = 3 * _tone(F_IN) + 5 * _tone(F_OUT) + 7.0
    filtered = temporal_bandpass(signal, FPS, *BAND)
    np.testing.assert_allclose(filtered, 3 * _tone(F_IN), atol=1e-9)


def test_bandpass_works_along_axis_zero_of_any_shape():
    signal = _tone(F_IN)[:, None, None] * np.arange(1, 7).reshape(1, 2, 3) + _tone(F_OUT)[:, None, None]
    filtered = temporal_bandpass(signal.astype(np.float32), FPS, *BAND)
    assert filtered.shape == signal.shape and filtered.dtype == np.float32
    np.testing.assert_allclose(
        filtered, _tone(F_IN)[:, None, None] * np.arange(1, 7).reshape(1, 2, 3), atol=1e-5
    )


def test_butterworth_passes_the_band_and_attenuates_far_tones():
    n = 256
    inside = temporal_bandpass(_tone(4.0, n), FPS, 2.0, 8.0, kind="butterworth", order=2)
    outside = temporal_bandpass(_tone(15.0, n), FPS, 2.0, 8.0, kind="butterworth", order=2)
    middle = slice(32, -32)  # away from the edge transients
    assert 0.8 < _amplitude(inside[middle], 4.0) <= 1.05
    assert _amplitude(outside[middle], 15.0) < 0.1


def _clip(in_amp: float, out_amp: float, shape=(24, 32), channels=None, seed=0) -> np.ndarray:
    """Frames = 120 + texture * (in_amp * tone(F_IN)) + out_amp * tone(F_OUT), float."""
    rng = np.random.default_rng(seed)
    texture = rng.uniform(0.5, 1.5, size=shape + ((channels,) if channels else ()))
    t_in = in_amp * _tone(F_IN).reshape((T,) + (1,) * texture.ndim)
    t_out = out_amp * _tone(F_OUT).reshape((T,) + (1,) * texture.ndim)
    return 120 + texture * t_in + t_out


def test_magnify_multiplies_in_band_amplitude_by_one_plus_alpha():
    # The out-of-band tone is 11.5 Hz so that the sum is not periodic over a few frames:
    # the output's rounding to integers then spreads over all bins instead of piling up
    # on the tones' harmonics.
    alpha, f_out = 10.0, 11.5
    frames = (120 + 2.0 * _tone(F_IN) + 6.0 * _tone(f_out))[:, None, None] * np.ones((1, 16, 16))
    out = magnify(frames, FPS, alpha=alpha, low_hz=BAND[0], high_hz=BAND[1], levels=3)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    before, after = frames[:, 8, 8], out[:, 8, 8].astype(float)
    assert _amplitude(before, F_IN) == pytest.approx(2.0) and _amplitude(before, f_out) == pytest.approx(6.0)
    ratio = _amplitude(after, F_IN) / _amplitude(before, F_IN)
    assert abs(ratio - (1 + alpha)) < 0.02 * (1 + alpha)
    assert abs(_amplitude(after, f_out) - 6.0) < 0.1


@pytest.mark.parametrize("channels", [None, 3])
def test_magnify_equals_frame_plus_alpha_times_numpy_bandpass(channels):
    # Without lambda_c every level gets the same alpha, and the pyramid is linear, so the
    # result must be the frames plus alpha times their per-pixel band-passed signal.
    alpha = 5.0
    frames = _clip(3.0, 8.0, channels=channels)
    out = magnify(frames, FPS, alpha=alpha, low_hz=BAND[0], high_hz=BAND[1], levels=4)
    spectrum = np.fft.rfft(frames, axis=0)
    freqs = np.fft.rfftfreq(T, 1 / FPS)
    spectrum[(freqs < BAND[0]) | (freqs > BAND[1])] = 0
    expected = np.clip(np.rint(frames + alpha * np.fft.irfft(spectrum, n=T, axis=0)), 0, 255)
    assert out.shape == frames.shape
    assert np.abs(out.astype(float) - expected).max() <= 1


def test_magnify_leaves_out_of_band_clips_unchanged():
    # Integer frames whose only frequencies are 0, 8 and 16 Hz (periods of 4 and 2
    # frames), so that no rounding puts anything inside the 2-6 Hz band.
    texture = np.random.default_rng(0).integers(1, 4, size=(24, 32))
    t = np.arange(T)
    frames = (
        120 + texture * np.array([0, 10, 0, -10])[t % 4, None, None] + 5 * (-1) ** t[:, None, None]
    ).astype(np.uint8)
    # (Only the ideal filter has a zero stop band; a first-order Butterworth passes a
    # fraction of 8 Hz, which alpha then amplifies, as it should.)
    out = magnify(frames, FPS, alpha=20, low_hz=BAND[0], high_hz=BAND[1], kind="ideal")
    np.testing.assert_array_equal(out, frames)


def test_magnify_clips_to_uint8_range():
    frames = _clip(30.0, 0.0)
    out = magnify(frames, FPS, alpha=50, low_hz=BAND[0], high_hz=BAND[1])
    assert out.min() == 0 and out.max() == 255


def test_lambda_c_attenuates_fine_levels_only():
    alphas = level_alphas((64, 64), 4, alpha=20, lambda_c=40)
    assert alphas == sorted(alphas) and alphas[-1] == 20 and alphas[0] < 20
    diag = np.hypot(64, 64)
    delta = 40 / (8 * 21)
    assert alphas[0] == pytest.approx(max(0, min(20, 2 * (diag / 8 / (8 * delta) - 1))))
    assert level_alphas((64, 64), 4, alpha=20) == [20.0] * 4
    # A fine checkerboard flicker lives in the finest level: with a large lambda_c it is
    # not amplified, without lambda_c it is.
    board = (np.indices((32, 32)).sum(0) % 2 * 2 - 1).astype(float)
    frames = 120 + 3 * _tone(F_IN)[:, None, None] * board
    kept = magnify(frames, FPS, alpha=10, low_hz=BAND[0], high_hz=BAND[1], levels=3, lambda_c=1000)
    boosted = magnify(frames, FPS, alpha=10, low_hz=BAND[0], high_hz=BAND[1], levels=3)
    assert np.abs(kept - np.rint(frames)).max() <= 1
    assert np.abs(boosted.astype(float) - 120).max() > 20


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"low_hz": 2.0, "high_hz": 20.0}, "Nyquist"),
        ({"low_hz": 6.0, "high_hz": 6.0}, "low_hz < high_hz"),
        ({"low_hz": 8.0, "high_hz": 2.0}, "low_hz < high_hz"),
        ({"low_hz": -1.0, "high_hz": 2.0}, "0 <= low_hz"),
        ({"kind": "gaussian"}, "kind"),
    ],
)
def test_bad_bands_raise_clear_errors(kwargs, message):
    args = {"low_hz": BAND[0], "high_hz": BAND[1], **kwargs}
    with pytest.raises(ValueError, match=message):
        temporal_bandpass(_tone(F_IN), FPS, **args)
    with pytest.raises(ValueError, match=message):
        magnify(_clip(1.0, 0.0), FPS, **args)


def test_too_few_frames_raise_clear_errors():
    with pytest.raises(ValueError, match="at least 3"):
        magnify(np.zeros((2, 16, 16), np.uint8), FPS, low_hz=1, high_hz=4)
    with pytest.raises(ValueError, match="no frequency bin"):
        temporal_bandpass(np.zeros(4), 30.0, 1.0, 2.0)


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        magnify(np.zeros((8, 16), np.uint8), FPS)
    with pytest.raises(ValueError, match="too small"):
        laplacian_pyramid(np.zeros((6, 6)), 4)
    with pytest.raises(ValueError, match="fps"):
        temporal_bandpass(np.zeros(8), 0.0, 1.0, 2.0)


def test_butterworth_magnify_gain_matches_the_filter_response():
    from scipy import signal as sps

    n, alpha, low, high = 256, 4.0, 2.0, 8.0
    frames = (120 + 5 * _tone(4.0, n))[:, None, None] * np.ones((1, 16, 16))
    out = magnify(frames, FPS, alpha=alpha, low_hz=low, high_hz=high, levels=2, kind="butterworth", order=2)
    sos = sps.butter(2, [low / (FPS / 2), high / (FPS / 2)], btype="bandpass", output="sos")
    _, response = sps.sosfreqz(sos, worN=[4.0], fs=FPS)
    expected = 5 * (1 + alpha * abs(response[0]) ** 2)  # forwards and backwards: |H|^2, no phase
    middle = slice(64, 192)
    assert _amplitude(out[middle, 8, 8].astype(float), 4.0) == pytest.approx(expected, rel=0.03)


def test_chroma_attenuation_scales_colour_changes_only():
    board = np.ones((16, 16, 3))
    grey = 120 + 3 * _tone(F_IN)[:, None, None, None] * board
    red = 120 + 3 * _tone(F_IN)[:, None, None, None] * (board * [1.0, -0.5, -0.5])
    kwargs = {"alpha": 10, "low_hz": BAND[0], "high_hz": BAND[1], "levels": 2}
    no_chroma = {"chroma_attenuation": 0.0, **kwargs}
    grey_plain, grey_yiq = magnify(grey, FPS, **kwargs), magnify(grey, FPS, **no_chroma)
    assert np.abs(grey_plain.astype(int) - grey_yiq.astype(int)).max() <= 1
    red_yiq = magnify(red, FPS, **no_chroma).astype(float)
    # Only red's luma (0.299 - 0.5 * 0.701 of its swing) is amplified, its chroma is not.
    luma = np.array([0.299, 0.587, 0.114]) @ np.array([1.0, -0.5, -0.5])
    swing = red_yiq[:, 8, 8] - red[:, 8, 8]
    expected = 10 * luma * 3 * _tone(F_IN)
    assert np.abs(swing - expected[:, None]).max() <= 0.6
