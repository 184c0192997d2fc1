"""``melib synth``: a synthetic micro-expression corpus in the real datasets' layouts.

The licence-gated datasets cannot ship with melib, so the notebooks train on this corpus
by default. It is written in the exact folder layouts and workbooks of the real releases
(the book's data chapter lists them) so that the loaders in :mod:`melib.data.datasets` read a
synthetic copy and a licensed copy through one code path.

How a video is made
-------------------
* Identities (:mod:`melib.data.synth_faces`): the public-domain astronaut portrait
  (``--faces`` adds user portraits) with a landmark-driven shape morph, recolouring and
  an optional mirror. SAMM / SAMM-LV share identities per subject number, as do SMIC-HS /
  SMIC-E, because the real datasets filmed the same people.
* Expressions: an AU combination (:mod:`melib.data.facs`), each AU a dense field built
  once per subject, weighted by an onset→apex→offset raised-cosine profile. The label
  follows the AUs (CASME II style).
* Distractors, never labelled: blinks (~17/min, appearance blend + lid motion), slow
  head drift with jitter, occasional quick head movements, illumination flicker, sensor
  noise and JPEG compression. All are recorded in the manifest.
* Frames are ``cv2.remap`` of the identity image with the summed field plus the rigid
  motion, on float32 maps.

Frame size (all presets): 170x170 px with a jaw ~120 px wide, so dlib's face box is
about 128 px, the crop size the papers resize to anyway (SOFTNet 128x128). Larger frames
would only add flow/IO cost.

Manifest
--------
``<out>/<key>/synth_manifest.json`` records, for every video, its folder, frame count,
first frame number, face box, the distractors, and every expression with its AUs, AU
intensities, peak displacement in px, and frames as the truth (``index``: melib's 0-based
position in the sorted frame list; ``file``: the file's own numbering, 1-based or
absolute) and as written in the workbook (``workbook``), plus ``quirks`` naming any
deliberate real-data quirk on that row:

* ``offset_zero`` (CAS(ME)² macro, workbook offset 0; loaders use the apex),
* ``apex_zero`` (CAS(ME)², apex 0), ``apex_slash`` (CASME II ``/``), ``apex_minus_one``
  (SAMM / SAMM-LV ``-1``): the rendered apex is then exactly
  ``(onset + offset) // 2`` in file numbering, so the documented fix recovers the truth,
* ``non_integer`` (SAMM-LV onset/offset written as ``true + 0.2`` or ``+ 0.4``:
  truncation and rounding both give the truth),
* ``onset_zero`` (SAMM-LV macro, onset 0, the "extremely long" rows SOFTNet drops).

SMIC-E long layout (the real frame layout is not documented; this is ours):
``SMIC-E_raw image/HS_long/SMIC-HS-E/s<subject>/<Filename>/image<absolute:06d>.jpg``
next to ``SMIC-E_raw image/HS_long/SMIC-HS-E_annotation.xlsx``; FirstF is the first
file's number.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import re
import shutil
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from melib.data import facs, synth_check
from melib.data.synth_faces import (
    Identity,
    astronaut_portraits,
    build_identity,
    draw_identity_params,
    load_user_portraits,
)
from melib.data.synth_manifest import MANIFEST_NAME, is_synthetic
from melib.data.synth_manifest import (
    load_manifest as load_manifest,  # re-exported: melib.data.synth.load_manifest
)

GENERATOR_VERSION = "4"
DATASET_KEYS = ("casme_sq", "samm_lv", "smic_e_long", "casme2", "samm", "smic_hs")
FPS = {"casme_sq": 30, "samm_lv": 200, "smic_e_long": 100, "casme2": 200, "samm": 200, "smic_hs": 100}
CANVAS = (170, 170)
FACE_WIDTH = 120.0
JPEG_QUALITY = 92
FIXED_TIME = datetime.datetime(2020, 1, 1, 0, 0, 0)

# Durations (offset - onset, seconds): CAS(ME)² means 12.58 / 35.44 frames at 30 fps;
# SAMM-LV from SOFTNet's k = 37 / 174 (N = 2k - 1 frames at 200 fps).
DURATION_S = {
    "casme_sq": {"micro": (0.42, 0.06, 0.24, 0.5), "macro": (1.18, 0.35, 0.6, 2.6)},
    "samm_lv": {"micro": (0.37, 0.06, 0.22, 0.5), "macro": (1.73, 0.45, 0.8, 3.0)},
    "smic_e_long": {"micro": (0.36, 0.06, 0.2, 0.5)},
    "casme2": {"micro": (0.33, 0.06, 0.2, 0.5)},
    "samm": {"micro": (0.35, 0.06, 0.2, 0.5)},
    "smic_hs": {"micro": (0.34, 0.06, 0.2, 0.5)},
}
MICRO_SHARE = {"casme_sq": 0.16, "samm_lv": 0.32}
INTENSITY = {"micro": (0.12, 0.35), "macro": (1.1, 1.8)}

# subjects ---------------------------------------------------------------------------
CAS_PARTICIPANTS = [15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 40]
CAS_VIDEOS = [
    ("0101", "disgust1", "disgustingteeth"),
    ("0102", "disgust2", "eatingworms"),
    ("0401", "anger1", "girlcrashing"),
    ("0402", "anger2", "beatingpregnantwoman"),
    ("0502", "happy1", "funnyerrors"),
    ("0503", "happy2", "unnyfarting"),
    ("0505", "happy3", "funnyinnovations"),
    ("0507", "happy4", "climbingthewall"),
    ("0508", "happy5", "funnydunkey"),
]
SAMM_SUBJECTS = [f"{n:03d}" for n in range(6, 38)]
SMIC_SUBJECTS = [1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 18, 19, 20]
SMIC_SHORT = {"negative": "ne", "positive": "po", "surprise": "sur"}

# presets ----------------------------------------------------------------------------


def _preset(*sizes) -> dict:
    """One size per dataset, in ``DATASET_KEYS`` order."""
    return dict(zip(DATASET_KEYS, sizes, strict=True))


# Long videos: (subjects, videos per subject, frames per video, mean events per video).
# Clip sets: (subjects, clips per subject). ``book`` keeps casme_sq + samm_lv at ~19k
# frames so that TV-L1 over every frame fits the book profile on 2 cores.
PRESETS = {
    "tiny": _preset((2, 1, 240, 3), (2, 1, 900, 2), (2, 1, 160, 1), (2, 3), (2, 2), (2, 3)),
    "book": _preset((3, 2, 1200, 7), (3, 1, 4000, 5), (6, 2, 200, 1), (6, 8), (6, 6), (6, 6)),
    # real subject and video counts (CAS(ME)² 22/98, SAMM-LV 32/147, SMIC-E 16/162,
    # CASME II 26/255, SAMM 32/159, SMIC-HS 16/164) at the real mean video lengths
    "full": _preset(
        (22, 4.45, 2600, 3.6), (32, 4.6, 6000, 3.4), (16, 10.1, 400, 1), (26, 9.8), (32, 5.0), (16, 10.25)
    ),
}


def _stable_int(*parts) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


def _rng(seed: int, *parts) -> np.random.Generator:
    """Independent stream per named thing, so a subset run writes identical files."""
    return np.random.default_rng([int(seed), _stable_int(*parts)])


# ================================================================= events and timelines


@dataclass
class Event:
    type: str  # "micro" / "macro"
    onset: int  # 0-based, inclusive
    apex: int
    offset: int
    label: str  # the dataset's own emotion wording
    combo: facs.Combo
    scale: float  # intensity multiplier of the combination
    quirks: list[str] = field(default_factory=list)
    workbook: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def au_intensity(self) -> dict[str, float]:
        return {f"{side}{au}": round(strength * self.scale, 4) for au, side, strength in self.combo}


@dataclass
class VideoPlan:
    dataset: str
    subject: str  # subject id as the dataset writes it
    family_key: str  # identity key (shared across SAMM/SAMM-LV etc.)
    rel_dir: str  # frame folder relative to the dataset folder
    frame_names: list[str]
    first_number: int  # file number of frame index 0
    fps: int
    events: list[Event]
    blinks: list[dict]
    head_moves: list[dict]
    rigid: np.ndarray  # (T, 3): tx, ty, roll degrees
    gain: np.ndarray  # (T,)
    noise_sigma: float
    image_format: str  # "jpg" / "bmp"
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.frame_names)


def _raised_cosine(n: int, onset: int, apex: int, offset: int) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    rise = (t >= onset) & (t <= apex)
    out[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - onset) / max(apex - onset, 1))
    fall = (t > apex) & (t <= offset)
    out[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - apex) / max(offset - apex, 1))
    return out


def _duration_frames(rng, dataset: str, kind: str, fps: int) -> int:
    mean, sd, lo, hi = DURATION_S[dataset][kind]
    return int(round(np.clip(rng.normal(mean, sd), lo, hi) * fps))


def _pick_combo(rng, table: dict[str, list[facs.Combo]], label: str | None = None):
    if label is None:
        labels = sorted(table)
        label = labels[int(rng.integers(len(labels)))]
    options = table[label]
    return label, options[int(rng.integers(len(options)))]


def _make_event(rng, kind: str, onset: int, length: int, table, label=None) -> Event:
    apex = onset + int(round(length * rng.uniform(0.35, 0.6)))
    label, combo = _pick_combo(rng, table, label)
    scale = float(rng.uniform(*INTENSITY[kind]))
    return Event(kind, onset, apex, onset + length, label, combo, scale)


def _schedule(rng, n_frames: int, fps: int, dataset: str, n_events: int, table) -> list[Event]:
    """Non-overlapping events with random gaps, at least 0.3 s apart."""
    kinds = ["micro" if rng.random() < MICRO_SHARE.get(dataset, 1.0) else "macro" for _ in range(n_events)]
    lengths = [_duration_frames(rng, dataset, k, fps) for k in kinds]
    min_gap = int(0.3 * fps)
    margin = int(0.3 * fps)
    while kinds and sum(lengths) + min_gap * (len(kinds) + 1) + 2 * margin > n_frames:
        kinds.pop()
        lengths.pop()
    free = n_frames - 2 * margin - sum(lengths) - min_gap * (len(kinds) + 1)
    gaps = rng.dirichlet(np.ones(len(kinds) + 1)) * free
    events, cursor = [], margin
    for kind, length, gap in zip(kinds, lengths, gaps):
        cursor += min_gap + int(gap)
        events.append(_make_event(rng, kind, cursor, length, table))
        cursor += length + 1
    return events


def _blinks(rng, n_frames: int, fps: int, rate_per_min: float, events: list[Event]):
    """Blinks as a renewal process, skipping labelled expressions so labels stay clean."""
    busy = np.zeros(n_frames + 1, bool)
    for ev in events:
        busy[max(0, ev.onset - 2) : ev.offset + 3] = True
    blinks, t = [], float(rng.exponential(60 / rate_per_min)) * 0.5
    while True:
        start = int(t * fps)
        length = max(3, int(round(rng.uniform(0.15, 0.3) * fps)))
        if start + length >= n_frames:
            break
        if busy[start : start + length + 1].any():
            t += length / fps
            continue
        closure = float(rng.uniform(0.75, 1.0))
        blinks.append(
            {
                "onset": start,
                "apex": start + length // 2,
                "offset": start + length,
                "closure": round(closure, 4),
            }
        )
        t += length / fps + max(0.6, float(rng.exponential(60 / rate_per_min)))
    return blinks


def _head_moves(rng, n_frames: int, fps: int, events: list[Event], per_minute: float):
    """Quick nods / shifts, kept away from labelled events so they are pure distractors."""
    busy = np.zeros(n_frames, bool)
    for ev in events:
        busy[max(0, ev.onset - fps // 4) : ev.offset + fps // 4 + 1] = True
    count = rng.poisson(per_minute * n_frames / fps / 60.0)
    moves = []
    for _ in range(int(count)):
        length = int(rng.uniform(0.4, 1.2) * fps)
        if length + 2 >= n_frames:
            break
        for _attempt in range(20):
            start = int(rng.integers(0, n_frames - length - 1))
            if not busy[start : start + length + 1].any():
                break
        else:
            continue
        busy[start : start + length + 1] = True
        angle = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(2.0, 5.0)
        moves.append(
            {
                "onset": start,
                "offset": start + length,
                "kind": "nod" if rng.random() < 0.6 else "shift",
                "dx": round(float(amp * np.cos(angle)), 4),
                "dy": round(float(amp * np.sin(angle)), 4),
                "roll_deg": round(float(rng.uniform(-2.0, 2.0)), 4),
            }
        )
    return sorted(moves, key=lambda m: m["onset"])


def _rigid_track(rng, n: int, fps: int, moves: list[dict]) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    track = np.zeros((n, 3))
    # the same drift speed at any length: 1.5 px over 40 s, next to nothing in a 0.3 s clip
    reach = min(1.0, n / fps / 40.0)
    # the walk lives on a 10 Hz grid (1.5 s smoothing), then is interpolated to frames:
    # smoothing at 200 fps directly costs seconds per video for the full preset
    coarse_n = int(np.ceil(n / fps * 10)) + 2
    coarse_t = np.arange(coarse_n) * fps / 10.0
    for col, amp in enumerate((1.5 * reach, 1.5 * reach, 0.6 * reach)):
        coarse = gaussian_filter1d(np.cumsum(rng.normal(size=coarse_n)), sigma=15.0, mode="nearest")
        walk = np.interp(np.arange(n), coarse_t, coarse)
        walk -= walk[0]
        peak = np.abs(walk).max()
        if peak > 0:
            walk *= amp * rng.uniform(0.4, 1.0) / peak
        track[:, col] = walk
    track[:, :2] += rng.normal(0, 0.04, (n, 2))
    for m in moves:
        length = m["offset"] - m["onset"]
        t = np.arange(length + 1) / max(length, 1)
        shape = np.sin(np.pi * t) ** 2 if m["kind"] == "nod" else 0.5 - 0.5 * np.cos(np.pi * t)
        seg = slice(m["onset"], m["offset"] + 1)
        delta = np.outer(shape, [m["dx"], m["dy"], m["roll_deg"]])
        track[seg] += delta
        if m["kind"] == "shift":
            track[m["offset"] + 1 :] += delta[-1]
    return track


def _gain_track(rng, n: int, fps: int) -> tuple[np.ndarray, dict]:
    t = np.arange(n) / fps
    freq = float(rng.uniform(0.5, 3.0))
    amp = float(rng.uniform(0.003, 0.01))
    slow = float(rng.uniform(0.005, 0.02))
    gain = (
        1
        + amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        + slow * np.sin(2 * np.pi * t / max(t[-1] if n > 1 else 1, 1) + rng.uniform(0, 6.3))
    )
    return gain, {
        "flicker_hz": round(freq, 4),
        "flicker_amplitude": round(amp, 5),
        "slow_amplitude": round(slow, 5),
    }


def _finish_plan(rng, plan_args: dict, n_frames: int, events: list[Event], long_video: bool):
    fps = plan_args["fps"]
    blinks = _blinks(rng, n_frames, fps, 17.0 if long_video else 6.0, events)
    moves = _head_moves(rng, n_frames, fps, events, per_minute=4.0) if long_video else []
    rigid = _rigid_track(rng, n_frames, fps, moves)
    gain, flicker = _gain_track(rng, n_frames, fps)
    noise = float(rng.uniform(1.2, 2.2))
    plan_args = dict(plan_args, meta=dict(plan_args.get("meta", {}), flicker=flicker))
    return VideoPlan(
        events=events, blinks=blinks, head_moves=moves, rigid=rigid, gain=gain, noise_sigma=noise, **plan_args
    )


# ================================================================= dataset planners
# Each planner returns (plans, workbook_writer) for its dataset; frames come later.


def _count(seed: int, mean: float, *parts) -> int:
    """A per-subject count averaging ``mean`` (so ``full`` totals match the real ones)."""
    whole = int(mean)
    if mean == whole:
        return whole
    return whole + int(_rng(seed, "count", *parts).random() < mean - whole)


def _plan_casme_sq(seed, spec):
    n_subj, n_vid, n_frames, n_events = spec
    plans = []
    for s_idx, participant in enumerate(CAS_PARTICIPANTS[:n_subj]):
        rng = _rng(seed, "casme_sq", participant)
        order = rng.permutation(len(CAS_VIDEOS))[: _count(seed, n_vid, "casme_sq", participant)]
        for v in sorted(order):
            code, rule, title = CAS_VIDEOS[v]
            vrng = _rng(seed, "casme_sq", participant, code)
            folder = f"{participant}_{code}{title}"
            count = max(1, int(vrng.poisson(n_events)))
            events = _schedule(vrng, n_frames, 30, "casme_sq", count, facs.CASME_SQ_COMBOS)
            for k, ev in enumerate(events, 1):
                ev.extra = {"name": f"{rule}_{k}", "self_report": _self_report(rule, ev.label)}
            plans.append(
                _finish_plan(
                    vrng,
                    dict(
                        dataset="casme_sq",
                        subject=f"s{participant}",
                        family_key=f"casme_sq:{participant}",
                        rel_dir=f"rawpic/s{participant}/{folder}",
                        frame_names=[f"img{i:03d}.jpg" for i in range(1, n_frames + 1)],
                        first_number=1,
                        fps=30,
                        image_format="jpg",
                        meta={
                            "participant": participant,
                            "subject_number": s_idx + 1,
                            "code": code,
                            "rule": rule,
                        },
                    ),
                    n_frames,
                    events,
                    True,
                )
            )
    return plans


def _self_report(rule: str, label: str) -> str:
    stimulus = {"disgust": "disgust", "anger": "anger", "happy": "happiness"}
    base = stimulus[re.sub(r"\d", "", rule)]
    return {"surprise": "surprise", "positive": "happiness"}.get(label, base)


def _plan_samm_lv(seed, spec):
    n_subj, n_vid, n_frames, n_events = spec
    plans = []
    for subject in SAMM_SUBJECTS[:n_subj]:
        for inducement in range(1, _count(seed, n_vid, "samm_lv", subject) + 1):
            vrng = _rng(seed, "samm_lv", subject, inducement)
            count = max(1, int(vrng.poisson(n_events)))
            events = _schedule(vrng, n_frames, 200, "samm_lv", count, facs.SAMM_COMBOS)
            video = f"{subject}_{inducement}"
            for k, ev in enumerate(events, 1):
                ev.extra = {"name": f"{video}_{k}"}
            plans.append(
                _finish_plan(
                    vrng,
                    dict(
                        dataset="samm_lv",
                        subject=subject,
                        family_key=f"samm:{subject}",
                        rel_dir=f"SAMM_longvideos/{video}",
                        frame_names=[f"{video}_{i:04d}.jpg" for i in range(1, n_frames + 1)],
                        first_number=1,
                        fps=200,
                        image_format="jpg",
                        meta={"inducement": inducement},
                    ),
                    n_frames,
                    events,
                    True,
                )
            )
    return plans


def _plan_smic_e_long(seed, spec):
    n_subj, n_vid, n_frames, _ = spec
    plans = []
    for subject in SMIC_SUBJECTS[:n_subj]:
        counters = {}
        for v in range(_count(seed, n_vid, "smic_e_long", subject)):
            vrng = _rng(seed, "smic_e_long", subject, v)
            label = sorted(facs.SMIC_COMBOS)[int(vrng.integers(3))]
            counters[label] = counters.get(label, 0) + 1
            name = f"s{subject}_{SMIC_SHORT[label]}_{counters[label]:02d}"
            # every long video holds one micro-expression; a few hold a second one
            n_events = 2 if (vrng.random() < 0.03 and n_frames >= 300) else 1
            events = _schedule(vrng, n_frames, 100, "smic_e_long", n_events, {label: facs.SMIC_COMBOS[label]})
            first = int(vrng.integers(1000, 60000))
            plans.append(
                _finish_plan(
                    vrng,
                    dict(
                        dataset="smic_e_long",
                        subject=str(subject),
                        family_key=f"smic:{subject}",
                        rel_dir=f"SMIC-E_raw image/HS_long/SMIC-HS-E/s{subject}/{name}",
                        frame_names=[f"image{first + i:06d}.jpg" for i in range(n_frames)],
                        first_number=first,
                        fps=100,
                        image_format="jpg",
                        meta={"filename": name},
                    ),
                    n_frames,
                    events,
                    True,
                )
            )
    return plans


def _plan_clip(rng, dataset: str, fps: int, table, label=None):
    length = _duration_frames(rng, dataset, "micro", fps)
    return length, _make_event(rng, "micro", 0, length, table, label)


def _clip_plan(
    vrng,
    ev: Event,
    length: int,
    dataset: str,
    subject: str,
    family_key: str,
    rel_dir: str,
    file_name,
    first: int,
    meta: dict,
) -> VideoPlan:
    """A recognition clip: frames ``first`` .. ``first + length``, one event spanning them."""
    return _finish_plan(
        vrng,
        dict(
            dataset=dataset,
            subject=subject,
            family_key=family_key,
            rel_dir=rel_dir,
            frame_names=[file_name(first + i) for i in range(length + 1)],
            first_number=first,
            fps=FPS[dataset],
            image_format=file_name(0).rsplit(".", 1)[1],
            meta=meta,
        ),
        length + 1,
        [ev],
        False,
    )


def _plan_casme2(seed, spec):
    n_subj, n_clips = spec
    plans = []
    for subject in range(1, n_subj + 1):
        rng = _rng(seed, "casme2", subject)
        episodes = sorted(
            rng.choice(np.arange(1, 20), size=_count(seed, n_clips, "casme2", subject), replace=False)
        )
        labels = sorted(facs.CASME2_COMBOS)
        for c, ep in enumerate(episodes):
            vrng = _rng(seed, "casme2", subject, int(ep))
            # cycle the classes so every subject shows most of them
            label = labels[(c + subject) % len(labels)]
            length, ev = _plan_clip(vrng, "casme2", 200, facs.CASME2_COMBOS, label)
            name = f"EP{ep:02d}_{int(vrng.integers(1, 20)):02d}" + ("f" if vrng.random() < 0.2 else "")
            first = int(vrng.integers(20, 4000))
            plans.append(
                _clip_plan(
                    vrng,
                    ev,
                    length,
                    "casme2",
                    str(subject),
                    f"casme2:{subject}",
                    f"CASME2_RAW_selected/sub{subject:02d}/{name}",
                    lambda n: f"img{n}.jpg",
                    first,
                    {"filename": name},
                )
            )
    return plans


def _plan_samm(seed, spec):
    n_subj, n_clips = spec
    plans = []
    labels = sorted(facs.SAMM_COMBOS)
    for s_idx, subject in enumerate(SAMM_SUBJECTS[:n_subj]):
        for c in range(_count(seed, n_clips, "samm", subject)):
            vrng = _rng(seed, "samm", subject, c)
            label = labels[(c + s_idx) % len(labels)]
            length, ev = _plan_clip(vrng, "samm", 200, facs.SAMM_COMBOS, label)
            inducement = 1 + c % 7
            name = f"{subject}_{inducement}_{c // 7 + 1 + int(vrng.integers(0, 3))}"
            name = _unique(name, [p.meta["filename"] for p in plans])
            first = int(vrng.integers(100, 9000))
            plans.append(
                _clip_plan(
                    vrng,
                    ev,
                    length,
                    "samm",
                    subject,
                    f"samm:{subject}",
                    f"SAMM/{subject}/{name}",
                    lambda n, s=subject: f"{s}_{n:05d}.jpg",
                    first,
                    {"filename": name, "inducement": inducement},
                )
            )
    return plans


def _unique(name: str, taken: list[str]) -> str:
    base, k = name.rsplit("_", 1)
    k = int(k)
    while f"{base}_{k}" in taken:
        k += 1
    return f"{base}_{k}"


def _plan_smic_hs(seed, spec):
    n_subj, n_clips = spec
    plans = []
    labels = sorted(facs.SMIC_COMBOS)
    for subject in SMIC_SUBJECTS[:n_subj]:
        counters = {}
        for c in range(_count(seed, n_clips, "smic_hs", subject)):
            vrng = _rng(seed, "smic_hs", subject, c)
            label = labels[(c + subject) % 3]
            counters[label] = counters.get(label, 0) + 1
            name = f"s{subject}_{SMIC_SHORT[label]}_{counters[label]:02d}"
            length, ev = _plan_clip(vrng, "smic_hs", 100, facs.SMIC_COMBOS, label)
            first = int(vrng.integers(1000, 60000))
            plans.append(
                _clip_plan(
                    vrng,
                    ev,
                    length,
                    "smic_hs",
                    str(subject),
                    f"smic:{subject}",
                    f"SMIC/HS/s{subject}/micro/{label}/{name}",
                    lambda n: f"image{n:06d}.bmp",
                    first,
                    {"filename": name},
                )
            )
    return plans


PLANNERS = {
    "casme_sq": _plan_casme_sq,
    "samm_lv": _plan_samm_lv,
    "smic_e_long": _plan_smic_e_long,
    "casme2": _plan_casme2,
    "samm": _plan_samm,
    "smic_hs": _plan_smic_hs,
}


# ================================================================= quirks


def _apply_quirks(seed: int, dataset: str, plans: list[VideoPlan], preset: str) -> None:
    """Mark a few rows with the real workbooks' quirks (see the module docstring)."""
    rng = _rng(seed, dataset, "quirks")
    events = [ev for p in plans for ev in p.events]
    macros = [ev for ev in events if ev.type == "macro"]
    micros = [ev for ev in events if ev.type == "micro"]

    def centre_apex(ev: Event, plan_first: int):
        # the documented fix is (onset + offset) / 2 in file numbering, floored
        on_f, off_f = ev.onset + plan_first, ev.offset + plan_first
        ev.apex = (on_f + off_f) // 2 - plan_first

    first_of = {id(ev): p.first_number for p in plans for ev in p.events}
    if dataset == "casme_sq" and macros:
        n_off0 = max(1, int(round(0.15 * len(macros))))
        for i in rng.choice(len(macros), size=min(n_off0, len(macros)), replace=False):
            macros[int(i)].quirks.append("offset_zero")
        rest = [ev for ev in macros if not ev.quirks]
        if len(rest) >= 2:
            ev = rest[int(rng.integers(len(rest)))]
            ev.quirks.append("apex_zero")
            centre_apex(ev, first_of[id(ev)])
    elif dataset == "samm_lv":
        for ev in events:
            if rng.random() < 0.28:
                ev.quirks.append("non_integer")
        pool = [ev for ev in events if "non_integer" not in ev.quirks]
        for i in rng.choice(len(pool), size=min(len(pool), max(1, len(pool) // 12)), replace=False):
            pool[int(i)].quirks.append("apex_minus_one")
            centre_apex(pool[int(i)], first_of[id(pool[int(i)])])
        if preset != "tiny":
            rest = [ev for ev in macros if not ev.quirks]
            if rest:
                rest[int(rng.integers(len(rest)))].quirks.append("onset_zero")
    elif dataset in ("casme2", "samm") and micros:
        quirk = "apex_slash" if dataset == "casme2" else "apex_minus_one"
        for i in rng.choice(len(micros), size=max(1, len(micros) // 10), replace=False):
            micros[int(i)].quirks.append(quirk)
            centre_apex(micros[int(i)], first_of[id(micros[int(i)])])


# ================================================================= rendering


class _Progress:
    def __init__(self, total: int, show: bool):
        self.bar = None
        if show:
            # plain tqdm on stderr: tqdm.auto warns about ipywidgets inside a notebook
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", desc="melib synth", mininterval=0.5, file=sys.stderr)

    def update(self, n=1, desc=None):
        if self.bar is not None:
            if desc:
                self.bar.set_description(desc, refresh=False)
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _au_tracks(plan: VideoPlan) -> dict:
    n = plan.n_frames
    tracks: dict = {}
    for ev in plan.events:
        profile = _raised_cosine(n, ev.onset, ev.apex, ev.offset) * ev.scale
        for au, side, strength in ev.combo:
            key = au if not side else (au, side)
            tracks[key] = tracks.get(key, 0) + profile * strength
    blink = np.zeros(n)
    for b in plan.blinks:
        blink = np.maximum(blink, _raised_cosine(n, b["onset"], b["apex"], b["offset"]) * b["closure"])
    return tracks, blink


def render_video(plan: VideoPlan, ident: Identity, out_dir: Path, seed: int, progress=None):
    """Write every frame of ``plan`` into ``out_dir`` (which must exist)."""
    tracks, blink = _au_tracks(plan)
    keys = list(tracks)
    weights = np.stack([tracks[k] for k in keys], 1) if keys else np.zeros((plan.n_frames, 0))
    fields = [ident.fields[k] for k in keys]
    h, w = ident.image.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = ident.landmarks[27:36].mean(0)
    dx0, dy0 = gx - cx, gy - cy
    noise_rng = _rng(seed, plan.dataset, plan.rel_dir, "noise")
    # Drawing fresh Gaussian noise per frame costs as much as the JPEG encoding; a small
    # bank read at a random offset per frame is just as unstructured to a flow estimator.
    pad = 24
    bank = noise_rng.standard_normal((8, h + pad, w + pad, 3), dtype=np.float32)
    bank *= np.float32(plan.noise_sigma)
    picks = noise_rng.integers(0, [8, pad, pad], size=(plan.n_frames, 3))
    y0, y1, x0, x1 = ident.eye_box
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if plan.image_format == "jpg" else []
    for t, name in enumerate(plan.frame_names):
        src = ident.image
        if blink[t] > 1e-3:
            src = src.copy()
            alpha = ident.eye_mask[y0:y1, x0:x1] * np.float32(blink[t])
            region = src[y0:y1, x0:x1]
            region += (ident.closed_eyes[y0:y1, x0:x1] - region) * alpha
        disp = ident.fields[45] * np.float32(blink[t] * 0.8) if blink[t] > 1e-3 else None
        for k, fld in enumerate(fields):
            wgt = weights[t, k]
            if wgt > 1e-4:
                disp = fld * np.float32(wgt) if disp is None else disp + fld * np.float32(wgt)
        tx, ty, roll = (float(v) for v in plan.rigid[t])
        c, s = np.float32(np.cos(np.deg2rad(roll))), np.float32(np.sin(np.deg2rad(roll)))
        map_x = np.float32(cx + tx) + c * dx0 - s * dy0
        map_y = np.float32(cy + ty) + s * dx0 + c * dy0
        if disp is not None:
            map_x += disp[..., 0]
            map_y += disp[..., 1]
        frame = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        frame *= np.float32(plan.gain[t])
        k, oy, ox = picks[t]
        frame += bank[k, oy : oy + h, ox : ox + w]
        np.rint(frame, out=frame)
        np.clip(frame, 0, 255, out=frame)
        cv2.imwrite(str(out_dir / name), frame.astype(np.uint8), params)
        if progress is not None:
            progress.update(1)


def _event_peak_px(ident: Identity, ev: Event) -> float:
    disp = 0
    for au, side, strength in ev.combo:
        disp = disp + ident.fields[au if not side else (au, side)] * strength * ev.scale
    return float(np.sqrt((np.asarray(disp) ** 2).sum(-1)).max())


# ================================================================= workbooks


def _save_workbook(wb, path: Path) -> None:
    """Save with fixed document times and zip timestamps: same input, same bytes."""
    wb.properties.creator = "melib synth"
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.lastModifiedBy = "melib synth"
    buffer = io.BytesIO()
    wb.save(buffer)
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                # openpyxl stamps "modified" with the wall clock at save time
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(<)", rb"\g<1>" + stamp.encode() + rb"\g<2>", data
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, data)


def _aus_cell(combo, letters=None):
    text = facs.format_aus(combo, letters)
    # the real workbooks store a lone bilateral AU as a number
    return int(text) if text.isdigit() else text


def _workbook(title: str, rows=()):
    """A new workbook and its first sheet, named ``title`` and starting with ``rows``."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    return wb, ws


def _write_casme_sq(plans, root: Path):
    wb, code_ws = _workbook("CASFEcode_final")
    rule1 = wb.create_sheet("naming rule1")
    rule2 = wb.create_sheet("naming rule2")
    for plan in plans:
        for ev in plan.events:
            on, ap, off = ev.onset + 1, ev.apex + 1, ev.offset + 1
            if "offset_zero" in ev.quirks:
                off = 0
            if "apex_zero" in ev.quirks:
                ap = 0
            kind = f"{ev.type}-expression"
            row = [
                plan.meta["subject_number"],
                ev.extra["name"],
                on,
                ap,
                off,
                _aus_cell(ev.combo),
                ev.label,
                kind,
                ev.extra["self_report"],
            ]
            code_ws.append(row)
            rule1.append([plan.meta["participant"], plan.subject, plan.meta["subject_number"]])
            ev.workbook = {"onset": on, "apex": ap, "offset": off, "aus": row[5]}
    for code, rule, _ in CAS_VIDEOS:
        rule2.append([code, rule])
    _save_workbook(wb, root / "CAS(ME)^2code_final.xlsx")
    return "CAS(ME)^2code_final.xlsx"


SAMM_LV_LEGEND = [
    ["SAMM Long Videos Dataset - FACS Codes"],
    [None],
    ["Symbol Key:"],
    ['"/" = or'],
    [None],
    ["AU Help:"],
    [
        '"L2 or R2" = Unilateral AU 2 on left side of face / right side of face',
        None,
        None,
        None,
        None,
        "NOTE: Subjects with Apex Frame not annotated were labelled as -1.",
    ],
    ['"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side'],
    [None],
]


def _samm_frame_value(ev: Event, which: str, truth: int):
    if "non_integer" in ev.quirks and which in ("onset", "offset"):
        # fractional part below .5: truncating and rounding both give the truth
        frac = 0.4 if (truth % 2) else 0.2
        return round(truth + frac, 1)
    return truth


def _write_samm_lv(plans, root: Path):
    wb, ws = _workbook("FACS_Movement_Only", SAMM_LV_LEGEND)
    ws.merge_cells("F7:I7")
    ws.append(
        [
            "Subject",
            "Filename",
            "Inducement Code",
            "Onset",
            "Apex",
            "Offset",
            "Duration",
            "Type",
            "Action Units",
            "Notes",
        ]
    )
    for plan in plans:
        for ev in plan.events:
            r = ws.max_row + 1
            on = _samm_frame_value(ev, "onset", ev.onset + 1)
            off = _samm_frame_value(ev, "offset", ev.offset + 1)
            ap = -1 if "apex_minus_one" in ev.quirks else ev.apex + 1
            if "onset_zero" in ev.quirks:
                on = 0
            letters = (
                {au: facs.intensity_letter(s * ev.scale) for au, _, s in ev.combo}
                if ev.type == "macro"
                else None
            )
            aus = _aus_cell(ev.combo, letters)
            kind = "Macro" if ev.type == "macro" else "Micro - 1/2"
            note = "Extremely long" if "onset_zero" in ev.quirks else None
            ws.append(
                [
                    plan.subject,
                    ev.extra["name"],
                    plan.meta["inducement"],
                    on,
                    ap,
                    off,
                    f"=SUM(F{r}-D{r})+1",
                    kind,
                    aus,
                    note,
                ]
            )
            ev.workbook = {"onset": on, "apex": ap, "offset": off, "aus": aus}
    _save_workbook(wb, root / "SAMM_LongVideos_V2_Release.xlsx")
    return "SAMM_LongVideos_V2_Release.xlsx"


def _write_smic_e_long(plans, root: Path):
    wb, ws = _workbook("Sheet1", [["Subject", "Filename", "OnsetF", "OffsetF", "Emotion", "FirstF"]])
    n_rows = 0
    for plan in plans:
        for ev in plan.events:
            on, off = plan.first_number + ev.onset, plan.first_number + ev.offset
            ws.append([int(plan.subject), plan.meta["filename"], on, off, ev.label, plan.first_number])
            ev.workbook = {"onset": on, "offset": off, "first": plan.first_number}
            n_rows += 1
    # the real sheet continues with free text below the samples
    ws.append([None])
    ws.append([f"{n_rows} micro-expression samples in {len(plans)} videos"])
    ws.append(["OnsetF / OffsetF are absolute frame numbers; subtract FirstF for the position in the video"])
    rel = "SMIC-E_raw image/HS_long/SMIC-HS-E_annotation.xlsx"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    _save_workbook(wb, root / rel)
    return rel


def _clip_events(plans, apex_quirk: str, missing_apex):
    """(plan, event, onset, apex, offset, AUs cell) of each clip's one event, in file
    numbers; ``missing_apex`` stands for the apex where the event has ``apex_quirk``. The
    values are noted in the event's ``workbook``.
    """
    for plan in plans:
        ev = plan.events[0]
        on, off = plan.first_number + ev.onset, plan.first_number + ev.offset
        ap = missing_apex if apex_quirk in ev.quirks else plan.first_number + ev.apex
        aus = _aus_cell(ev.combo)
        ev.workbook = {"onset": on, "apex": ap, "offset": off, "aus": aus}
        yield plan, ev, on, ap, off, aus


def _write_casme2(plans, root: Path):
    wb, ws = _workbook("Sheet1")
    # an unnamed extra column, as in some releases: loaders must go by header name
    ws.append(
        [
            "Subject",
            "Filename",
            None,
            "OnsetFrame",
            "ApexFrame",
            "OffsetFrame",
            "Action Units",
            "Estimated Emotion",
        ]
    )
    for plan, ev, on, ap, off, aus in _clip_events(plans, "apex_slash", "/"):
        ws.append([int(plan.subject), plan.meta["filename"], None, on, ap, off, aus, ev.label])
    _save_workbook(wb, root / "CASME2-coding-20140508.xlsx")
    return "CASME2-coding-20140508.xlsx"


SAMM_LEGEND = [
    ["SAMM Micro-Movement Dataset - FACS Codes"],
    [None],
    ["Symbol Key:"],
    ['"/" = or'],
    ['"?" = uncertain'],
    [None],
    ["AU Help:"],
    ['"L2 or R2" = Unilateral AU 2 on left side of face / right side of face'],
    ['"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side'],
    ["Apex Frame -1 = not annotated"],
    [None],
    [None],
]


def _write_samm(plans, root: Path):
    wb, ws = _workbook("MICRO_ONLY", SAMM_LEGEND)
    ws.append(
        [
            "Subject",
            "Filename",
            "Inducement Code",
            "Onset Frame",
            "Apex Frame",
            "Offset Frame",
            "Duration",
            "Type",
            "Action Units",
            "Notes",
            "Estimated Emotion",
            "Objective Classes",
        ]
    )
    for plan, ev, on, ap, off, aus in _clip_events(plans, "apex_minus_one", -1):
        ws.append(
            [
                plan.subject,
                plan.meta["filename"],
                plan.meta["inducement"],
                on,
                ap,
                off,
                off - on + 1,
                "Micro - 1/2",
                aus,
                None,
                ev.label,
                facs.SAMM_OBJECTIVE_CLASS[ev.label],
            ]
        )
    _save_workbook(wb, root / "SAMM_Micro_FACS_Codes_v2.xlsx")
    return "SAMM_Micro_FACS_Codes_v2.xlsx"


def _write_smic_hs(plans, root: Path):
    for plan in plans:
        ev = plan.events[0]
        ev.workbook = {"folder_label": ev.label}
    return None


WRITERS = {
    "casme_sq": _write_casme_sq,
    "samm_lv": _write_samm_lv,
    "smic_e_long": _write_smic_e_long,
    "casme2": _write_casme2,
    "samm": _write_samm,
    "smic_hs": _write_smic_hs,
}


# ================================================================= manifest


def _event_record(plan: VideoPlan, ev: Event, ident: Identity) -> dict:
    first = plan.first_number
    return {
        "name": ev.extra.get("name", plan.meta.get("filename", plan.rel_dir.rsplit("/", 1)[-1])),
        "subject": plan.subject,
        "video": plan.rel_dir.rsplit("/", 1)[-1],
        "type": ev.type,
        "emotion": ev.label,
        "aus": facs.format_aus(ev.combo),
        "au_intensity": ev.au_intensity(),
        "peak_displacement_px": round(_event_peak_px(ident, ev), 4),
        "index": {"onset": ev.onset, "apex": ev.apex, "offset": ev.offset},
        "file": {"onset": ev.onset + first, "apex": ev.apex + first, "offset": ev.offset + first},
        "workbook": ev.workbook,
        "quirks": list(ev.quirks),
    }


def _video_record(plan: VideoPlan, ident: Identity) -> dict:
    return {
        "subject": plan.subject,
        "video": plan.rel_dir.rsplit("/", 1)[-1],
        "folder": plan.rel_dir,
        "n_frames": plan.n_frames,
        "first_frame_number": plan.first_number,
        "first_file": plan.frame_names[0],
        "last_file": plan.frame_names[-1],
        "fps": plan.fps,
        "identity": plan.family_key,
        "face_box": ident.face_box,
        "events": [_event_record(plan, ev, ident) for ev in plan.events],
        "distractors": {
            "blinks": plan.blinks,
            "head_movements": plan.head_moves,
            "drift_max_px": round(float(np.abs(plan.rigid[:, :2]).max()), 4),
            "roll_max_deg": round(float(np.abs(plan.rigid[:, 2]).max()), 4),
            "noise_sigma": round(plan.noise_sigma, 4),
            "jpeg_quality": JPEG_QUALITY if plan.image_format == "jpg" else None,
            **plan.meta.get("flicker", {}),
        },
    }


def _round_floats(obj):
    if isinstance(obj, float):
        return round(obj, 5)
    if isinstance(obj, dict):
        return {k: _round_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v) for v in obj]
    if isinstance(obj, np.generic):
        return _round_floats(obj.item())
    return obj


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(_round_floats(obj), indent=1, sort_keys=True) + "\n")


# ================================================================= public API


def _identities(plans, seed, portraits, cache):
    for plan in plans:
        if plan.family_key not in cache:
            rng = _rng(seed, "identity", plan.family_key)
            params = draw_identity_params(rng)
            index = _stable_int(plan.family_key) % len(portraits)
            portrait = portraits[(index + int(rng.integers(2))) % len(portraits)]
            cache[plan.family_key] = build_identity(plan.family_key, portrait, params, CANVAS, FACE_WIDTH)
    return cache


def plan_corpus(preset: str, seed: int = 0, datasets=None) -> dict[str, list[VideoPlan]]:
    """Every video's timeline (events, distractors), without rendering anything."""
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is not one of {', '.join(PRESETS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"--seed {seed!r}: the seed must be a whole number >= 0, e.g. --seed 0")
    keys = list(datasets or DATASET_KEYS)
    unknown = [k for k in keys if k not in DATASET_KEYS]
    if unknown:
        raise ValueError(f"--datasets: unknown {', '.join(unknown)}; choose from {', '.join(DATASET_KEYS)}")
    out = {}
    for key in DATASET_KEYS:
        if key in keys:
            plans = PLANNERS[key](seed, PRESETS[preset][key])
            _apply_quirks(seed, key, plans, preset)
            out[key] = plans
    return out


LOCK_NAME = ".melib-synth.lock"


def _check_replaceable(folder: Path, key: str) -> None:
    """Refuse to touch ``out/<key>`` unless melib synth wrote it (or it is an empty folder)."""
    from melib.data.datasets import DatasetError

    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise DatasetError(
            f"{folder} exists and is not a folder that melib synth wrote; it "
            "will not be replaced. Fix: pass another --out, or move it away."
        )
    if not folder.is_dir() or is_synthetic(folder, key) or not any(folder.iterdir()):
        return
    raise DatasetError(
        f"{folder} exists and is not a melib synthetic corpus (no melib "
        f"{MANIFEST_NAME} for {key}), so melib synth will not replace it. Fix: "
        "pass another --out (a new folder), or move that folder away."
    )


_FRAME_SUFFIXES = {".jpg", ".jpeg", ".bmp", ".png"}


def _foreign_files(folder: Path) -> list[str]:
    """Paths under a synthetic dataset ``folder`` that melib synth did not write (a user's
    notes or results), relative to it; replacing the folder would delete them."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        videos = {folder / video["folder"] for video in manifest.get("videos", [])}
        own = {folder / MANIFEST_NAME}
        if manifest.get("workbook"):
            own.add(folder / manifest["workbook"])
    except (OSError, ValueError, TypeError, KeyError):
        videos, own = set(), {folder / MANIFEST_NAME}
    foreign = []
    for parent, dirs, files in os.walk(folder):
        here = Path(parent)
        names = files + [d for d in dirs if (here / d).is_symlink()]
        for name in sorted(names):
            path = here / name
            frame = here in videos and path.suffix.lower() in _FRAME_SUFFIXES and not path.is_symlink()
            if path not in own and not frame:
                foreign.append(str(path.relative_to(folder)))
    return sorted(foreign)


def _keep_foreign_files(folder: Path, key: str) -> None:
    """Move the files melib synth did not write out of a synthetic ``folder`` that is
    about to be replaced, into ``<key>.kept-files/`` beside it, and say so: replacing
    the corpus must not delete a user's notes or results saved inside it."""
    foreign = _foreign_files(folder)
    if not foreign:
        return
    kept = folder.with_name(f"{key}.kept-files")
    for rel in foreign:
        target = kept / rel
        number = 1
        while target.exists() or target.is_symlink():
            number += 1
            target = (kept / rel).with_name(f"{Path(rel).stem}-{number}{Path(rel).suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).rename(target)
    print(
        f"melib synth: {folder} held {len(foreign)} file(s) melib synth did not write "
        f"(e.g. {foreign[0]}); they were moved to {kept} before the corpus was replaced",
        file=sys.stderr,
        flush=True,
    )


def _clean_partials(out: Path) -> None:
    """Remove what a killed run left in ``out``: melib's own temporary dataset folders."""
    for key in DATASET_KEYS:
        for name in (f".{key}.partial", f".{key}.old"):
            leftover = out / name
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


def _replace(final: Path, tmp: Path, key: str) -> None:
    """Move the finished ``tmp`` onto ``final``, which holds at most an older synthetic copy."""
    _check_replaceable(final, key)
    old = None
    if final.is_dir():
        if any(final.iterdir()):
            _keep_foreign_files(final, key)
            old = final.with_name(f".{key}.old")
            final.rename(old)
        else:
            final.rmdir()
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def generate(preset: str, out, seed: int = 0, faces=None, datasets=None, progress: bool = True) -> Path:
    """Write the corpus under ``out/<key>/``; each dataset folder appears atomically.

    Same ``preset``, ``seed``, ``faces`` and datasets give byte-identical files. An
    existing ``out/<key>`` is replaced only when it is a synthetic corpus (it holds
    melib's ``synth_manifest.json``); anything else, such as a licensed dataset, is
    refused with a :class:`~melib.data.datasets.DatasetError` and left untouched. Two
    runs into one ``out`` take turns (a lock in ``out``); a killed run's partial folders
    are removed by the next.
    """
    from melib.data.datasets import DatasetError
    from melib.runtime import file_lock

    out = Path(out)
    corpus = plan_corpus(preset, seed, datasets)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file, not a folder. Fix: pass a folder path.")
    for key in corpus:  # before any work: never spend minutes, then refuse
        _check_replaceable(out / key, key)
    portraits = list(astronaut_portraits())
    if faces:
        portraits += load_user_portraits(faces)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / LOCK_NAME).touch()
    except OSError as exc:
        raise DatasetError(
            f"--out {out}: cannot write there ({exc.strerror or exc}). Fix: pass a folder you can write to."
        ) from None
    waiting = f"melib synth: another run is writing into {out}; waiting for it to finish"
    with file_lock(out / LOCK_NAME, waiting=waiting, remove=True):
        _clean_partials(out)
        _generate_locked(preset, out, seed, corpus, portraits, progress)
    return out


def _generate_locked(preset, out: Path, seed: int, corpus, portraits, progress) -> None:
    total = sum(p.n_frames for plans in corpus.values() for p in plans)
    bar = _Progress(total, progress)
    identities: dict[str, Identity] = {}
    try:
        for key, plans in corpus.items():
            _identities(plans, seed, portraits, identities)
            tmp = out / f".{key}.partial"
            tmp.mkdir()
            for plan in plans:
                folder = tmp / plan.rel_dir
                folder.mkdir(parents=True, exist_ok=True)
                bar.update(0, desc=f"melib synth {key}")
                render_video(plan, identities[plan.family_key], folder, seed, bar)
            workbook = WRITERS[key](plans, tmp)
            manifest = {
                "dataset": key,
                "preset": preset,
                "seed": seed,
                "fps": FPS[key],
                "generator": f"melib.data.synth v{GENERATOR_VERSION}",
                "frame_size": list(CANVAS),
                "workbook": workbook,
                "frame_convention": "index: 0-based position in the sorted frame list, "
                "inclusive; file: the files' own numbering",
                "user_faces": sorted(p.name for p in portraits if not p.name.startswith("astronaut")),
                "videos": [_video_record(p, identities[p.family_key]) for p in plans],
            }
            _write_json(tmp / MANIFEST_NAME, manifest)
            _replace(out / key, tmp, key)
    finally:
        bar.close()
        _clean_partials(out)
    _write_json(
        out / "synth_corpus.json",
        {
            "preset": preset,
            "seed": seed,
            "generator": f"melib.data.synth v{GENERATOR_VERSION}",
            "datasets": sorted(p.name for p in out.iterdir() if p.is_dir() and (p / MANIFEST_NAME).exists()),
        },
    )


def ensure_corpus(preset: str = "book", seed: int = 0, progress: bool = True) -> Path:
    """The cached corpus for ``preset``/``seed``, generating it once (atomically).

    A second process (a parallel notebook) waits on the lock instead of generating twice;
    the holder first removes the temporary folders a killed run left behind.
    """
    from melib.runtime import atomic_dir, cache_dir, file_lock, remove_stale_temps

    parent = cache_dir("synth")
    target = parent / f"{preset}-seed{seed}"
    done = target / "synth_corpus.json"
    if _complete(done) and _corpus_damage(target) is None:
        return target
    with file_lock(parent / f".{preset}-seed{seed}.lock"):
        remove_stale_temps(target)
        if _complete(done):
            damage = _corpus_damage(target)
            if damage is None:
                return target
            print(
                f"melib: the cached synthetic corpus {target} is damaged ({damage}); regenerating it",
                file=sys.stderr,
                flush=True,
            )
        with atomic_dir(target) as tmp:  # replaces a damaged copy
            generate(preset, tmp, seed=seed, progress=progress)
    return target


_SOUND_CORPORA: dict[str, float] = {}


def _corpus_damage(root: Path) -> str | None:
    """Why a cached corpus must not be used (a frame or workbook missing, emptied or
    damaged, a manifest unreadable), or None. Checked once per process and marker."""
    try:
        stamp = (root / "synth_corpus.json").stat().st_mtime
    except OSError:
        return "no synth_corpus.json"
    if _SOUND_CORPORA.get(str(root)) == stamp:
        return None
    for key in DATASET_KEYS:
        folder = root / key
        try:
            manifest = json.loads((folder / MANIFEST_NAME).read_text())
            workbook, videos = manifest.get("workbook"), manifest["videos"]
        except (OSError, ValueError, TypeError, KeyError):
            return f"{folder / MANIFEST_NAME} is missing or unreadable"
        if workbook and not zipfile.is_zipfile(folder / workbook):
            return f"{folder / workbook} is missing or not a workbook"
        for video in videos:
            path = folder / video["folder"]
            try:
                with os.scandir(path) as entries:
                    sizes = [e.stat().st_size for e in entries if e.is_file()]
            except OSError:
                return f"{path} is missing"
            if len(sizes) != video["n_frames"] or min(sizes, default=1) == 0:
                return f"{path} holds {len(sizes)} frames where {video['n_frames']} were written"
    _SOUND_CORPORA[str(root)] = stamp
    return None


def _complete(marker: Path) -> bool:
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("generator") == f"melib.data.synth v{GENERATOR_VERSION}" and len(
        info.get("datasets", [])
    ) == len(DATASET_KEYS)


def cli_synth(args: argparse.Namespace) -> int:
    import time

    start = time.perf_counter()
    out = generate(args.preset, args.out, seed=args.seed, faces=args.faces, datasets=args.datasets)
    written = [out / key for key in (args.datasets or DATASET_KEYS)]
    n = sum(1 for folder in written for _ in folder.rglob("*") if _.suffix in (".jpg", ".bmp"))
    print(f"wrote {n} frames to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def naive_flow_detector_f1(root=None, *args, progress: bool = True, **kwargs):
    """:func:`melib.data.synth_check.naive_flow_detector_f1` on ``root``.

    ``root=None`` uses the cached ``book`` corpus (generated once by :func:`ensure_corpus`).
    """
    if root is None:
        root = ensure_corpus("book", 0, progress=progress)
    return synth_check.naive_flow_detector_f1(root, *args, progress=progress, **kwargs)
