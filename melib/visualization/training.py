"""Training curves and per-video score timelines."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_loss_curves", "plot_score_timeline"]


def moving_average(y, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` points (shorter at the start, no lag padding)."""
    y = np.asarray(y, float)
    if window <= 1 or y.size == 0:
        return y
    c = np.concatenate([[0.0], np.cumsum(y)])
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_loss_curves(
    histories: dict,
    key: str = "epoch_loss",
    ax=None,
    title: str = "Training loss",
    logy: bool = False,
    smooth: int = 1,
):
    """One line per run (e.g. per LOSO fold) of ``history[key]``: per epoch, or per step
    with ``key="batch_loss"`` (``smooth`` = moving-average window, useful when a run has
    only a few epochs).

    With many folds the individual lines are drawn thin and their mean thick, so the
    typical behaviour is readable and outlying folds still stand out.
    """
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    curves = {name: moving_average(h[key], smooth) for name, h in histories.items() if len(h.get(key, []))}
    many = len(curves) > 6
    for name, y in curves.items():
        ax.plot(
            np.arange(1, len(y) + 1),
            y,
            lw=0.8 if many else 1.5,
            alpha=0.4 if many else 1.0,
            label=None if many else str(name),
        )
    if curves:
        n = min(len(y) for y in curves.values())
        mean = np.mean([y[:n] for y in curves.values()], axis=0)
        ax.plot(np.arange(1, n + 1), mean, color="black", lw=2.2, label=f"mean of {len(curves)}")
    ax.set_xlabel("epoch" if key == "epoch_loss" else "step")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def _spans(ax, intervals, y0: float, y1: float, color: str, label: str) -> None:
    first = True
    for onset, offset in intervals:
        ax.axvspan(
            onset, offset + 1, ymin=y0, ymax=y1, color=color, alpha=0.35, label=label if first else None, lw=0
        )
        first = False


def plot_score_timeline(
    scores,
    smoothed=None,
    threshold: float | None = None,
    truth=(),
    spotted=(),
    peaks=(),
    ax=None,
    title: str = "",
    fps: float | None = None,
):
    """A video's frame scores, the smoothed curve, the threshold, the ground-truth
    intervals (green band, bottom) and the spotted intervals (red band, top).

    ``truth`` and ``spotted`` are sequences of inclusive (onset, offset) frame pairs.
    With ``fps`` a second axis shows seconds.
    """
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 2.8))
    x = np.arange(len(scores))
    ax.plot(x, scores, color="0.6", lw=0.8, label="score")
    if smoothed is not None:
        ax.plot(x, smoothed, color="tab:blue", lw=1.6, label="smoothed")
    if threshold is not None:
        ax.axhline(threshold, color="tab:orange", ls="--", lw=1.2, label=f"threshold {threshold:.3f}")
    _spans(ax, truth, 0.0, 0.12, "tab:green", "ground truth")
    _spans(ax, spotted, 0.88, 1.0, "tab:red", "spotted")
    peaks = np.asarray(peaks, dtype=int)
    if peaks.size and smoothed is not None:
        ax.plot(peaks, np.asarray(smoothed)[peaks], "v", color="tab:red", ms=5, label="peaks")
    ax.set_xlim(0, max(len(scores), 1))
    ax.set_xlabel("frame (0-based)")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7, ncol=3, framealpha=0.8)
    return finish_timeline(ax, fig, fps)


def finish_timeline(ax, fig, fps: float | None):
    """Shared ending of the frame-axis timelines: a seconds axis on top, tight layout."""
    if fps:
        sec = ax.secondary_xaxis("top", functions=(lambda f: f / fps, lambda s: s * fps))
        sec.set_xlabel("seconds", fontsize=8)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure
