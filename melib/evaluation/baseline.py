"""A deterministic **teaching baseline** spotter: thresholded frame-difference energy.

It is no paper's method. It exists so that the metrics notebook has real interval
predictions, with real confidences, to score under the different evaluation choices,
without training anything. Per video and expression type:

1. energy_i = mean |frame_{i+k} - frame_i| over a downsampled grayscale frame, for
   i in [0, n_frames - k) (the same frame pairing as SOFTNet's optical flow);
2. SOFTNet's post-processing from :mod:`melib.evaluation.postprocess`: smoothing over
   +-k, threshold mean + p (max - mean), peaks at least k apart, intervals
   [peak - k, peak + k] whose confidence is the smoothed peak energy.

``k`` follows SOFTNet: ``int((N + 1) / 2)`` with N the mean ``offset - onset`` of that
type in the ground truth (so the baseline knows typical lengths, as SOFTNet does).
Blinks, head motion and flicker in the data all raise the energy, which is why its
precision is low: that is the point of a baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from melib.evaluation.postprocess import (
    peaks_to_intervals,
    smooth_scores,
    spot_intervals,
    spotting_threshold,
)
from melib.evaluation.spotting import EXPRESSION_TYPES


def softnet_k(annotations: pd.DataFrame, kind: str) -> int | None:
    """SOFTNet's half window k = int((N + 1) / 2) for one type; None without samples."""
    rows = annotations[annotations["type"] == kind]
    if rows.empty:
        return None
    mean_length = float((rows["offset"] - rows["onset"]).mean())
    return max(1, int((mean_length + 1) / 2))


def shrink_frames(frames, size: int = 48) -> np.ndarray:
    """Stack of ``size`` x ``size`` float32 grey frames (a long video stays small)."""
    import cv2

    small = []
    for frame in frames:
        image = np.asarray(frame)
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        small.append(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32))
    return np.stack(small) if small else np.zeros((0, size, size), np.float32)


def energy_from_stack(stack: np.ndarray, k: int) -> np.ndarray:
    """Mean absolute grey-level change between frame i and frame i + k, per i."""
    if len(stack) <= k:
        return np.zeros(0)
    return np.abs(stack[k:] - stack[:-k]).mean(axis=(1, 2))


def frame_difference_energy(frames, k: int, size: int = 48) -> np.ndarray:
    """:func:`energy_from_stack` of the shrunk ``frames`` (gray or RGB images)."""
    return energy_from_stack(shrink_frames(frames, size), k)


def dense_proposals(energy, k: int, p: float, n_frames: int) -> pd.DataFrame:
    """Every frame above the threshold becomes ``[i - k, i + k]``: no peak suppression.

    Sliding-window spotters without a merging step produce such heavily overlapping
    proposals; the notebook uses them to show what double counting does.
    """
    smoothed = smooth_scores(energy, k)
    above = np.flatnonzero(smoothed >= spotting_threshold(smoothed, p))
    spans = peaks_to_intervals(above, k, n_frames)
    spans["score"] = smoothed[above]
    return spans


def baseline_energies(dataset, size: int = 48, max_videos: int | None = None) -> tuple[dict, dict]:
    """Energies of every video of a long-video ``melib.data.datasets.Dataset``.

    Returns ({video: (n_frames, {k: energy})}, {type: k}); each video's frames are read
    once, whatever the number of distinct k.
    """
    k_by_type = {kind: softnet_k(dataset.annotations, kind) for kind in EXPRESSION_TYPES}
    k_by_type = {kind: k for kind, k in k_by_type.items() if k is not None}
    energies = {}
    for video in list(dataset.videos["video"])[:max_videos]:
        stack = shrink_frames(dataset.iter_frames(video, gray=True), size)
        energies[video] = (len(stack), {k: energy_from_stack(stack, k) for k in set(k_by_type.values())})
    return energies, k_by_type


def baseline_predictions(
    dataset=None,
    p: float = 0.55,
    proposals: str = "peaks",
    energies: tuple[dict, dict] | None = None,
    **energy_options,
) -> tuple[pd.DataFrame, dict]:
    """Spot every video of a long-video dataset with the baseline.

    ``proposals="peaks"`` is SOFTNet's peak detection; ``"dense"`` keeps every frame
    above the threshold (:func:`dense_proposals`). Pass ``energies`` (the result of
    :func:`baseline_energies`) to score several settings without re-reading frames.
    Returns (predictions ``video, onset, offset, type, score, peak``, {type: k}).
    """
    if proposals not in ("peaks", "dense"):
        raise ValueError(f"proposals must be 'peaks' or 'dense', got {proposals!r}")
    if energies is None:
        energies = baseline_energies(dataset, **energy_options)
    per_video, k_by_type = energies
    spotted = []
    for video, (n_frames, energy_by_k) in per_video.items():
        for kind, k in k_by_type.items():
            energy = energy_by_k[k]
            if energy.size == 0:
                continue
            if proposals == "peaks":
                found = spot_intervals(energy, k, p=p, n_frames=n_frames)
            else:
                found = dense_proposals(energy, k, p, n_frames)
            found.insert(0, "video", video)
            found["type"] = kind
            spotted.append(found)
    columns = ["video", "onset", "offset", "type", "score", "peak"]
    if not spotted:
        return pd.DataFrame(columns=columns), k_by_type
    return pd.concat(spotted, ignore_index=True)[columns], k_by_type
