"""Eulerian video magnification, linear variant (Wu et al. 2012, SIGGRAPH).

The Bai proposal (2020, section 4.3) plans EVM as a preprocessing that enhances
low-intensity facial motion before the CNN; it gives no parameters. This module is
Wu et al.'s linear method:

1. every frame is decomposed into a Laplacian pyramid (:func:`laplacian_pyramid`);
2. each pyramid level is band-passed over time, pixel by pixel
   (:func:`temporal_bandpass`);
3. the band-passed signal of level ``l`` is multiplied by ``alpha_l`` (``alpha``, or
   less for fine levels when ``lambda_c`` is given: :func:`level_alphas`);
4. the amplified band is collapsed (:func:`collapse_pyramid`) and added to the frame.

Because collapsing is linear, step 4 adds ``collapse(amplified band)`` to the original
frame: the unamplified signal is never rebuilt, so frames outside the band come back
exactly as they went in (up to rounding to uint8).

Defaults (our choice; the proposal is silent)
---------------------------------------------
* ``alpha=10``: inside the range Wu et al. use for faces and that micro-expression
  magnification studies use (roughly 5-20); larger values amplify noise and produce
  artefacts at 8-bit precision.
* ``low_hz=2``, ``high_hz=12``: micro-expressions last 1/25 to 1/5 s (Yan et al. 2013,
  the proposal's ref. 21). Treating one micro-expression as half a cycle of a
  sinusoid gives 1 / (2 * duration) = 2.5-12.5 Hz; we round to 2-12 Hz, which is also
  below the Nyquist frequency of the slowest ME corpora (CASME II / SMIC-VIS/NIR at
  25-30 fps, Nyquist 12.5-15 Hz). For 100-200 fps corpora (SMIC-HS, CASME II, SAMM)
  the same band applies unchanged.
* ``levels=4``: four Laplacian levels (three band-pass + the low-pass residual), enough
  for 64-320 px face crops (the coarsest level is then 8-40 px).
* ``kind="ideal"``: with 11-70 frames per clip, an FFT mask has no phase lag and no
  start-up transient; Butterworth is offered as in Wu et al.'s code.

Memory
------
:func:`magnify` keeps: the output (uint8, the size of the input), one float32 stack per
pyramid level (together about 4/3 of the video in float32: ``T*H*W*C*4*4/3`` bytes), and
while a level is filtered, its spectrum (``T/2+1`` complex64 planes of that level) and
its filtered copy, which then replaces it (so at most one level is held twice). No other
full-video copies are made; frames are converted, decomposed, collapsed and written one
at a time. A 64-frame 320x320 RGB clip thus needs about 100 MB besides its output.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["laplacian_pyramid", "collapse_pyramid", "temporal_bandpass", "level_alphas", "magnify"]

FILTERS = ("ideal", "butterworth")


def _as_float_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image has shape {image.shape}: expected (H, W) or (H, W, C)")
    return image if image.dtype in (np.float32, np.float64) else image.astype(np.float32)


def laplacian_pyramid(image: np.ndarray, levels: int) -> list:
    """``levels`` arrays, finest first: ``levels - 1`` band-pass images, then the low-pass
    residual (the Gaussian pyramid's last level).

    ``image``: (H, W) or (H, W, C), any dtype (computed in float32, or float64 if given).
    Band ``i`` is ``G_i - pyrUp(G_{i+1})`` with ``G_{i+1} = pyrDown(G_i)`` (OpenCV's 5-tap
    Gaussian), so :func:`collapse_pyramid` rebuilds the image exactly (to float rounding)
    for any size, odd sizes included.
    """
    if int(levels) != levels or levels < 1:
        raise ValueError(f"levels={levels!r}: need an integer >= 1")
    current = _as_float_image(image)
    smallest = min(current.shape[:2])
    if smallest < 2 ** (levels - 1):
        raise ValueError(
            f"image of {current.shape[0]}x{current.shape[1]} px is too small for "
            f"{levels} pyramid levels: use levels <= {int(math.log2(max(smallest, 1))) + 1}"
        )
    pyramid = []
    for _ in range(levels - 1):
        down = cv2.pyrDown(current)
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        pyramid.append(current - up.reshape(current.shape))
        current = down
    pyramid.append(current)
    return pyramid


def collapse_pyramid(pyramid: list) -> np.ndarray:
    """The image whose :func:`laplacian_pyramid` is ``pyramid`` (float, finest size)."""
    if not pyramid:
        raise ValueError("empty pyramid")
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        up = cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0]))
        image = band + up.reshape(band.shape)
    return image


def _check_band(n_frames: int, fps: float, low_hz: float, high_hz: float, kind: str) -> None:
    if kind not in FILTERS:
        raise ValueError(f"kind={kind!r}: use one of {', '.join(FILTERS)}")
    if not fps > 0:
        raise ValueError(f"fps={fps!r}: need a positive frame rate")
    nyquist = fps / 2
    if not 0 <= low_hz < high_hz:
        raise ValueError(f"band low_hz={low_hz!r}, high_hz={high_hz!r}: need 0 <= low_hz < high_hz")
    if high_hz > nyquist:
        raise ValueError(
            f"high_hz={high_hz} is above the Nyquist frequency {nyquist:g} Hz of a {fps:g} fps "
            f"video: lower high_hz to at most {nyquist:g}"
        )
    if n_frames < 3:
        raise ValueError(f"{n_frames} frames: temporal band-pass filtering needs at least 3")


def temporal_bandpass(
    signal: np.ndarray, fps: float, low_hz: float, high_hz: float, kind: str = "ideal", order: int = 1
) -> np.ndarray:
    """Band-pass ``signal`` (T, ...) along axis 0 (time); same shape, float.

    * ``kind="ideal"``: real FFT over time, bins outside ``[low_hz, high_hz]`` set to
      zero, inverse FFT (Wu et al.'s "ideal" filter). Zero phase; the band edges are
      quantised to ``fps / T`` Hz, so at least one bin must fall inside the band.
    * ``kind="butterworth"``: ``scipy.signal.butter(order, [low, high], "bandpass")``
      (a low-pass if ``low_hz == 0``; second-order sections) applied forwards and
      backwards with ``scipy.signal.sosfiltfilt`` (zero phase, so the magnified motion
      is not delayed; the magnitude response is squared). The edge padding is shortened
      to ``T - 1`` frames for short clips. Wu et al.'s code filters causally; we prefer zero phase because
      clips are processed offline.

    float32 input stays float32; everything else is computed in float64.
    """
    signal = np.asarray(signal)
    if signal.ndim < 1:
        raise ValueError("signal must have a time axis (axis 0)")
    n = signal.shape[0]
    _check_band(n, fps, low_hz, high_hz, kind)
    dtype = np.float32 if signal.dtype == np.float32 else np.float64
    if kind == "ideal":
        from scipy import fft

        freqs = fft.rfftfreq(n, d=1.0 / fps)
        keep = (freqs >= low_hz) & (freqs <= high_hz)
        if not keep.any():
            raise ValueError(
                f"no frequency bin of a {n}-frame clip at {fps:g} fps lies in "
                f"[{low_hz:g}, {high_hz:g}] Hz (bin spacing {fps / n:g} Hz): widen the band "
                "or use more frames"
            )
        spectrum = fft.rfft(signal.astype(dtype, copy=False), axis=0)
        spectrum[~keep] = 0
        return fft.irfft(spectrum, n=n, axis=0).astype(dtype, copy=False)
    from scipy import signal as sps

    if int(order) != order or order < 1:
        raise ValueError(f"order={order!r}: need an integer >= 1")
    nyquist = fps / 2
    high = min(high_hz / nyquist, 1 - 1e-6)
    if low_hz > 0:
        sos = sps.butter(int(order), [low_hz / nyquist, high], btype="bandpass", output="sos")
    else:
        sos = sps.butter(int(order), high, btype="lowpass", output="sos")
    padlen = min(3 * (2 * len(sos) + 1), n - 1)
    # scipy filters a (T, P) array far faster than the same data as (T, H, W, C).
    flat = signal.reshape(n, -1).astype(np.float64, copy=False)
    return sps.sosfiltfilt(sos, flat, axis=0, padlen=padlen).astype(dtype).reshape(signal.shape)


def level_alphas(
    shape: tuple, levels: int, alpha: float, lambda_c: float | None = None, exaggeration: float = 2.0
) -> list:
    """The amplification of each pyramid level, finest first.

    Without ``lambda_c`` every level gets ``alpha``. With it, Wu et al.'s bound
    ``(1 + alpha) * delta < lambda / 8`` limits the amplification of fine levels so the
    first-order motion approximation holds: ``delta = lambda_c / (8 * (1 + alpha))`` and
    level ``l`` (0 = finest), of representative spatial wavelength
    ``lambda_l = diag / 2 ** (levels - 1 - l)`` (``diag`` = the frame's diagonal in pixels,
    halving towards fine levels, as in the authors' released code), gets
    ``min(alpha, max(0, exaggeration * (lambda_l / (8 * delta) - 1)))``.
    ``exaggeration=2`` is the authors' code's default (it is not in the paper).
    """
    if lambda_c is None:
        return [float(alpha)] * levels
    if not lambda_c > 0:
        raise ValueError(f"lambda_c={lambda_c!r}: need a positive wavelength in pixels, or None")
    diag = math.hypot(shape[0], shape[1])
    delta = lambda_c / (8.0 * (1.0 + alpha))
    out = []
    for level in range(levels):
        wavelength = diag / 2 ** (levels - 1 - level)
        bound = exaggeration * (wavelength / (8.0 * delta) - 1.0)
        out.append(float(min(alpha, max(0.0, bound))))
    return out


def magnify(
    frames: np.ndarray,
    fps: float,
    alpha: float = 10.0,
    low_hz: float = 2.0,
    high_hz: float = 12.0,
    levels: int = 4,
    kind: str = "ideal",
    order: int = 1,
    lambda_c: float | None = None,
    exaggeration: float = 2.0,
    chroma_attenuation: float = 1.0,
) -> np.ndarray:
    """Linear Eulerian magnification of a clip; uint8 frames of the input's shape.

    ``frames``: (T, H, W) or (T, H, W, C), uint8 (0-255) or float (taken as 0-255).
    ``fps``: the clip's frame rate; ``[low_hz, high_hz]``: the temporal band amplified;
    ``alpha``: the amplification (the band's content is multiplied by ``1 + alpha``);
    ``levels``: Laplacian levels; ``kind`` / ``order``: see :func:`temporal_bandpass`;
    ``lambda_c`` / ``exaggeration``: the spatial-wavelength cutoff, see
    :func:`level_alphas` (None: amplify every level by ``alpha``).
    ``chroma_attenuation``: for 3-channel frames, Wu et al. amplify in YIQ and scale the
    chroma (I, Q) amplification by this factor; 1 (default) treats channels alike and
    skips the colour conversion.
    Output = clip(frame + collapse(alpha_l * bandpass(level_l))), rounded to uint8.
    See the module docstring for the memory used.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(f"frames have shape {frames.shape}: expected (T, H, W) or (T, H, W, C)")
    n = frames.shape[0]
    _check_band(n, fps, low_hz, high_hz, kind)
    if alpha < 0:
        raise ValueError(f"alpha={alpha!r}: need alpha >= 0")
    colour = frames.ndim == 4 and frames.shape[3] == 3 and chroma_attenuation != 1.0
    to_yiq, to_rgb = _yiq_matrices()

    def prepared(t: int) -> np.ndarray:
        frame = frames[t].astype(np.float32)
        return frame @ to_yiq.T if colour else frame

    # One float32 stack per level, filled frame by frame.
    first = laplacian_pyramid(prepared(0), levels)
    stacks = [np.empty((n,) + band.shape, np.float32) for band in first]
    for level, band in enumerate(first):
        stacks[level][0] = band
    for t in range(1, n):
        for level, band in enumerate(laplacian_pyramid(prepared(t), levels)):
            stacks[level][t] = band
    gains = level_alphas(frames.shape[1:3], levels, alpha, lambda_c, exaggeration)
    for level in range(levels):
        filtered = temporal_bandpass(stacks[level], fps, low_hz, high_hz, kind=kind, order=order)
        filtered *= gains[level]
        if colour:
            filtered[..., 1:] *= chroma_attenuation
        stacks[level] = filtered
    out = np.empty(frames.shape, np.uint8)
    for t in range(n):
        delta = collapse_pyramid([stack[t] for stack in stacks])
        if colour:
            delta = delta @ to_rgb.T
        out[t] = np.clip(np.rint(frames[t].astype(np.float32) + delta.reshape(frames.shape[1:])), 0, 255)
    return out


def _yiq_matrices() -> tuple:
    """NTSC RGB->YIQ and its exact inverse (float32)."""
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
    return to_yiq, np.linalg.inv(to_yiq).astype(np.float32)
