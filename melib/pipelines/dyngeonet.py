"""DynGeoNet end to end: Tran, Vo & Zhao, "DynGeoNet: Fusion network for micro-expression
spotting" (seed 000; no public code, so the seed is the specification).

Each notebook cell calls one or two functions of this module:

1. :func:`configure` resolves the notebook parameters against the profile into a
   :class:`DynGeoSetup` (``describe()`` lays the run beside the paper, :func:`caveats`
   lists the departures in words);
2. :func:`prepare` loads each long-video dataset, cuts it into sliding windows of L
   frames and caches, per video, every window's dynamic image of the eye, nose and
   mouth regions, its 67-d geometric vector (onset = first frame, apex = middle frame)
   and its apex face crop (for the VGG16-on-frames baseline);
3. :func:`run_loso` trains one network per leave-one-subject-out fold (the branch asked
   for, and the two others as the DynNet / GeoNet ablations), scores every window of
   the held-out videos and merges the positive windows into intervals;
4. :func:`evaluate` scores them with the MEGC metric (IoU >= 0.5); :func:`table1` puts
   them under the paper's Table 1 rows;
5. :func:`run_cross_dataset` trains on two datasets and tests on the third (setups A,
   B, C) for DynGeoNet and the VGG16-on-frames baseline; :func:`table2` is Table 2;
6. figures: :func:`landmark_figure`, :func:`dynamic_image_figure`,
   :func:`geometry_figure`, :func:`loss_figure`, :func:`timeline_figure`,
   :func:`gradcam_figure`, :func:`tsne_figure`.

Where the seed is silent, what we chose (each is a parameter)
-------------------------------------------------------------
* Window length L: the seed's 11 / 35 / 65 frames at 30 / 100 / 200 fps
  (:func:`window_length`; other frame rates get the odd number nearest 0.35 s). Windows
  start every ``stride`` frames (the seed slides by 1).
* Positive windows (``positive_rule``): ``"middle"`` (default) labels a window positive
  when its middle frame, the apex in the seed's reading, lies inside a
  micro-expression; ``"iou"`` when its IoU with one reaches ``positive_iou``.
  Macro-expressions are negatives: the seed spots micro-expressions only.
* Intervals (``merge``): ``"windows"`` (default, the seed's words) merges overlapping
  positive windows into their union; ``"middles"`` keeps the span of the positive
  windows' middle frames (each standing for ``stride`` frames), which is what the
  ``"middle"`` label describes. Windows are positive at probability >= ``threshold``.
* Dynamic images: Bilen et al.'s alpha_t = 2t - T - 1 (``variant="bilen"``, default;
  the seed prints 2t - T + 1, ``variant="seed"``); the regions follow the window's
  onset landmarks, stacked eyes / nose / mouth into one image
  (:mod:`melib.features.dynamic_image`). No in-plane face alignment.
* Geometry: the seed's 45 ratios and 22 deform distances
  (:mod:`melib.features.geometry`), deform divided by the inter-ocular distance; each
  of the 67 values is standardised with the training fold's mean and spread before the
  MLP (ours: the raw ratios sit near 1 with differences of 1e-2).
* Training: SGD at the seed's lr 1e-4 with momentum 0.9 and batch 16 (the seed gives
  neither), BCE on one logit, 100 epochs in ``full``; weights from scratch unless
  ``vgg_weights`` names a local file. Every positive window is kept; negatives are
  subsampled to ``negatives_per_positive`` per positive (None: all, the paper).
* The VGG16 baseline of Table 2 (the CNN idea of the seed's refs [20, 26]) classifies
  the window's apex face crop (gray, repeated on 3 channels) with the same training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from melib import runtime
from melib.evaluation.postprocess import merge_window_proposals, sliding_windows, window_labels
from melib.evaluation.protocols import CROSS_DATASET_SETUPS, loso_splits
from melib.evaluation.spotting import evaluate_spotting
from melib.features.cache import load_features, map_jobs
from melib.features.dyngeonet_windows import WindowJob, WindowSpec, extract_windows, region_margin, window_files
from melib.features.video import open_dataset
from melib.training import TrainConfig, cpu_threads, fold_seed, predict, train_folds

DATASETS = ("casme_sq", "samm_lv", "smic_e_long")
DATASET_LABELS = {"casme_sq": "CAS(ME)²", "samm_lv": "SAMM-LV", "smic_e_long": "SMIC-E-Long"}
BRANCHES = ("fusion", "dyn", "geo")
BRANCH_NAMES = {"fusion": "DynGeoNet", "dyn": "DynNet", "geo": "GeoNet"}
POSITIVE_RULES = ("middle", "iou")
MERGES = ("windows", "middles")
SETUPS = tuple(CROSS_DATASET_SETUPS)
CACHE_VERSION = 1

# ------------------------------------------------------------------ the paper's numbers

# Section 4.1: window length per frame rate (CAS(ME)² 30 fps, SMIC-E-Long 100, SAMM-LV 200).
PAPER_L_BY_FPS = {30: 11, 100: 35, 200: 65}
PAPER_L = {"casme_sq": 11, "smic_e_long": 35, "samm_lv": 65}
# Section 4.1: SGD at lr 1e-4 for 100 epochs.
PAPER_LR = 1e-4
PAPER_EPOCHS = 100
# Table 1: F1 per dataset (None: not reported).
PAPER_TABLE1 = {
    "LBP-X2 [8, 20]": {"casme_sq": 0.0055, "samm_lv": 0.0111, "smic_e_long": 0.0666},
    "HOGTOP-LSTM [20]": {"casme_sq": 0.0111, "samm_lv": 0.03202, "smic_e_long": 0.0535},
    "HIGOTOP-LSTM [20]": {"casme_sq": 0.00902, "samm_lv": 0.03428, "smic_e_long": 0.0835},
    "MDMD [5, 20]": {"casme_sq": 0.0082, "samm_lv": 0.0364, "smic_e_long": 0.0268},
    "LBCNN [13]": {"casme_sq": 0.0595, "samm_lv": 0.0813, "smic_e_long": None},
    "DynNet (Ours)": {"casme_sq": 0.00921, "samm_lv": 0.0208, "smic_e_long": 0.0438},
    "GeoNet (Ours)": {"casme_sq": 0.0081, "samm_lv": 0.0198, "smic_e_long": 0.0278},
    "DynGeoNet (Ours)": {"casme_sq": 0.05012, "samm_lv": 0.0974, "smic_e_long": 0.1035},
}
# Table 2: (method, setup) -> TP, FP, FN, F1.
PAPER_TABLE2 = {
    ("VGG16 [20]", "A"): (45, 2157, 114, 0.0381),
    ("DynGeoNet", "A"): (49, 1830, 110, 0.0481),
    ("VGG16 [20]", "B"): (58, 2340, 108, 0.0452),
    ("DynGeoNet", "B"): (48, 1260, 118, 0.06512),
    ("VGG16 [20]", "C"): (11, 2521, 46, 0.0085),
    ("DynGeoNet", "C"): (12, 1509, 45, 0.01521),
}


def window_length(fps: float) -> int:
    """The seed's L for a frame rate: 11 at 30 fps, 35 at 100, 65 at 200; any other
    rate gets the odd number of frames nearest 0.35 s (about the seed's durations)."""
    fps = float(fps)
    for known, length in PAPER_L_BY_FPS.items():
        if abs(fps - known) < 1e-6:
            return length
    n = max(3, int(round(0.35 * fps)))
    return n if n % 2 else n + 1


# ------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """What a profile caps. ``None`` means no cap (the paper's value)."""

    corpus: str
    datasets: tuple
    input_size: int  # VGG input side (px); the paper's VGG-16 takes 224
    vgg_channels: int  # VGG conv channel divisor (1: VGG-16's 64..512 channels)
    vgg_width: int  # fc6/fc7 width (VGG-16: 4096)
    vgg_batch_norm: bool  # BatchNorm after each conv (VGG-16-BN); the plain branch does not train on CPU budgets
    max_epochs: int | None
    strides: dict  # window start step per dataset (frames); the paper slides by 1
    negatives_per_positive: float | None
    max_folds: int | None  # None: one fold per subject
    cross_setups: tuple
    ablations: bool = True
    lr: float = PAPER_LR  # SGD step when the caller gives none
    tsne_points: int = 600
    tsne_iter: int = 500


PROFILES = {
    # CI: the tiny corpus, 32 px inputs to a VGG-16 with an eighth of its channels, 2 epochs.
    "smoke": Profile(corpus="tiny", datasets=DATASETS, input_size=32, vgg_channels=8, vgg_width=256, vgg_batch_norm=True, max_epochs=2,
                     strides={"casme_sq": 2, "samm_lv": 16, "smic_e_long": 4}, negatives_per_positive=1.0,
                     max_folds=2, cross_setups=("C",), lr=1e-2, tsne_points=200, tsne_iter=250),
    # The book (15 min on 2 CPU cores): 64 px inputs, VGG-16-BN with an eighth of its
    # channels, strided windows, one negative per positive, 3 LOSO folds, 16 epochs at
    # lr 1e-2 (at the seed's 1e-4, or 1e-3, the loss did not move in 30-40 epochs).
    "book": Profile(corpus="book", datasets=DATASETS, input_size=64, vgg_channels=8, vgg_width=512,
                    vgg_batch_norm=True, max_epochs=16, strides={"casme_sq": 2, "samm_lv": 8, "smic_e_long": 4},
                    negatives_per_positive=1.0, max_folds=3, cross_setups=SETUPS, lr=1e-2),
    # Paper scale (a GPU): VGG-16 at 224 px, every window, every negative, 100 epochs.
    "full": Profile(corpus="full", datasets=DATASETS, input_size=224, vgg_channels=1, vgg_width=4096,
                    vgg_batch_norm=False, max_epochs=None,
                    strides={}, negatives_per_positive=None, max_folds=None, cross_setups=SETUPS,
                    tsne_points=3000, tsne_iter=1000),
}


@dataclass
class DynGeoSetup:
    """The resolved run: notebook parameters after the profile's caps."""

    seed: int
    profile: str
    data_root: Path | None
    device: str
    datasets: tuple
    lengths: dict  # dataset -> L
    strides: dict  # dataset -> stride
    positive_rule: str
    positive_iou: float
    branch: str
    ablations: tuple  # the other branches that also run (DynNet / GeoNet)
    cross_setups: tuple
    train: TrainConfig
    threshold: float
    merge: str
    variant: str
    input_size: int
    vgg_channels: int
    vgg_width: int
    vgg_batch_norm: bool
    negatives_per_positive: float | None
    max_folds: int | None
    vgg_weights: str | None
    workers: int
    caps: dict
    limits: Profile

    def spec(self, dataset: str) -> WindowSpec:
        return WindowSpec(length=self.lengths[dataset], stride=self.strides[dataset], size=self.input_size,
                          variant=self.variant)

    def describe(self) -> pd.DataFrame:
        """What runs, beside the paper's setting."""
        names = ", ".join(DATASET_LABELS.get(d, d) for d in self.datasets)
        rows = [
            ("datasets", names, "CAS(ME)², SAMM-LV, SMIC-E-Long"),
            ("data", str(self.data_root) if self.data_root else f"synthetic corpus '{self.limits.corpus}'",
             "real datasets"),
            ("window L (frames)", ", ".join(f"{DATASET_LABELS[d]} {self.lengths[d]}" for d in self.datasets),
             "11 (30 fps), 35 (100 fps), 65 (200 fps)"),
            ("window stride", ", ".join(f"{DATASET_LABELS[d]} {self.strides[d]}" for d in self.datasets), "1"),
            ("apex", "middle frame of the window", "middle frame (L/2)"),
            ("positive window", self.positive_rule + (f" (IoU >= {self.positive_iou})" if self.positive_rule == "iou"
                                                      else " (middle frame inside a micro-expression)"), "not stated"),
            ("dynamic image", f"alpha_t {'2t-T-1 (Bilen)' if self.variant == 'bilen' else '2t-T+1 (as printed)'}, "
             "eyes / nose / mouth", "alpha_t = 2t-T+1 (printed), eye / nose / mouth"),
            ("geometry", "45 ratios + 22 deform / inter-ocular dist. (onset: first, apex: middle frame), "
             "standardised per fold", "45 ratios + 22 deform (pixels)"),
            ("network", f"{BRANCH_NAMES[self.branch]}; VGG-16 at {self.input_size} px, conv channels "
             f"/ {self.vgg_channels}, fc6/fc7 {self.vgg_width}" + (", BatchNorm" if self.vgg_batch_norm else ""),
             "DynGeoNet, VGG-16 (224 px, fc 4096)"),
            ("ablations", ", ".join(BRANCH_NAMES[b] for b in self.ablations) or "none", "DynNet, GeoNet"),
            ("weights", self.vgg_weights or "from scratch", "not stated"),
            ("optimiser", f"SGD lr {self.train.lr:g}, momentum {self.train.momentum:g}, batch {self.train.batch_size}",
             "SGD, lr 1e-4 (momentum, batch not stated)"),
            ("MLP / head widths", "geometry 67-128-128, head 256, dropout 0.5", "not stated"),
            ("loss", "BCE", "BCE"),
            ("epochs", str(self.train.epochs), "100"),
            ("negatives per positive", "all" if self.negatives_per_positive is None else
             f"{self.negatives_per_positive:g}", "not stated (all)"),
            ("LOSO folds", "one per subject" if self.max_folds is None else f"{self.max_folds} subject groups",
             "one per subject"),
            ("intervals", ("union of positive windows" if self.merge == "windows" else "span of positive apexes")
             + f" (p >= {self.threshold:g})", "positive windows merged"),
            ("cross-database", ", ".join(self.cross_setups) or "none", "A, B, C"),
            ("metric", "MEGC F1, IoU >= 0.5", "F1, IoU 0.5"),
        ]
        return pd.DataFrame(rows, columns=["setting", "this run", "paper"]).set_index("setting")


def silent_choices(setup: DynGeoSetup) -> list[str]:
    """What we chose where the seed says nothing (each holds in every profile)."""
    from melib.models.dyngeonet import vgg_pool_size

    pool = vgg_pool_size(setup.input_size)
    lines = [
        "Deform (22 landmark displacements) divided by the onset's inter-ocular distance (the seed gives pixels; "
        "the datasets film faces at different sizes)",
        "the 67 geometric values standardised with each training fold's mean and spread before the MLP",
        "the 12th mouth line read literally as (60, 61), the seed's 'i from 49 to 60' (not the closing edge (60, 49))",
        "MLP on the geometry 67 -> 128 -> 128 and fused head -> 256 -> 1 logit, dropout 0.5 (no widths in the seed)",
        "positive window: " + ("middle frame inside a micro-expression" if setup.positive_rule == "middle"
                               else f"IoU >= {setup.positive_iou:g} with one") + "; "
        "macro-expressions are negatives",
        "intervals: " + ("union of overlapping positive windows" if setup.merge == "windows"
                         else "span of the positive windows' middle frames") + ", "
        f"a window positive at probability >= {setup.threshold:g}",
        f"SGD momentum {setup.train.momentum:g} and batch {setup.train.batch_size}",
    ]
    if pool != 7:
        lines.append(f"fc6 reads the last conv maps adaptively pooled to {pool}x{pool} (VGG-16 at 224 px: 7x7), "
                     f"since a {setup.input_size} px input leaves {setup.input_size // 32}x{setup.input_size // 32} maps")
    return lines


def caveats(setup: DynGeoSetup) -> str:
    """Plain-language list of where this run departs from the paper, tagged by who set
    it (a parameter or the profile's caps), then what we chose where the paper is silent
    (printed beside the results, as the notebook rules ask)."""
    lines = []
    if setup.data_root is None:
        lines.append(f"- data: melib's synthetic corpus '{setup.limits.corpus}' (not real-dataset results); "
                     "every network is trained from scratch on it")
    lines += [f"- {what}: {ours} instead of {paper} ({why})" for what, (paper, ours, why) in setup.caps.items()]
    if setup.variant == "bilen":
        lines.append("- dynamic image weights: Bilen et al.'s 2t - T - 1 (the seed prints 2t - T + 1)")
    for name in setup.datasets:
        paper = PAPER_L.get(name)
        if paper is not None and setup.lengths[name] != paper:
            lines.append(f"- window L for {DATASET_LABELS[name]}: {setup.lengths[name]} instead of {paper} (parameter)")
    if setup.branch != "fusion":
        lines.append(f"- chosen network: {BRANCH_NAMES[setup.branch]} (the paper's method is DynGeoNet) (parameter)")
    if not setup.ablations:
        others = " / ".join(BRANCH_NAMES[b] for b in BRANCHES if b != setup.branch)
        lines.append(f"- no {others} ablation runs (Table 1 shows the chosen network only) (parameter)")
    if setup.vgg_weights is None:
        lines.append("- VGG-16 trained from scratch (no ImageNet weights are downloaded)")
    if not setup.cross_setups:
        lines.append("- no cross-database setup runs (Table 2 is empty)")
    elif set(setup.cross_setups) != set(SETUPS):
        lines.append(f"- cross-database setups: {', '.join(setup.cross_setups)} only, instead of A, B, C")
    head = ("Departures from the paper in this run:\n" + "\n".join(lines)) if lines else \
        "This run uses the paper's settings."
    silent = "\n".join(f"- {line}" for line in silent_choices(setup))
    return f"{head}\n\nWhere the paper is silent, our choices:\n{silent}"


def _as_tuple(value, allowed, what: str, everything: tuple) -> tuple:
    if value is None:
        return None
    if isinstance(value, str):
        if value.lower() in ("all", "both"):
            return everything
        if value.lower() == "none":
            return ()
        value = [v.strip() for v in value.split(",") if v.strip()]
    out = tuple(value)
    bad = [v for v in out if v not in allowed]
    if bad:
        raise ValueError(f"{what}={bad[0]!r}: use one of {', '.join(allowed)} (or a list of them)")
    return out


def _per_dataset(value, datasets, what: str, default: dict) -> dict:
    """An int for every dataset, a {dataset: int} dict on top of ``default``, or None."""
    if value is None:
        return {d: default[d] for d in datasets}
    if isinstance(value, dict):
        unknown = [d for d in value if d not in DATASETS]
        if unknown:
            raise ValueError(f"{what}: unknown dataset {unknown[0]!r}; use keys among {', '.join(DATASETS)}")
        return {d: int(value.get(d, default[d])) for d in datasets}
    return {d: int(value) for d in datasets}


def _all_or_number(value, profile_value, what: str, kind):
    if value is None:
        return profile_value
    if isinstance(value, str):
        if value.lower() == "all":
            return None
        raise ValueError(f"{what}={value!r}: use a number, 'all' or None (the profile's)")
    return kind(value)


def _check_training(*, epochs, lr, momentum, batch_size, positive_iou, input_size, vgg_channels, vgg_width,
                    vgg_batch_norm, workers, variant) -> None:
    """Refuse values that would only fail after feature extraction, naming the fix."""
    def whole(value, what, low, fix):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{what}={value!r}: {fix}")

    whole(epochs, "epochs", 1, "use a whole number of epochs >= 1 (the paper: 100)")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr={lr!r}: use a learning rate > 0 (the paper: 1e-4) or None for the profile's")
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ValueError(f"momentum={momentum!r}: use a value in [0, 1) (our default 0.9)")
    whole(batch_size, "batch_size", 1, "use a whole number >= 1 (our default 16)")
    if not (isinstance(positive_iou, (int, float)) and 0 < positive_iou <= 1):
        raise ValueError(f"positive_iou={positive_iou!r}: use an IoU in (0, 1] (default 0.5)")
    if input_size is not None:
        whole(input_size, "input_size", 32, "VGG-16 halves the image 5 times: use >= 32 px (the paper: 224), "
              "or None for the profile's")
    if vgg_channels is not None and (isinstance(vgg_channels, bool) or vgg_channels not in (1, 2, 4, 8, 16, 32, 64)):
        raise ValueError(f"vgg_channels={vgg_channels!r}: use a divisor of 64 (1, 2, 4, 8, 16, 32 or 64; "
                         "1 is VGG-16's 64..512 channels) or None for the profile's")
    if vgg_width is not None:
        whole(vgg_width, "vgg_width", 1, "use a whole number of fc6/fc7 units >= 1 (the paper: 4096) or None")
    if vgg_batch_norm is not None and not isinstance(vgg_batch_norm, (bool, np.bool_)):
        raise ValueError(f"vgg_batch_norm={vgg_batch_norm!r}: use True (VGG-16-BN), False (plain VGG-16, the "
                         "paper) or None for the profile's")
    whole(workers, "workers", 1, "use a whole number of feature-extraction processes >= 1")
    if variant not in ("bilen", "seed"):
        raise ValueError(f"variant={variant!r}: use 'bilen' (alpha_t 2t-T-1) or 'seed' (2t-T+1, as printed)")


def _check_weights(vgg_weights, vgg_channels, vgg_batch_norm) -> None:
    """ImageNet VGG-16 weights fit only the plain, full-width VGG-16."""
    if not Path(vgg_weights).is_file():
        raise FileNotFoundError(f"vgg_weights={str(vgg_weights)!r}: no such file. Fix: pass the path of a local "
                                "torchvision VGG-16 state dict, or None to train from scratch")
    if vgg_channels not in (None, 1):
        raise ValueError(f"vgg_weights with vgg_channels={vgg_channels}: VGG-16 weights need vgg_channels=1 (or None)")
    if vgg_batch_norm:
        raise ValueError("vgg_weights with vgg_batch_norm=True: the weights are plain VGG-16's; "
                         "set vgg_batch_norm=False (or None)")


def configure(seed: int = 0, profile: str = "book", data_root=None, device: str = "auto", datasets=None,
              L=None, stride=None, positive_rule: str = "middle", positive_iou: float = 0.5,
              branch: str = "fusion", ablations: bool | None = None, cross_setup=None, epochs: int = 100,
              lr: float | None = None, momentum: float = 0.9, batch_size: int = 16, threshold: float = 0.5,
              merge: str = "windows", variant: str = "bilen", input_size: int | None = None,
              vgg_channels: int | None = None, vgg_width: int | None = None,
              vgg_batch_norm: bool | None = None, negatives_per_positive: float | str | None = None,
              max_folds: int | str | None = None, vgg_weights: str | None = None,
              workers: int = 2) -> DynGeoSetup:
    """Resolve the notebook parameters against the profile.

    Parameters default to the paper (or, where it is silent, our stated choice); the
    profile caps what costs time. ``None`` for ``datasets``, ``stride``,
    ``input_size``, ``vgg_channels`` (a divisor of VGG-16's conv channels),
    ``vgg_width`` (fc6/fc7 units), ``vgg_batch_norm``, ``cross_setup``, ``ablations``,
    ``negatives_per_positive``
    and ``max_folds`` means "the profile's"; ``"all"`` for the last two means every
    negative window and one fold per subject (the paper). ``lr=None`` is the profile's
    step (the paper's 1e-4 in ``full``, 1e-2 in the CPU profiles); an explicit ``lr`` is
    used as given. ``epochs`` is capped by the profile. With ``vgg_weights`` the VGG
    defaults become the plain VGG-16 the weights fit (full channels, no BatchNorm).
    Every value that differs from the paper lands in ``caps`` (and :func:`caveats`),
    tagged as set by a parameter or by the profile.
    ``L``: None derives it from each dataset's fps (:func:`window_length`), an int sets
    it for every dataset, a dict per dataset. ``cross_setup``: ``"A"``, ``"B"``,
    ``"C"``, a list, ``"all"`` or ``"none"``.
    """
    runtime.check_profile(profile)
    runtime.seed_everything(seed)
    prof = PROFILES[profile]
    chosen = _as_tuple(datasets, DATASETS, "datasets", DATASETS) or prof.datasets
    if branch not in BRANCHES:
        raise ValueError(f"branch={branch!r}: use 'fusion' (DynGeoNet), 'dyn' (DynNet) or 'geo' (GeoNet)")
    if positive_rule not in POSITIVE_RULES:
        raise ValueError(f"positive_rule={positive_rule!r}: use 'middle' (middle frame inside a "
                         "micro-expression) or 'iou' (IoU >= positive_iou)")
    if merge not in MERGES:
        raise ValueError(f"merge={merge!r}: use 'windows' (union of positive windows) or 'middles'")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold={threshold}: a probability strictly between 0 and 1")
    setups = _as_tuple(cross_setup, SETUPS, "cross_setup", SETUPS)
    setups = prof.cross_setups if setups is None else setups
    missing = sorted({d for s in setups for d in (*CROSS_DATASET_SETUPS[s]["train"], CROSS_DATASET_SETUPS[s]["test"])}
                     - set(chosen))
    if missing:
        raise ValueError(f"cross_setup {', '.join(setups)} needs {', '.join(missing)} among the datasets; "
                         "add it to datasets or pass cross_setup='none'")
    fps = {"casme_sq": 30, "samm_lv": 200, "smic_e_long": 100}
    lengths = _per_dataset(L, chosen, "L", {d: window_length(fps[d]) for d in DATASETS})
    # the profile's stride never exceeds a (shorter) L the caller chose: windows must touch
    profile_strides = {d: min(prof.strides.get(d, 1), lengths.get(d, 1)) for d in DATASETS}
    strides = _per_dataset(stride, chosen, "stride", profile_strides)
    for d in chosen:
        if lengths[d] < 3:
            raise ValueError(f"L={lengths[d]} for {d}: a window needs at least 3 frames")
        if not 1 <= strides[d] <= lengths[d]:
            raise ValueError(f"stride={strides[d]} for {d}: use 1..L ({lengths[d]}) so that windows overlap or touch")
    _check_training(epochs=epochs, lr=lr, momentum=momentum, batch_size=batch_size, positive_iou=positive_iou,
                    input_size=input_size, vgg_channels=vgg_channels, vgg_width=vgg_width,
                    vgg_batch_norm=vgg_batch_norm, workers=workers, variant=variant)
    if vgg_weights is not None:
        _check_weights(vgg_weights, vgg_channels, vgg_batch_norm)
    # Every value that differs from the paper is recorded, whether the profile capped it
    # or the caller set it: name -> (paper, this run, who chose it).
    caps = {}

    def departure(what, paper, ours, explicit: bool):
        caps[what] = (paper, ours, "parameter" if explicit else f"profile '{profile}' caps cost")

    run_epochs = int(epochs) if prof.max_epochs is None else min(int(epochs), prof.max_epochs)
    if run_epochs != PAPER_EPOCHS:
        departure("epochs", PAPER_EPOCHS, run_epochs, explicit=run_epochs == epochs)
    # Capped runs make far fewer SGD updates than the paper; the CPU profiles take a larger
    # step (at 1e-4 or 1e-3 the loss did not move in 30-40 epochs). An explicit lr is used as given.
    run_lr = prof.lr if lr is None else float(lr)
    if run_lr != PAPER_LR:
        departure("SGD learning rate", PAPER_LR, run_lr, explicit=lr is not None)
    weighted = vgg_weights is not None  # ImageNet VGG-16 weights: plain layers, full channels
    size = int(input_size or prof.input_size)
    if size != 224:
        departure("VGG input (px)", 224, size, explicit=input_size is not None)
    channels = int(vgg_channels or (1 if weighted else prof.vgg_channels))
    if channels != 1:
        departure("VGG-16 conv channels", "64..512", f"64..512 / {channels}", explicit=vgg_channels is not None)
    fc_width = int(vgg_width or prof.vgg_width)
    if fc_width != 4096:
        departure("VGG-16 fc6/fc7 units", 4096, fc_width, explicit=vgg_width is not None)
    if any(strides[d] != 1 for d in chosen):
        departure("window stride (frames)", 1, ", ".join(f"{DATASET_LABELS[d]} {strides[d]}" for d in chosen),
                  explicit=stride is not None)
    batch_norm = (False if weighted else prof.vgg_batch_norm) if vgg_batch_norm is None else bool(vgg_batch_norm)
    if batch_norm:
        departure("VGG-16 layers", "plain VGG-16", "VGG-16-BN (BatchNorm after each convolution)",
                  explicit=vgg_batch_norm is not None)
    negatives = _all_or_number(negatives_per_positive, prof.negatives_per_positive, "negatives_per_positive", float)
    if negatives is not None and not negatives > 0:
        raise ValueError(f"negatives_per_positive={negatives_per_positive!r}: use a number > 0, or 'all' "
                         "(every negative window, the paper)")
    if negatives is not None:
        departure("training negatives", "all windows", f"{negatives:g} per positive window, drawn at random",
                  explicit=negatives_per_positive is not None)
    folds = _all_or_number(max_folds, prof.max_folds, "max_folds", int)
    if folds is not None and folds < 2:
        raise ValueError(f"max_folds={folds}: leave-subjects-out needs at least 2 folds; use 'all' for one per subject")
    if folds is not None:
        departure("LOSO folds", "one per subject", f"{folds} groups of subjects", explicit=max_folds is not None)
    run_ablations = prof.ablations if ablations is None else bool(ablations)
    train = TrainConfig(epochs=run_epochs, batch_size=int(batch_size), lr=run_lr, optimizer="sgd", momentum=momentum,
                        loss="bce", seed=seed, device=device)
    return DynGeoSetup(seed=seed, profile=profile, data_root=Path(data_root) if data_root else None, device=device,
                       datasets=chosen, lengths=lengths, strides=strides, positive_rule=positive_rule,
                       positive_iou=positive_iou, branch=branch,
                       ablations=tuple(b for b in BRANCHES if b != branch) if run_ablations else (),
                       cross_setups=tuple(setups), train=train, threshold=threshold, merge=merge, variant=variant,
                       input_size=size, vgg_channels=channels, vgg_width=fc_width, vgg_batch_norm=batch_norm,
                       negatives_per_positive=negatives, max_folds=folds,
                       vgg_weights=vgg_weights, workers=int(workers), caps=caps, limits=prof)


# ------------------------------------------------------------------------ preparation


@dataclass
class VideoWindows:
    """One video's windows: starts, labels and the cached features (memory maps)."""

    video: str
    subject: str
    n_frames: int
    starts: np.ndarray
    labels: np.ndarray  # 1: positive window (micro-expression), 0: not
    geometry: np.ndarray  # (n, 67)
    dynamic: np.ndarray  # (n, 3, S, S) float16 memory map
    apex_crops: np.ndarray  # (n, S, S) uint8 memory map
    stamp: str  # the cache file name (carries the frame stamp and the spec)


@dataclass
class Prepared:
    """One dataset cut into windows, with ground truth and cached features."""

    name: str
    dataset: object
    root: Path
    length: int
    stride: int
    videos: pd.DataFrame  # subject, video, n_frames
    gt: pd.DataFrame  # standard annotations of these videos (micro and macro)
    windows: dict  # video -> VideoWindows
    spec: WindowSpec

    @property
    def subjects(self) -> list[str]:
        return sorted(self.videos["subject"].unique())

    def micro(self, video: str) -> np.ndarray:
        g = self.gt[(self.gt["video"] == video) & (self.gt["type"] == "micro")]
        return g[["onset", "offset"]].to_numpy(dtype=np.int64)

    def videos_of(self, subjects) -> list[str]:
        return list(self.videos.loc[self.videos["subject"].isin(list(subjects)), "video"])


def data_root_for(setup: DynGeoSetup) -> Path:
    if setup.data_root is not None:
        return setup.data_root
    from melib.data.synth import ensure_corpus

    # silent, so that a cold cache and a warm one print the same outputs (nbval)
    return ensure_corpus(setup.limits.corpus, 0, progress=False)


def prepare(setup: DynGeoSetup, progress: bool = True) -> dict:
    """Load each dataset, cut windows and extract (or read back) their features.

    Returns ``{dataset: Prepared}``. Only videos whose files are missing are computed,
    in ``setup.workers`` processes, longest videos first.
    """
    root = data_root_for(setup)
    opened, files, jobs, total = {}, {}, [], 0
    for name in setup.datasets:
        ds = opened[name] = open_dataset(name, str(root / name))
        spec = setup.spec(name)
        for video in ds.videos["video"]:
            total += 1
            files[(name, video)] = window_files(ds, video, spec)
            if not all(p.is_file() for p in files[(name, video)]):
                starts = sliding_windows(ds.n_frames(video), spec.length, spec.stride)
                jobs.append(WindowJob(name, str(root / name), video, spec, tuple(starts.tolist()),
                                      *(str(p) for p in files[(name, video)])))
    jobs.sort(key=lambda j: -len(j.starts) * j.spec.length)
    map_jobs(extract_windows, jobs, workers=setup.workers, progress=progress, total=total, desc="window features")
    return {name: _prepared(opened[name], root / name, setup, files) for name in setup.datasets}


def _prepared(ds, root: Path, setup: DynGeoSetup, files: dict) -> Prepared:
    spec = setup.spec(ds.name)
    videos = ds.videos[["subject", "video", "n_frames"]].sort_values(["subject", "video"]).reset_index(drop=True)
    gt = ds.annotations[ds.annotations["video"].isin(videos["video"])].reset_index(drop=True)
    prep = Prepared(name=ds.name, dataset=ds, root=root, length=spec.length, stride=spec.stride,
                    videos=videos, gt=gt, windows={}, spec=spec)
    for subject, video, n_frames in videos.itertuples(index=False):
        dyn_path, crops_path, index_path = files[(ds.name, video)]
        with np.load(index_path) as z:
            starts, geometry = z["starts"], z["geometry"]
        labels = window_labels(starts, spec.length, prep.micro(video), rule=setup.positive_rule,
                               iou_threshold=setup.positive_iou)
        prep.windows[video] = VideoWindows(video=video, subject=str(subject), n_frames=int(n_frames),
                                           starts=starts, labels=labels, geometry=geometry,
                                           dynamic=load_features(dyn_path), apex_crops=load_features(crops_path),
                                           stamp=dyn_path.name)
    return prep


def corpus_table(prepared: dict) -> pd.DataFrame:
    """Subjects, videos, frames, expressions and windows of each prepared dataset."""
    rows = []
    for name, prep in prepared.items():
        labels = np.concatenate([w.labels for w in prep.windows.values()])
        rows.append({"dataset": DATASET_LABELS.get(name, name), "fps": prep.dataset.fps,
                     "subjects": len(prep.subjects), "videos": len(prep.videos),
                     "frames": int(prep.videos["n_frames"].sum()),
                     "micro": int((prep.gt["type"] == "micro").sum()),
                     "macro": int((prep.gt["type"] == "macro").sum()),
                     "L (ours)": prep.length, "L (paper)": PAPER_L.get(name), "stride": prep.stride,
                     "windows": len(labels), "positive windows": int(labels.sum())})
    return pd.DataFrame(rows).set_index("dataset")


# ---------------------------------------------------------------------- training data


def geometry_stats(sources: list[VideoWindows]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the 67 geometric values over the given (training) videos."""
    geo = np.concatenate([w.geometry for w in sources]).astype(np.float64)
    mean, std = geo.mean(axis=0), geo.std(axis=0)
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


class WindowSet(TorchDataset):
    """Windows read lazily from the per-video memory maps.

    ``mode="packed"``: one flat tensor ``[dynamic image (3*S*S), standardised geometry
    (67)]``, the packing :class:`melib.models.dyngeonet.DynGeoNet` reads; ``mode="frames"``: the apex
    face crop in [0, 1] on 3 channels, for the VGG16-on-frames baseline.
    """

    def __init__(self, sources: list[VideoWindows], file_index, rows, targets, mode: str = "packed",
                 geo_mean=None, geo_std=None):
        if mode not in ("packed", "frames"):
            raise ValueError(f"mode={mode!r}: use 'packed' or 'frames'")
        self.sources = sources
        self.file_index = np.asarray(file_index, np.int64)
        self.rows = np.asarray(rows, np.int64)
        self.targets = np.asarray(targets, np.float32)
        self.mode = mode
        self.geo_mean = geo_mean
        self.geo_std = geo_std

    def __len__(self) -> int:
        return len(self.rows)

    def input(self, item: int) -> np.ndarray:
        src = self.sources[self.file_index[item]]
        row = self.rows[item]
        if self.mode == "frames":
            crop = np.asarray(src.apex_crops[row], np.float32) / 255.0
            return np.repeat(crop[None], 3, axis=0)
        dyn = np.asarray(src.dynamic[row], np.float32).ravel()
        geo = (src.geometry[row] - self.geo_mean) / self.geo_std
        return np.concatenate([dyn, geo.astype(np.float32)])

    def __getitem__(self, item: int):
        return torch.from_numpy(self.input(item)), torch.tensor(self.targets[item])


def training_set(sources: list[VideoWindows], negatives_per_positive: float | None, seed: int,
                 mode: str = "packed", stats=None, min_negatives: int = 32) -> WindowSet:
    """Every positive window of ``sources`` and negatives drawn at random (all of them
    when ``negatives_per_positive`` is None), at least ``min_negatives`` of them."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([w.labels for w in sources])
    files = np.concatenate([np.full(len(w.labels), i) for i, w in enumerate(sources)])
    rows = np.concatenate([np.arange(len(w.labels)) for w in sources])
    pos = np.flatnonzero(labels > 0)
    neg = np.flatnonzero(labels == 0)
    if negatives_per_positive is not None:
        n_neg = min(len(neg), max(int(round(negatives_per_positive * len(pos))), min_negatives))
        neg = np.sort(rng.choice(neg, size=n_neg, replace=False))
    keep = np.sort(np.concatenate([pos, neg]))
    mean, std = stats if stats is not None else geometry_stats(sources)
    return WindowSet(sources, files[keep], rows[keep], labels[keep], mode, mean, std)


def video_windows(sources: VideoWindows, mode: str, stats) -> WindowSet:
    """All windows of one video, in order, for scoring."""
    n = len(sources.labels)
    return WindowSet([sources], np.zeros(n), np.arange(n), sources.labels, mode, *stats)


# ----------------------------------------------------------------------------- models


def model_factory(setup: DynGeoSetup, branch: str):
    """A function building a fresh model: a DynGeoNet branch (packed inputs) or
    ``"frames"``, the VGG16-on-frames baseline. Both return one logit per sample."""
    from melib.features.geometry import GEO_DIM
    from melib.models.dyngeonet import DynGeoNet, VGGFrames

    common = {"input_size": setup.input_size, "vgg_weights": setup.vgg_weights, "vgg_width": setup.vgg_width,
              "vgg_channels": setup.vgg_channels, "vgg_batch_norm": setup.vgg_batch_norm}
    if branch == "frames":
        return lambda: VGGFrames(**common)
    return lambda: DynGeoNet(branch=branch, geo_dim=GEO_DIM, **common)


# ------------------------------------------------------------------------- runs


@dataclass
class SpotRun:
    """One trained configuration scored on one dataset's videos."""

    dataset: str
    branch: str  # fusion | dyn | geo | frames
    protocol: str  # "LOSO" or a cross-database setup "A" / "B" / "C"
    probs: dict  # video -> per-window probability
    fold_of: dict  # video -> fold name whose model scored it
    histories: dict  # fold -> history
    checkpoints: dict  # fold -> Path
    stats: dict  # fold -> (geo mean, geo std)
    seconds: float = 0.0
    trained_folds: int = 0

    @property
    def method(self) -> str:
        return "VGG16 (frames)" if self.branch == "frames" else BRANCH_NAMES[self.branch]


def fold_groups(subjects, max_folds: int | None) -> dict:
    """``{fold name: subjects held out}``: one fold per subject, or ``max_folds`` groups."""
    subjects = sorted(set(subjects))
    folds = loso_splits(subjects, max_folds=max_folds)
    return {"+".join(f.held_out): list(f.held_out) for f in folds}


def _experiment_key(setup: DynGeoSetup, branch: str, sources: list[VideoWindows], extra) -> dict:
    return {"branch": branch, "videos": sorted(w.stamp for w in sources), "rule": setup.positive_rule,
            "positive_iou": setup.positive_iou if setup.positive_rule == "iou" else None,
            "negatives": setup.negatives_per_positive, "size": setup.input_size,
            "vgg": (setup.vgg_channels, setup.vgg_width, setup.vgg_batch_norm),
            "weights": setup.vgg_weights, "extra": extra, "version": CACHE_VERSION}


def _train(setup: DynGeoSetup, branch: str, folds: dict, train_sources, folder: Path, key: dict,
           label: str, progress: bool):
    """Yield (fold, model, stats, FoldResult) for each fold, training where needed."""
    mode = "frames" if branch == "frames" else "packed"
    stats = {fold: geometry_stats(train_sources(fold)) for fold in folds}

    def make_data(fold):
        return training_set(train_sources(fold), setup.negatives_per_positive, fold_seed(setup.seed, fold), mode,
                            stats[fold])

    for result in train_folds(list(folds), model_factory(setup, branch), make_data, setup.train, folder, key,
                              progress=progress, desc=label):
        yield result, stats[result.fold]


def score_video(model: nn.Module, windows: VideoWindows, mode: str, stats, device: str = "auto") -> np.ndarray:
    """Probability of every window of a video."""
    logits = predict(model, video_windows(windows, mode, stats), batch_size=256, device=device)
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64).reshape(-1)))


def loso(prep: Prepared, setup: DynGeoSetup, branch: str | None = None, progress: bool = True) -> SpotRun:
    """Leave-one-subject-out on one dataset: train per fold, score its held-out videos."""
    branch = branch or setup.branch
    folds = fold_groups(prep.subjects, setup.max_folds)
    all_sources = [prep.windows[v] for v in prep.videos["video"]]

    def train_sources(fold):
        return [w for w in all_sources if w.subject not in folds[fold]]

    key = _experiment_key(setup, branch, all_sources, {"dataset": prep.name, "folds": folds})
    folder = runtime.cache_dir("checkpoints", "dyngeonet", prep.name)
    run = SpotRun(prep.name, branch, "LOSO", {}, {}, {}, {}, {})
    start = time.perf_counter()
    mode = "frames" if branch == "frames" else "packed"
    # the bar counts epochs over all folds: say so, or "48/48 epoch" reads as 48 epochs
    label = (f"{DATASET_LABELS.get(prep.name, prep.name)} {BRANCH_NAMES.get(branch, branch)} "
             f"({len(folds)} folds x {setup.train.epochs} epochs)")
    for result, stats in _train(setup, branch, folds, train_sources, folder, key, label, progress):
        run.trained_folds += not result.skipped
        run.histories[result.fold], run.checkpoints[result.fold] = result.history, result.checkpoint
        run.stats[result.fold] = stats
        for video in prep.videos_of(folds[result.fold]):
            run.probs[video] = score_video(result.model, prep.windows[video], mode, stats, setup.device)
            run.fold_of[video] = result.fold
    run.seconds = time.perf_counter() - start
    return run


def run_loso(prepared: dict, setup: DynGeoSetup, progress: bool = True) -> dict:
    """The chosen branch and (when the profile runs them) the two ablations on every
    dataset: ``{(dataset, branch): SpotRun}``."""
    return {(name, branch): loso(prep, setup, branch, progress)
            for branch in (setup.branch,) + setup.ablations for name, prep in prepared.items()}


def cross_dataset(prepared: dict, setup: DynGeoSetup, cross: str, branch: str | None = None,
                  progress: bool = True) -> SpotRun:
    """Setup ``cross`` (A, B or C): one model trained on every video of the two training
    datasets, scored on every video of the test dataset."""
    branch = branch or setup.branch
    spec = CROSS_DATASET_SETUPS[cross]
    sources = [w for name in spec["train"] for w in prepared[name].windows.values()]
    test = prepared[spec["test"]]
    key = _experiment_key(setup, branch, sources, {"setup": cross, "train": list(spec["train"])})
    folder = runtime.cache_dir("checkpoints", "dyngeonet", f"cross-{cross}")
    run = SpotRun(test.name, branch, cross, {}, {}, {}, {}, {})
    start = time.perf_counter()
    mode = "frames" if branch == "frames" else "packed"
    label = f"setup {cross} {BRANCH_NAMES.get(branch, 'VGG16 frames')}"
    for result, stats in _train(setup, branch, {cross: None}, lambda fold: sources, folder, key, label, progress):
        run.trained_folds += not result.skipped
        run.histories[cross], run.checkpoints[cross], run.stats[cross] = result.history, result.checkpoint, stats
        for video in test.videos["video"]:
            run.probs[video] = score_video(result.model, test.windows[video], mode, stats, setup.device)
            run.fold_of[video] = cross
    run.seconds = time.perf_counter() - start
    return run


def run_cross_dataset(prepared: dict, setup: DynGeoSetup, progress: bool = True) -> dict:
    """Every setup of ``setup.cross_setups`` for the chosen branch and the VGG16 baseline:
    ``{(setup, branch): SpotRun}``."""
    return {(cross, branch): cross_dataset(prepared, setup, cross, branch, progress)
            for cross in setup.cross_setups for branch in (setup.branch, "frames")}


def load_fold_model(setup: DynGeoSetup, run: SpotRun, fold: str) -> nn.Module:
    model = model_factory(setup, run.branch)()
    model.load_state_dict(torch.load(run.checkpoints[fold], map_location="cpu", weights_only=False)["model"])
    return model.eval()


def training_summary(runs: dict) -> pd.DataFrame:
    """Folds, training windows, first and last epoch loss and trained/loaded folds."""
    rows = []
    for run in runs.values():
        first = [h["epoch_loss"][0] for h in run.histories.values() if h["epoch_loss"]]
        last = [h["epoch_loss"][-1] for h in run.histories.values() if h["epoch_loss"]]
        rows.append({"dataset": DATASET_LABELS.get(run.dataset, run.dataset), "protocol": run.protocol,
                     "network": run.method, "folds": len(run.histories),
                     "loss epoch 1": round(float(np.mean(first)), 4) if first else np.nan,
                     "loss last epoch": round(float(np.mean(last)), 4) if last else np.nan})
    return pd.DataFrame(rows).set_index(["dataset", "protocol", "network"])


# ------------------------------------------------------------------------ spotting


def spot_video(starts, length: int, stride: int, probs, threshold: float = 0.5, merge: str = "windows",
               n_frames: int | None = None) -> pd.DataFrame:
    """Positive windows (p >= threshold) of one video merged into intervals.

    ``"windows"``: the union of overlapping or touching positive windows. ``"middles"``:
    each positive window stands for the ``stride`` frames around its middle frame (the
    apex), and touching ones merge, so the interval spans the positive apexes.
    """
    starts = np.asarray(starts, np.int64)
    if merge == "windows":
        return merge_window_proposals(starts, length, probs, threshold, n_frames=n_frames)
    if merge == "middles":
        # stride <= L, so the blocks start inside the video; their middles are the apexes
        return merge_window_proposals(starts + length // 2 - stride // 2, stride, probs, threshold,
                                      n_frames=n_frames)
    raise ValueError(f"merge={merge!r}: use one of {MERGES}")


def predictions(prep: Prepared, run: SpotRun, threshold: float, merge: str) -> pd.DataFrame:
    """Spotted micro-expression intervals of every scored video."""
    parts = []
    for video, probs in run.probs.items():
        w = prep.windows[video]
        spotted = spot_video(w.starts, prep.length, prep.stride, probs, threshold, merge, w.n_frames)
        parts.append(spotted.assign(video=video, type="micro"))
    if not parts:
        return pd.DataFrame(columns=["onset", "offset", "apex", "score", "video", "type"])
    return pd.concat(parts, ignore_index=True)


def score_run(prep: Prepared, run: SpotRun, setup: DynGeoSetup, threshold: float | None = None,
              merge: str | None = None):
    """The MEGC result (micro rows) of one run, on the videos it scored."""
    pred = predictions(prep, run, setup.threshold if threshold is None else threshold, merge or setup.merge)
    gt = prep.gt[prep.gt["video"].isin(list(run.probs)) & (prep.gt["type"] == "micro")]
    return evaluate_spotting(pred[["video", "onset", "offset", "type", "score"]],
                             gt[["video", "onset", "offset", "type"]], iou_threshold=0.5, types=["micro"])


def evaluate(prepared: dict, runs: dict, setup: DynGeoSetup) -> pd.DataFrame:
    """TP, FP, FN, precision, recall and F1 (micro, IoU >= 0.5) of every run."""
    rows = []
    for run in runs.values():
        r = score_run(prepared[run.dataset], run, setup).table.loc["micro"]
        rows.append({"dataset": DATASET_LABELS.get(run.dataset, run.dataset), "protocol": run.protocol,
                     "network": run.method, "GT": int(r["n_gt"]), "TP": int(r["TP"]), "FP": int(r["FP"]),
                     "FN": int(r["FN"]), "precision": _round(r["precision"]), "recall": _round(r["recall"]),
                     # no micro-expression to find: F1 would only count the false positives
                     "F1": _round(r["F1"]) if r["n_gt"] else np.nan})
    columns = ["dataset", "protocol", "network", "GT", "TP", "FP", "FN", "precision", "recall", "F1"]
    table = pd.DataFrame(rows, columns=columns).set_index(["dataset", "protocol", "network"])
    table.attrs["ours"] = ours_label(setup)
    return table


def _round(value, digits: int = 4):
    return np.nan if value is None or pd.isna(value) else round(float(value), digits)


def spotting_results(prepared: dict, runs: dict, setup: DynGeoSetup, branch: str | None = None) -> dict:
    """``{dataset: SpottingResult}`` of the LOSO runs of one branch (the chosen one by
    default), for :func:`melib.book.spotting_numbers`."""
    branch = branch or setup.branch
    return {name: _nan_without_truth(score_run(prepared[name], run, setup)) for (name, b), run in runs.items()
            if b == branch and run.protocol == "LOSO"}


def _nan_without_truth(result):
    """F1 is NaN (not 0) for a type with no annotated interval among the scored videos."""
    from dataclasses import replace

    table = result.table.copy()
    table.loc[table["n_gt"] == 0, "F1"] = np.nan
    return replace(result, table=table)


def cross_numbers(results: pd.DataFrame, setup: DynGeoSetup) -> dict:
    """``{setup_<x>_f1, setup_<x>_vgg16_f1}``: our F1 of each cross-database setup run."""
    out = {}
    for cross in setup.cross_setups:
        ours = results.xs(cross, level="protocol").droplevel("dataset")["F1"]
        out[f"setup_{cross.lower()}_f1"] = ours.get(BRANCH_NAMES[setup.branch], np.nan)
        out[f"setup_{cross.lower()}_vgg16_f1"] = ours.get("VGG16 (frames)", np.nan)
    return out


def window_metrics(runs: dict, prepared: dict, threshold: float = 0.5) -> pd.DataFrame:
    """Window-level accuracy of the classifier itself (before merging): positives,
    predicted positives, recall and precision of the positive windows."""
    rows = []
    for run in runs.values():
        y = np.concatenate([prepared[run.dataset].windows[v].labels for v in run.probs])
        p = np.concatenate([run.probs[v] for v in run.probs]) >= threshold
        tp = int((y.astype(bool) & p).sum())
        rows.append({"dataset": DATASET_LABELS.get(run.dataset, run.dataset), "protocol": run.protocol,
                     "network": run.method, "windows": len(y), "positive": int(y.sum()),
                     "predicted positive": int(p.sum()),
                     "window recall": _round(tp / y.sum()) if y.sum() else np.nan,
                     "window precision": _round(tp / p.sum()) if p.sum() else np.nan})
    return pd.DataFrame(rows).set_index(["dataset", "protocol", "network"])


NOT_REPORTED = "not reported"
NO_MICRO = "no micro-expressions in the test set"


def published(value) -> str:
    """A paper value as printed there (0.05012 stays 0.05012); its "-" reads "not reported"."""
    return NOT_REPORTED if value is None else repr(value)


def ours_label(setup: DynGeoSetup) -> str:
    """How our rows are labelled, so that a table glued out of context still says when its
    numbers come from the synthetic corpus."""
    return f"ours (synthetic '{setup.limits.corpus}')" if setup.data_root is None else "ours"


def _ours_f1(row) -> str:
    if "GT" in row and row["GT"] == 0:
        return NO_MICRO
    return "nan" if pd.isna(row["F1"]) else f"{float(row['F1']):.4f}"


def table1(results: pd.DataFrame, datasets, ours: str | None = None) -> pd.DataFrame:
    """The paper's Table 1 (F1 per dataset, its digits) for the datasets run, our LOSO rows
    beneath, labelled ``ours`` (default: what :func:`evaluate` recorded, e.g. "ours
    (synthetic 'book')"). Cells are text: "not reported" where the paper prints "-",
    "no micro-expressions in the test set" where F1 would be meaningless."""
    datasets = list(datasets)
    ours = ours or results.attrs.get("ours", "ours")
    cols = [DATASET_LABELS[d] for d in datasets]
    rows = {f"paper: {method}": [published(values[d]) for d in datasets] for method, values in PAPER_TABLE1.items()}
    loso_rows = results.xs("LOSO", level="protocol") if "LOSO" in results.index.get_level_values("protocol") \
        else results.iloc[:0].droplevel("protocol")
    for network in [BRANCH_NAMES[b] for b in ("dyn", "geo", "fusion")]:
        if network in loso_rows.index.get_level_values("network"):
            mine = loso_rows.xs(network, level="network")
            rows[f"{ours}: {network}"] = [_ours_f1(mine.loc[c]) if c in mine.index else "not run" for c in cols]
    return pd.DataFrame(rows, index=cols).T


def table2(results: pd.DataFrame, setups, ours: str | None = None) -> pd.DataFrame:
    """Table 2 (TP, FP, FN, F1 per setup): the paper's two rows (its digits) and ours for
    each setup, ours labelled as in :func:`table1`."""
    ours = ours or results.attrs.get("ours", "ours")
    rows = []
    for cross in setups:
        test = DATASET_LABELS[CROSS_DATASET_SETUPS[cross]["test"]]
        for method in ("VGG16 [20]", "DynGeoNet"):
            tp, fp, fn, f1 = PAPER_TABLE2[(method, cross)]
            rows.append({"setup": cross, "source": "paper", "method": method, "test set": test,
                         "TP": tp, "FP": fp, "FN": fn, "F1-score": published(f1)})
        if cross in results.index.get_level_values("protocol"):
            for (dataset, network), r in results.xs(cross, level="protocol").iterrows():
                rows.append({"setup": cross, "source": ours, "method": network, "test set": dataset,
                             "TP": int(r["TP"]), "FP": int(r["FP"]), "FN": int(r["FN"]), "F1-score": _ours_f1(r)})
    columns = ["setup", "source", "method", "test set", "TP", "FP", "FN", "F1-score"]
    return pd.DataFrame(rows, columns=columns).set_index(["setup", "source", "method"])


def merge_comparison(prepared: dict, runs: dict, setup: DynGeoSetup) -> pd.DataFrame:
    """F1 of the same scores merged both ways (no retraining): how much of the result the
    interval rule decides."""
    rows = []
    for (name, branch), run in runs.items():
        if branch != setup.branch:
            continue
        row = {"dataset": DATASET_LABELS.get(name, name), "network": run.method}
        for merge in MERGES:
            r = score_run(prepared[name], run, setup, merge=merge).table.loc["micro"]
            row[f"F1 ({merge})"] = _round(r["F1"])
            row[f"TP/FP ({merge})"] = f"{int(r['TP'])}/{int(r['FP'])}"
        rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "network"])


# ---------------------------------------------------------------------------- figures


def pick_windows(prep: Prepared, n_micro: int = 2, n_other: int = 2, seed: int = 0) -> list[dict]:
    """Windows to show: ``n_micro`` whose middle is a micro-expression's apex region (the
    ones nearest to annotated apexes) and ``n_other`` negatives (one inside a
    macro-expression when there is one, the rest neutral)."""
    rng = np.random.default_rng(seed)
    picked = []
    micro = prep.gt[prep.gt["type"] == "micro"].sort_values(["video", "onset"])
    for row in micro.itertuples():
        if len(picked) >= n_micro:
            break
        w = prep.windows[row.video]
        middles = w.starts + prep.length // 2
        i = int(np.argmin(np.abs(middles - int(row.apex))))
        if w.labels[i]:
            picked.append({"video": row.video, "row": i, "kind": "micro"})
    macro = prep.gt[prep.gt["type"] == "macro"].sort_values(["video", "onset"])
    for row in macro.itertuples():
        w = prep.windows[row.video]
        i = int(np.argmin(np.abs(w.starts + prep.length // 2 - int(row.apex))))
        if not w.labels[i]:
            picked.append({"video": row.video, "row": i, "kind": "macro (negative)"})
            break
    videos = list(prep.videos["video"])
    for _ in range(100 * (n_micro + n_other)):  # bounded: a video may have no neutral window
        if len(picked) >= n_micro + n_other:
            break
        video = videos[int(rng.integers(len(videos)))]
        w = prep.windows[video]
        middles = w.starts + prep.length // 2
        inside = np.zeros(len(middles), bool)
        for onset, offset in prep.gt.loc[prep.gt["video"] == video, ["onset", "offset"]].to_numpy():
            inside |= (middles >= onset - prep.length) & (middles <= offset + prep.length)
        free = np.flatnonzero(~inside)
        if len(free):
            picked.append({"video": video, "row": int(rng.choice(free)), "kind": "neutral"})
    for p in picked:
        w = prep.windows[p["video"]]
        p["start"] = int(w.starts[p["row"]])
        p["title"] = f"{p['kind']}\n{p['video'][:16]} @{p['start']}"
    return picked


def window_frames(prep: Prepared, video: str, start: int) -> np.ndarray:
    """The gray frames of one window (L, H, W)."""
    return np.stack(list(prep.dataset.iter_frames(video, start, start + prep.length, gray=True)))


def dynamic_image_examples(prep: Prepared, setup: DynGeoSetup, picked: list[dict]) -> list[dict]:
    """For each picked window: its onset frame, its region dynamic images (as computed
    for the network, from the frames) and the cached network input."""
    from melib import face
    from melib.features.dynamic_image import region_dynamic_images

    out = []
    for p in picked:
        w = prep.windows[p["video"]]
        frames = window_frames(prep, p["video"], p["start"])
        margin = region_margin(prep.spec, face.track_video(prep.dataset, p["video"]).box)
        with np.load(window_files(prep.dataset, p["video"], prep.spec)[2]) as z:
            marks = z["onset_marks"][p["row"]]
        regions = region_dynamic_images(frames, marks, size=setup.input_size, margin=margin, variant=setup.variant)
        out.append({"title": p["title"], "kind": p["kind"], "frame": frames[0], "regions": regions,
                    "composite": np.asarray(w.dynamic[p["row"]], np.float32)})
    return out


def dynamic_image_figure(prep: Prepared, setup: DynGeoSetup, picked: list[dict] | None = None):
    """Dynamic images of micro-expression windows beside non-micro ones: per window, its
    onset frame, the eye, nose and mouth dynamic images and the composite input."""
    from melib.visualization.dyngeonet import plot_dynamic_images

    picked = picked or pick_windows(prep, seed=setup.seed)
    panels = []
    for ex in dynamic_image_examples(prep, setup, picked):
        panels.append((ex["frame"], ex["title"]))
        panels += [(image, f"{name} DI") for name, image in ex["regions"].items()]
        panels.append((ex["composite"], "network input"))
    fig = plot_dynamic_images(panels, ncols=5, size=1.9)
    fig.suptitle(f"{DATASET_LABELS.get(prep.name, prep.name)}: windows of L={prep.length} frames "
                 f"(alpha_t {'2t-T-1' if setup.variant == 'bilen' else '2t-T+1'})", fontsize=10)
    fig.tight_layout()
    return fig


def landmark_figure(prep: Prepared, picked: list[dict]):
    """The seed's figure 2: the 45 lines on the onset and apex frames of a micro window."""
    import matplotlib.pyplot as plt

    from melib import face
    from melib.visualization.dyngeonet import plot_landmark_lines

    p = next((q for q in picked if q["kind"] == "micro"), picked[0])
    track = face.track_video(prep.dataset, p["video"])
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 4))
    for ax, (what, index) in zip(axes, (("onset (first frame)", p["start"]),
                                        ("apex (middle frame)", p["start"] + prep.length // 2))):
        image = prep.dataset.read_frame(p["video"], index, gray=True)
        plot_landmark_lines(image, face.landmarks(image, track.box), ax=ax)
        ax.set_title(f"{what}: frame {index}", fontsize=9)
    fig.suptitle(f"{DATASET_LABELS.get(prep.name, prep.name)} {p['video']}: the 45 lines of the ratio features",
                 fontsize=10)
    fig.tight_layout()
    return fig


def geometry_figure(prepared: dict):
    """The 67 geometric values (ratio - 1 and deform) averaged over positive and negative
    windows of each dataset: where a micro-expression moves the landmarks."""
    import matplotlib.pyplot as plt

    from melib.features.geometry import N_RATIOS, feature_names

    names = feature_names()
    fig, axes = plt.subplots(len(prepared), 1, figsize=(12, 2.3 * len(prepared)), squeeze=False)
    for ax, (name, prep) in zip(axes[:, 0], prepared.items()):
        geo = np.concatenate([w.geometry for w in prep.windows.values()]).astype(np.float64)
        y = np.concatenate([w.labels for w in prep.windows.values()]).astype(bool)
        shown = geo.copy()
        shown[:, :N_RATIOS] = np.abs(shown[:, :N_RATIOS] - 1.0)
        x = np.arange(len(names))
        for mask, label, color in ((~y, "other windows", "0.6"), (y, "micro windows", "tab:red")):
            if mask.any():
                ax.bar(x + (0.2 if label.startswith("micro") else -0.2), shown[mask].mean(axis=0), width=0.4,
                       color=color, label=f"{label} ({int(mask.sum())})")
        ax.axvline(N_RATIOS - 0.5, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("mean |ratio-1| / deform", fontsize=7)
        ax.set_title(DATASET_LABELS.get(name, name), fontsize=9)
        ax.legend(fontsize=7)
        ax.set_xticks(x[::3])
        ax.set_xticklabels(names[::3], rotation=90, fontsize=6)
    fig.tight_layout()
    return fig


def loss_figure(runs: dict):
    """Training loss per epoch of every fold, as a grid: one row per dataset (and
    protocol), one column per network."""
    import matplotlib.pyplot as plt

    from melib.visualization.training import plot_loss_curves

    rows = list(dict.fromkeys((run.dataset, run.protocol) for run in runs.values()))
    cols = list(dict.fromkeys(run.method for run in runs.values()))
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(3.4 * len(cols), 2.4 * len(rows)), squeeze=False,
                             sharey=True)
    for ax in axes.ravel():
        ax.set_visible(False)
    for run in runs.values():
        ax = axes[rows.index((run.dataset, run.protocol)), cols.index(run.method)]
        ax.set_visible(True)
        where = DATASET_LABELS.get(run.dataset, run.dataset)
        plot_loss_curves(run.histories, ax=ax, title=f"{where} ({run.protocol}): {run.method}")
        ax.title.set_fontsize(8)
    fig.tight_layout()
    return fig


def frame_curve(starts, length: int, probs, n_frames: int) -> np.ndarray:
    """Window probabilities placed at their middle frames and interpolated between them."""
    middles = np.asarray(starts) + length // 2
    if not len(middles):
        return np.zeros(n_frames)
    return np.interp(np.arange(n_frames), middles, np.asarray(probs, np.float64))


def best_video(prep: Prepared, run: SpotRun) -> str:
    """The scored video with the most micro-expressions (ties: name order)."""
    counts = prep.gt[(prep.gt["type"] == "micro") & prep.gt["video"].isin(list(run.probs))]["video"].value_counts()
    if counts.empty:
        return sorted(run.probs)[0]
    return sorted(counts[counts == counts.max()].index)[0]


def timeline_figure(prepared: dict, runs: dict, setup: DynGeoSetup, branch: str | None = None):
    """For each dataset, the held-out video with the most micro-expressions: window
    probabilities (at each window's middle frame), the threshold, the micro-expressions
    (green) and the spotted intervals (red) of one network (the chosen branch)."""
    import matplotlib.pyplot as plt

    from melib.visualization.training import plot_score_timeline

    branch = branch or setup.branch
    chosen = [(name, run) for (name, b), run in runs.items() if b == branch]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(11, 2.5 * len(chosen)), squeeze=False)
    for ax, (name, run) in zip(axes[:, 0], chosen):
        prep = prepared[name]
        video = best_video(prep, run)
        w = prep.windows[video]
        spotted = spot_video(w.starts, prep.length, prep.stride, run.probs[video], setup.threshold, setup.merge,
                             w.n_frames)
        plot_score_timeline(frame_curve(w.starts, prep.length, run.probs[video], w.n_frames),
                            threshold=setup.threshold, truth=[tuple(r) for r in prep.micro(video)],
                            spotted=list(zip(spotted["onset"], spotted["offset"])), ax=ax,
                            title=f"{DATASET_LABELS.get(name, name)} {video}: {run.method} (L={prep.length})",
                            fps=prep.dataset.fps)
        ax.set_ylim(-0.05, 1.05)
    fig.tight_layout()
    return fig


def _cam_run(runs: dict, setup: DynGeoSetup, dataset: str | None):
    for (name, branch), run in runs.items():
        if branch in ("fusion", "dyn") and (dataset is None or name == dataset) and branch == setup.branch:
            return name, run
    for (name, branch), run in runs.items():
        if branch in ("fusion", "dyn") and (dataset is None or name == dataset):
            return name, run
    raise ValueError("Grad-CAM needs a run with the VGG branch (branch 'fusion' or 'dyn')")


def cam_windows(prep: Prepared, run: SpotRun, n: int = 4) -> tuple[str, list]:
    """The fold with the most micro windows and its ``n`` highest-scoring positive windows
    (one per expression where possible)."""
    counts = {}
    for video, fold in run.fold_of.items():
        counts[fold] = counts.get(fold, 0) + int(prep.windows[video].labels.sum())
    fold = sorted(counts, key=lambda f: (-counts[f], f))[0]
    chosen = []
    for video, f in sorted(run.fold_of.items()):
        if f != fold:
            continue
        w = prep.windows[video]
        for i in np.flatnonzero(w.labels > 0):
            chosen.append((float(run.probs[video][i]), video, int(i)))
    chosen.sort(key=lambda t: (-t[0], t[1], t[2]))
    picked = []
    for score, video, i in chosen:
        if any(v == video and abs(int(prep.windows[v].starts[j]) - int(prep.windows[video].starts[i])) < prep.length
               for _, v, j in picked):
            continue
        picked.append((score, video, i))
        if len(picked) == n:
            break
    return fold, picked


def gradcam_figure(prepared: dict, runs: dict, setup: DynGeoSetup, dataset: str | None = None, n: int = 4):
    """Grad-CAM on the VGG branch's last convolution for the top-scoring micro windows of
    one held-out fold (the logit is the target: warm = raises the micro score).
    Without a VGG-branch run (GeoNet alone) it says so and returns None."""
    from melib.models.dyngeonet import DynamicView, gradcam_layer, unpack_inputs
    from melib.visualization.cams import grad_cam, plot_cams

    if not any(branch in ("fusion", "dyn") for _, branch in runs):
        print("No Grad-CAM: only GeoNet ran (branch='geo' without ablations), and it has no image branch.")
        return None
    name, run = _cam_run(runs, setup, dataset)
    prep = prepared[name]
    fold, picked = cam_windows(prep, run, n)
    if not picked:
        raise ValueError(f"no micro-expression windows in fold {fold} of {name} to explain")
    model = load_fold_model(setup, run, fold)
    sets = [video_windows(prep.windows[v], "packed", run.stats[fold]) for _, v, _ in picked]
    x = torch.from_numpy(np.stack([s.input(i) for s, (_, _, i) in zip(sets, picked)]))
    dynamic, geometry = unpack_inputs(x, model.input_size, model.geo_dim)
    with cpu_threads(1):
        cams = grad_cam(DynamicView(model, geometry), dynamic, gradcam_layer(model))
    images = dynamic.numpy().transpose(0, 2, 3, 1)
    titles = [f"{v[:14]}\n@{int(prep.windows[v].starts[i])} p={s:.2f}" for s, v, i in picked]
    fig = plot_cams(images, {"Grad-CAM (VGG branch)": cams}, row_titles=titles,
                    image_title="input (eyes, nose, mouth)")
    fig.suptitle(f"{DATASET_LABELS.get(name, name)} {run.method}, fold {fold}", fontsize=9)
    fig.tight_layout()
    return fig


def fused_embedding(prep: Prepared, run: SpotRun, setup: DynGeoSetup, max_points: int = 600):
    """Fused features (or the branch's features) of one fold's held-out windows,
    labelled micro / macro / neutral by the window's middle frame."""
    from melib.visualization.embedding import subsample

    fold, _ = cam_windows(prep, run, 0)
    model = load_fold_model(setup, run, fold)
    stats = run.stats[fold]
    feats, labels = [], []
    for video in sorted(v for v, f in run.fold_of.items() if f == fold):
        w = prep.windows[video]
        middles = w.starts + prep.length // 2
        label = np.full(len(middles), "neutral", dtype=object)
        for kind in ("macro", "micro"):  # micro last: it wins where both overlap
            for onset, offset in prep.gt.loc[(prep.gt["video"] == video) & (prep.gt["type"] == kind),
                                             ["onset", "offset"]].to_numpy():
                label[(middles >= onset) & (middles <= offset)] = kind
        feats.append((video, len(middles)))
        labels.append(label)
    labels_all = np.concatenate(labels)
    keep = subsample(labels_all, max_points, setup.seed)
    out, offset = [], 0
    for video, count in feats:
        rows = keep[(keep >= offset) & (keep < offset + count)] - offset
        if len(rows):
            data = WindowSet([prep.windows[video]], np.zeros(len(rows)), rows, np.zeros(len(rows)), "packed", *stats)
            out.append(predict(model, data, method="embed", device=setup.device))
        offset += count
    return fold, np.concatenate(out), labels_all[keep]


def tsne_figure(prepared: dict, runs: dict, setup: DynGeoSetup):
    """t-SNE of the fused DynGeoNet features (the chosen branch's features for the
    ablations) of one held-out fold per dataset."""
    import matplotlib.pyplot as plt

    from melib.visualization.embedding import plot_embedding, tsne

    chosen = [(name, run) for (name, branch), run in runs.items() if branch == setup.branch]
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.6 * len(chosen), 4.1), squeeze=False)
    palette = {"neutral": "0.7", "micro": "tab:red", "macro": "tab:blue"}
    for ax, (name, run) in zip(axes[0], chosen):
        fold, feats, labels = fused_embedding(prepared[name], run, setup, setup.limits.tsne_points)
        xy = tsne(feats, seed=setup.seed, max_iter=setup.limits.tsne_iter)
        plot_embedding(xy, labels, ax=ax, palette=palette,
                       order=[c for c in ("neutral", "macro", "micro") if c in set(labels)],
                       title=f"{DATASET_LABELS.get(name, name)}, fold {fold} ({len(labels)} windows)")
        ax.title.set_fontsize(9)
    fig.suptitle(f"t-SNE of the {BRANCH_NAMES[setup.branch]} features before the classifier", fontsize=10)
    fig.tight_layout()
    return fig
