"""Is the synthetic corpus neither trivial nor hopeless? A deliberately naive spotter.

The detector takes the mean Farneback optical-flow magnitude inside the face box (at half
resolution) between frames ``i`` and ``i + k``, thresholds it at
``median + threshold_mad * MAD`` per video and turns runs above the threshold into
intervals. It does this twice, SOFTNet-style, with one frame gap per type: k = 0.2 s for
micro (keeping runs of at most 0.5 s) and k = 0.4 s for macro (keeping longer runs). Each
type is scored with the MEGC rule (one-to-one matches with IoU >= 0.5). It knows nothing about
faces, so blinks and head movements fool it; a useful corpus shows macro F1 well above
chance, micro clearly lower, and many false positives on the distractors.

It reads the truth from the synthetic manifest, so it only runs on a melib corpus. It
imports only :mod:`melib.data.synth_manifest`; :mod:`melib.data.synth` re-exports
:func:`naive_flow_detector_f1` (one-way: ``synth`` -> ``synth_check`` -> ``synth_manifest``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import cv2
import numpy as np

from melib.data.synth_manifest import load_manifest

SPOTTING_DATASETS = ("casme_sq", "samm_lv")


def _frame_key(name: str) -> int:
    digits = re.findall(r"\d+", Path(name).stem)
    return int(digits[-1]) if digits else -1


def sorted_frames(folder: Path) -> list[Path]:
    """Frames in numeric order (``img999`` before ``img1000``)."""
    files = [p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".bmp", ".png")]
    return sorted(files, key=lambda p: _frame_key(p.name))


def flow_signal(folder: Path, face_box, step: int, stride: int = 1, scale: float = 0.5) -> np.ndarray:
    """Mean flow magnitude in ``face_box`` between frame i and i + step, for every i.

    ``stride`` > 1 computes every stride-th i and fills the gaps by repetition, to keep
    200 fps videos cheap.
    """
    x0, y0, x1, y1 = face_box
    frames = sorted_frames(folder)
    n = len(frames)
    cache: dict[int, np.ndarray] = {}

    def gray(i):
        if i not in cache:
            img = cv2.imread(str(frames[i]), cv2.IMREAD_GRAYSCALE)[y0 : y1 + 1, x0 : x1 + 1]
            # half resolution: 4x cheaper, and still several px for a macro-expression
            cache[i] = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            for old in [k for k in cache if k < i - step - stride]:
                del cache[old]
        return cache[i]

    signal = np.zeros(max(0, n - step))
    for i in range(0, n - step, stride):
        flow = cv2.calcOpticalFlowFarneback(gray(i), gray(i + step), None, 0.5, 3, 15, 3, 5, 1.2, 0)
        signal[i : i + stride] = np.sqrt((flow**2).sum(-1)).mean() / scale
    return signal


def intervals_from_signal(signal: np.ndarray, step: int, threshold_mad: float) -> tuple[list, float]:
    """Runs of the smoothed signal above median + threshold_mad * MAD, in frame indices.

    An expression moves twice (rise to the apex, fall back), so runs closer than
    ``step`` frames are merged into one interval.
    """
    if len(signal) == 0:
        return [], 0.0
    width = max(1, step // 2) * 2 + 1
    smooth = np.convolve(signal, np.ones(width) / width, mode="same")
    med = float(np.median(smooth))
    mad = float(np.median(np.abs(smooth - med))) * 1.4826 + 1e-6
    thr = med + threshold_mad * mad
    above = np.append(smooth > thr, False)
    runs, start = [], None
    for i, flag in enumerate(above):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append([start, i - 1])
            start = None
    merged = []
    for run in runs:
        if merged and run[0] - merged[-1][1] <= step:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    # the pair (i, i + step) spans the motion: centre the interval on it
    shift = step // 2
    out = [(a + shift, b + shift) for a, b in merged if b - a >= 1]
    return out, thr


def _iou(a, b) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


def match_count(pred: list, truth: list, iou: float = 0.5) -> int:
    """One-to-one matches with IoU >= iou, best pairs first."""
    pairs = sorted(
        ((_iou(p, t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)), reverse=True
    )
    used_p, used_t, hits = set(), set(), 0
    for score, i, j in pairs:
        if score < iou:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            hits += 1
    return hits


def _f1(tp: int, n_pred: int, n_true: int) -> float:
    return 2 * tp / (n_pred + n_true) if (n_pred + n_true) else 0.0


def naive_flow_detector_f1(
    root=None,
    datasets=SPOTTING_DATASETS,
    threshold_mad: float = 3.0,
    step_seconds: dict | None = None,
    max_videos: int | None = None,
    seed: int = 0,
    chance_draws: int = 20,
    progress: bool = True,
):
    """F1 per dataset and type of the naive flow-threshold spotter on a synthetic corpus.

    ``root`` is a corpus root (:func:`melib.data.synth.naive_flow_detector_f1` also
    takes ``None``, the cached ``book`` corpus). Returns a
    ``pandas.DataFrame`` with one row per (dataset, type): true and predicted counts,
    TP, precision, recall, F1, ``chance_f1`` (the same predicted intervals dropped at
    random places in their video, averaged over ``chance_draws``) and
    ``fp_on_distractors`` (share of false positives overlapping a blink or head movement).
    """
    import pandas as pd

    if root is None:
        raise ValueError(
            "naive_flow_detector_f1: root=None: pass a synthetic corpus root, or "
            "call melib.data.synth.naive_flow_detector_f1(), which uses the cached "
            "book corpus"
        )
    root = Path(root)
    step_seconds = {"micro": 0.2, "macro": 0.4, **(step_seconds or {})}
    rng = np.random.default_rng(seed)
    rows = []
    for key in datasets:
        manifest = load_manifest(root, key)
        fps = manifest["fps"]
        stride = max(1, fps // 50)
        micro_max = int(0.5 * fps)
        videos = manifest["videos"][:max_videos] if max_videos else manifest["videos"]
        stats = {
            t: {"n_true": 0, "n_pred": 0, "tp": 0, "chance_tp": 0.0, "fp": 0, "fp_distractor": 0}
            for t in ("micro", "macro")
        }
        iterator = videos
        if progress:
            # plain tqdm on stderr: tqdm.auto warns about ipywidgets inside a notebook
            from tqdm import tqdm

            iterator = tqdm(
                videos, desc=f"naive detector {key}", unit="video", file=sys.stderr, mininterval=1.0
            )
        for video in iterator:
            folder = root / key / video["folder"]
            n = video["n_frames"]
            dist = [(b["onset"], b["offset"]) for b in video["distractors"]["blinks"]]
            dist += [(m["onset"], m["offset"]) for m in video["distractors"]["head_movements"]]
            for kind in ("micro", "macro"):
                truth = [
                    (e["index"]["onset"], e["index"]["offset"]) for e in video["events"] if e["type"] == kind
                ]
                step = max(1, int(round(step_seconds[kind] * fps)))
                signal = flow_signal(folder, video["face_box"], step, stride)
                runs, _ = intervals_from_signal(signal, step, threshold_mad)
                pred = [r for r in runs if (r[1] - r[0] + 1 <= micro_max) == (kind == "micro")]
                tp = match_count(pred, truth)
                s = stats[kind]
                s["n_true"] += len(truth)
                s["n_pred"] += len(pred)
                s["tp"] += tp
                for p in pred:
                    if any(_iou(p, t) >= 0.5 for t in truth):
                        continue
                    s["fp"] += 1
                    if any(min(p[1], d[1]) >= max(p[0], d[0]) for d in dist):
                        s["fp_distractor"] += 1
                for _ in range(chance_draws):
                    shuffled = []
                    for p in pred:
                        length = p[1] - p[0]
                        start = int(rng.integers(0, max(1, n - length)))
                        shuffled.append((start, start + length))
                    s["chance_tp"] += match_count(shuffled, truth) / chance_draws
        for kind, s in stats.items():
            rows.append(
                {
                    "dataset": key,
                    "type": kind,
                    "n_true": s["n_true"],
                    "n_pred": s["n_pred"],
                    "tp": s["tp"],
                    "precision": s["tp"] / s["n_pred"] if s["n_pred"] else 0.0,
                    "recall": s["tp"] / s["n_true"] if s["n_true"] else 0.0,
                    "f1": _f1(s["tp"], s["n_pred"], s["n_true"]),
                    "chance_f1": _f1(s["chance_tp"], s["n_pred"], s["n_true"]),
                    "fp_on_distractors": s["fp_distractor"] / s["fp"] if s["fp"] else 0.0,
                }
            )
    return pd.DataFrame(rows)
