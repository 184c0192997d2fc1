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


def frame_difference_energy(frames, k: int, size: int = 48) -> np.ndarray:
    """Mean absolute grey-level change between frame i and frame i + k, per i.

    ``frames`` is an iterable of images (gray or RGB); each is shrunk to ``size`` x
    ``size`` so that a long video costs little memory and time.
    """
    import cv2

    small = []
    for frame in frames:
        image = np.asarray(frame)
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        small.append(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
                     .astype(np.float32))
    if len(small) <= k:
        return np.zeros(0)
    stack = np.stack(small)
    return np.abs(stack[k:] - stack[:-k]).mean(axis=(1, 2))


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


def baseline_predictions(dataset, p: float = 0.55, size: int = 48,
                         max_videos: int | None = None,
                         proposals: str = "peaks") -> tuple[pd.DataFrame, dict]:
    """Spot every video of a long-video ``melib.data.datasets.Dataset``.

    ``proposals="peaks"`` is SOFTNet's peak detection; ``"dense"`` keeps every frame
    above the threshold (:func:`dense_proposals`). Returns (predictions ``video, onset,
    offset, type, score``, {type: k}). The energy is computed once per distinct k.
    """
    if proposals not in ("peaks", "dense"):
        raise ValueError(f"proposals must be 'peaks' or 'dense', got {proposals!r}")
    k_by_type = {kind: softnet_k(dataset.annotations, kind) for kind in EXPRESSION_TYPES}
    k_by_type = {kind: k for kind, k in k_by_type.items() if k is not None}
    videos = list(dataset.videos["video"])[:max_videos]
    spotted = []
    for video in videos:
        frames = list(dataset.iter_frames(video, gray=True))
        energy_by_k = {}
        for kind, k in k_by_type.items():
            if k not in energy_by_k:
                energy_by_k[k] = frame_difference_energy(frames, k, size)
            energy = energy_by_k[k]
            if energy.size == 0:
                continue
            if proposals == "peaks":
                found = spot_intervals(energy, k, p=p, n_frames=len(frames))
            else:
                found = dense_proposals(energy, k, p, len(frames))
            found.insert(0, "video", video)
            found["type"] = kind
            spotted.append(found)
    columns = ["video", "onset", "offset", "type", "score"]
    if not spotted:
        return pd.DataFrame(columns=columns), k_by_type
    return pd.concat(spotted, ignore_index=True)[columns], k_by_type
