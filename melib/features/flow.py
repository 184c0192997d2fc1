"""Dense optical flow between two frames, and optical strain derived from it.

TV-L1 (OpenCV contrib's ``DualTVL1OpticalFlow``) is what SOFTNet and most spotting
papers use; Farneback is offered as a much cheaper alternative for quick runs. Every
setting is a field of a frozen dataclass so that it enters the feature-cache key: two
runs with different flow settings can never read each other's cached features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "TVL1Settings",
    "FarnebackSettings",
    "FlowSettings",
    "make_flow",
    "optical_flow",
    "optical_strain",
]


@dataclass(frozen=True)
class TVL1Settings:
    """OpenCV's ``DualTVL1OpticalFlow_create`` arguments; the defaults are OpenCV's.

    SOFTNet's code uses these defaults. :meth:`preset` gives cheaper variants for
    budget-capped runs (a notebook that uses one says so beside its results):

    - ``light``: 3 scales, 3 warps, 10 inner / 4 outer iterations (~2x faster; the
      42x42 inputs correlate at 0.997 with the default's on the synthetic corpus);
    - ``fast``: 3 scales, 1 warp, 10 inner / 1 outer iteration (~13x faster at 128 px,
      ~20x at 64 px; the 42x42 inputs of a 64 px crop correlate at ~0.88 with the
      default's at 128 px). Expression flow is a few pixels at most, so few pyramid
      levels and warps lose little.
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5

    @classmethod
    def light(cls) -> TVL1Settings:
        return cls(nscales=3, warps=3, inner_iterations=10, outer_iterations=4)

    @classmethod
    def fast(cls) -> TVL1Settings:
        return cls(nscales=3, warps=1, inner_iterations=10, outer_iterations=1)

    @classmethod
    def preset(cls, name: str) -> TVL1Settings:
        presets = {"default": cls, "light": cls.light, "fast": cls.fast}
        if name not in presets:
            raise ValueError(f"TV-L1 preset {name!r}: use one of {', '.join(presets)}")
        return presets[name]()


@dataclass(frozen=True)
class FarnebackSettings:
    """``cv2.calcOpticalFlowFarneback`` arguments (OpenCV's tutorial values)."""

    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2


@dataclass(frozen=True)
class FlowSettings:
    """Which flow method to run and with what parameters."""

    method: Literal["tvl1", "farneback"] = "tvl1"
    tvl1: TVL1Settings = TVL1Settings()
    farneback: FarnebackSettings = FarnebackSettings()

    def params(self) -> dict:
        """Only the active method's parameters (so switching method changes the hash,
        while editing the inactive method's settings does not)."""
        active = self.tvl1 if self.method == "tvl1" else self.farneback
        return {"method": self.method, **dataclasses.asdict(active)}


def make_flow(settings: FlowSettings | None = None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Return ``flow(prev, next) -> (H, W, 2) float32`` with (u, v) in the last axis.

    The TV-L1 solver object is built once and reused for every pair: building it per
    pair (as SOFTNet's code does) costs allocation on every call for no benefit.
    """
    import cv2

    settings = settings or FlowSettings()
    if settings.method == "tvl1":
        s = settings.tvl1
        solver = cv2.optflow.DualTVL1OpticalFlow_create(
            tau=s.tau,
            lambda_=s.lambda_,
            theta=s.theta,
            nscales=s.nscales,
            warps=s.warps,
            epsilon=s.epsilon,
            innnerIterations=s.inner_iterations,  # sic: OpenCV's keyword has three n's
            outerIterations=s.outer_iterations,
            scaleStep=s.scale_step,
            gamma=s.gamma,
            medianFiltering=s.median_filtering,
            useInitialFlow=False,
        )

        def flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return solver.calc(_gray_u8(prev), _gray_u8(nxt), None)

        return flow
    if settings.method == "farneback":
        f = settings.farneback

        def flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(
                _gray_u8(prev),
                _gray_u8(nxt),
                None,
                f.pyr_scale,
                f.levels,
                f.winsize,
                f.iterations,
                f.poly_n,
                f.poly_sigma,
                0,
            )

        return flow
    raise ValueError(f"FlowSettings.method={settings.method!r}: use 'tvl1' or 'farneback'")


def optical_flow(prev: np.ndarray, nxt: np.ndarray, settings: FlowSettings | None = None) -> np.ndarray:
    """One-off flow between two frames; use :func:`make_flow` inside loops."""
    return make_flow(settings)(prev, nxt)


def optical_strain(
    u: np.ndarray, v: np.ndarray, scheme: Literal["central", "forward"] = "central"
) -> np.ndarray:
    """Optical strain magnitude ``sqrt(u_x² + v_y² + ½ (u_y + v_x)²)``.

    This is the paper's Eq. 2 with the two equal shear terms merged
    (eps_xy = eps_yx = ½(u_y + v_x), so eps_xy² + eps_yx² = ½(u_y + v_x)²).
    ``central`` uses second-order central differences (one-sided at the border);
    ``forward`` uses a one-pixel forward difference with the last row/column repeated,
    closer to SOFTNet's code. Both are exact for linear flow fields.
    """
    u = np.asarray(u, dtype=np.float32)
    v = np.asarray(v, dtype=np.float32)
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f"optical_strain needs two equal 2-D arrays, got {u.shape} and {v.shape}")
    if scheme == "central":
        u_y, u_x = np.gradient(u)
        v_y, v_x = np.gradient(v)
    elif scheme == "forward":
        u_x, u_y, v_x, v_y = (_forward(a, ax) for a, ax in ((u, 1), (u, 0), (v, 1), (v, 0)))
    else:
        raise ValueError(f"optical_strain scheme={scheme!r}: use 'central' or 'forward'")
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def _forward(a: np.ndarray, axis: int) -> np.ndarray:
    d = np.diff(a, axis=axis)
    last = np.take(d, [-1], axis=axis)
    return np.concatenate([d, last], axis=axis)


def _gray_u8(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return img
