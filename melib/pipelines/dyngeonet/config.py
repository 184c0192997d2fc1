"""DynGeoNet's numbers, profiles and the resolved run (:class:`Setup`, :func:`configure`).

Where the paper (Tran, Vo & Zhao 2021) is silent, what we chose (each is a parameter)
-----------------------------------------------------------------------------------
* Window length L: the paper's 11 / 35 / 65 frames at 30 / 100 / 200 fps (section 4.1,
  :func:`window_length`; other frame rates get the odd number nearest 0.35 s). Windows
  start every ``stride`` frames (the paper slides by 1).
* Positive windows (``positive_rule``): ``"middle"`` (default) labels a window positive
  when its middle frame, the apex in the paper's reading, lies inside a
  micro-expression; ``"iou"`` when its IoU with one reaches ``positive_iou``.
  Macro-expressions are negatives: the paper spots micro-expressions only.
* Intervals (``merge``): ``"windows"`` (default, the paper's words) merges overlapping
  positive windows into their union; ``"middles"`` keeps the span of the positive
  windows' middle frames (each standing for ``stride`` frames), which is what the
  ``"middle"`` label describes. Windows are positive at probability >= ``threshold``.
* Dynamic images: Bilen et al.'s alpha_t = 2t - T - 1 (``variant="bilen"``, default;
  the paper prints 2t - T + 1, ``variant="as_printed"``); the regions follow the
  window's onset landmarks, stacked eyes / nose / mouth into one image
  (:mod:`melib.features.dynamic_image`). No in-plane face alignment.
* Geometry: the paper's 45 ratios and 22 deform distances (section 3.3,
  :mod:`melib.features.geometry`), deform divided by the inter-ocular distance; each of
  the 67 values is standardised with the training fold's mean and spread before the MLP
  (ours: the raw ratios sit near 1 with differences of 1e-2).
* Training: SGD at the paper's lr 1e-4 with momentum 0.9 and batch 16 (the paper gives
  neither), BCE on one logit, 100 epochs in ``full``; weights from scratch unless
  ``vgg_weights`` names a local file. Every positive window is kept; negatives are
  subsampled to ``negatives_per_positive`` per positive (``"all"``: every one, the paper).
* The VGG16 baseline of Table 2 (the CNN idea of the paper's refs [20, 26]) classifies
  the window's apex face crop (gray, repeated on 3 channels) with the same training.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from melib.evaluation.protocols import CROSS_DATASET_SETUPS
from melib.features.dyngeonet_windows import WindowSpec
from melib.pipelines import common
from melib.pipelines.common import dataset_label
from melib.training import TrainConfig

__all__ = [
    "DATASETS",
    "BRANCHES",
    "BRANCH_NAMES",
    "POSITIVE_RULES",
    "MERGES",
    "VARIANTS",
    "SETUPS",
    "CACHE_VERSION",
    "PAPER_L_BY_FPS",
    "PAPER_L",
    "PAPER_LR",
    "PAPER_EPOCHS",
    "PLUMBING_MAX_WINDOWS",
    "window_length",
    "predict_batch",
    "Profile",
    "PROFILES",
    "Setup",
    "silent_choices",
    "caveats",
]

DATASETS = ("casme_sq", "samm_lv", "smic_e_long")
BRANCHES = ("fusion", "dyn", "geo")
BRANCH_NAMES = {"fusion": "DynGeoNet", "dyn": "DynNet", "geo": "GeoNet"}
POSITIVE_RULES = ("middle", "iou")
MERGES = ("windows", "middles")
VARIANTS = ("bilen", "as_printed")
SETUPS = tuple(CROSS_DATASET_SETUPS)
CACHE_VERSION = 1
VGG_CHANNEL_DIVISORS = (1, 2, 4, 8, 16, 32, 64)
FPS = {"casme_sq": 30, "samm_lv": 200, "smic_e_long": 100}

# ------------------------------------------------------------------ the paper's numbers

# Section 4.1: window length per frame rate (CAS(ME)² 30 fps, SMIC-E-Long 100, SAMM-LV 200).
PAPER_L_BY_FPS = {30: 11, 100: 35, 200: 65}
PAPER_L = {"casme_sq": 11, "smic_e_long": 35, "samm_lv": 65}
# Section 4.1: SGD at lr 1e-4 for 100 epochs.
PAPER_LR = 1e-4
PAPER_EPOCHS = 100


def window_length(fps: float) -> int:
    """The paper's L for a frame rate: 11 at 30 fps, 35 at 100, 65 at 200; any other
    rate gets the odd number of frames nearest 0.35 s (about the paper's durations)."""
    fps = float(fps)
    for known, length in PAPER_L_BY_FPS.items():
        if abs(fps - known) < 1e-6:
            return length
    n = max(3, int(round(0.35 * fps)))
    return n if n % 2 else n + 1


# A plumbing run (limit_steps set) keeps every setting of its profile (VGG-16 at 224 px in
# ``full``, stride 1, every negative) but, beside the caps every paper shares (the tiny
# corpus, 2 LOSO folds, 2 videos per dataset; melib.pipelines.common), scores and trains
# on a block of at most this many consecutive windows per video, runs the DynNet / GeoNet
# ablations on the first dataset only and one cross-database setup: a 224 px VGG-16 step
# takes about a minute on a shared 2-core CPU.
PLUMBING_MAX_WINDOWS = 8


def predict_batch(input_size: int, small: int = 256) -> int:
    """Windows per scoring batch: ``small`` up to 64 px, fewer for larger inputs (as many
    pixels as 256 windows of 64 px), so that a 224 px VGG-16 never holds hundreds of
    inputs' activations at once (20 windows at 224 px)."""
    return small if input_size <= 64 else max(16, 256 * 64 * 64 // (input_size * input_size))


# ------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile(common.BaseProfile):
    """What a profile caps. ``None`` means no cap (the paper's value)."""

    datasets: tuple
    input_size: int  # VGG input side (px); the paper's VGG-16 takes 224
    vgg_channels: int  # VGG conv channel divisor (1: VGG-16's 64..512 channels)
    vgg_width: int  # fc6/fc7 width (VGG-16: 4096)
    # BatchNorm after each conv (VGG-16-BN); the plain branch does not train on CPU budgets
    vgg_batch_norm: bool
    max_epochs: int | None
    strides: dict  # window start step per dataset (frames); the paper slides by 1
    negatives_per_positive: float | None
    max_folds: int | None  # None: one fold per subject
    cross_setups: tuple
    ablations: bool = True
    lr: float = PAPER_LR  # SGD step when the caller gives none
    tsne_points: int = 600
    tsne_iter: int = 500


# fmt: off
PROFILES = {
    # CI: the tiny corpus, 32 px inputs to a VGG-16 with an eighth of its channels, 2 epochs.
    "smoke": Profile(corpus="tiny", datasets=DATASETS, input_size=32, vgg_channels=8, vgg_width=256,
                     vgg_batch_norm=True, max_epochs=2,
                     strides={"casme_sq": 2, "samm_lv": 16, "smic_e_long": 4}, negatives_per_positive=1.0,
                     max_folds=2, cross_setups=("C",), lr=1e-2, tsne_points=200, tsne_iter=250),
    # The book (15 min on 2 CPU cores): 64 px inputs, VGG-16-BN with an eighth of its
    # channels, strided windows, one negative per positive, 3 LOSO folds, 16 epochs at
    # lr 1e-2 (at the paper's 1e-4, or 1e-3, the loss did not move in 30-40 epochs).
    "book": Profile(corpus="book", datasets=DATASETS, input_size=64, vgg_channels=8, vgg_width=512,
                    vgg_batch_norm=True, max_epochs=16,
                    strides={"casme_sq": 2, "samm_lv": 8, "smic_e_long": 4}, negatives_per_positive=1.0,
                    max_folds=3, cross_setups=SETUPS, lr=1e-2),
    # Paper scale (a GPU): VGG-16 at 224 px, every window, every negative, 100 epochs.
    "full": Profile(corpus="full", datasets=DATASETS, input_size=224, vgg_channels=1, vgg_width=4096,
                    vgg_batch_norm=False, max_epochs=None, strides={}, negatives_per_positive=None,
                    max_folds=None, cross_setups=SETUPS, tsne_points=3000, tsne_iter=1000),
}
# fmt: on


@dataclass
class Setup(common.BaseSetup):
    """The resolved run: notebook parameters after the profile's caps."""

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
    limit_steps: int | None
    limits: Profile

    def spec(self, dataset: str) -> WindowSpec:
        return WindowSpec(
            length=self.lengths[dataset],
            stride=self.strides[dataset],
            size=self.input_size,
            variant=self.variant,
            max_windows=PLUMBING_MAX_WINDOWS if common.is_plumbing(self) else None,
        )

    def ablation_datasets(self) -> tuple:
        """The datasets the ablations (DynNet / GeoNet) run on: every one, or the first in a
        plumbing run."""
        return self.datasets[:1] if common.is_plumbing(self) else self.datasets

    def describe(self) -> pd.DataFrame:
        """What runs, beside the paper's setting."""
        names = ", ".join(dataset_label(d) for d in self.datasets)
        rows = [
            ("datasets", names, "CAS(ME)², SAMM-LV, SMIC-E-Long"),
            (
                "data",
                str(self.data_root) if self.data_root else f"synthetic corpus '{self.limits.corpus}'",
                "real datasets",
            ),
            (
                "window L (frames)",
                ", ".join(f"{dataset_label(d)} {self.lengths[d]}" for d in self.datasets),
                "11 (30 fps), 35 (100 fps), 65 (200 fps)",
            ),
            ("window stride", ", ".join(f"{dataset_label(d)} {self.strides[d]}" for d in self.datasets), "1"),
            ("apex", "middle frame of the window", "middle frame (L/2)"),
            (
                "positive window",
                self.positive_rule
                + (
                    f" (IoU >= {self.positive_iou})"
                    if self.positive_rule == "iou"
                    else " (middle frame inside a micro-expression)"
                ),
                "not stated",
            ),
            (
                "dynamic image",
                f"alpha_t {'2t-T-1 (Bilen)' if self.variant == 'bilen' else '2t-T+1 (as printed)'}, "
                "eyes / nose / mouth",
                "alpha_t = 2t-T+1 (printed), eye / nose / mouth",
            ),
            (
                "geometry",
                "45 ratios + 22 deform / inter-ocular dist. (onset: first, apex: middle frame), "
                "standardised per fold",
                "45 ratios + 22 deform (pixels)",
            ),
            (
                "network",
                f"{BRANCH_NAMES[self.branch]}; VGG-16 at {self.input_size} px, conv channels "
                f"/ {self.vgg_channels}, fc6/fc7 {self.vgg_width}"
                + (", BatchNorm" if self.vgg_batch_norm else ""),
                "DynGeoNet, VGG-16 (224 px, fc 4096)",
            ),
            ("ablations", ", ".join(BRANCH_NAMES[b] for b in self.ablations) or "none", "DynNet, GeoNet"),
            ("weights", self.vgg_weights or "from scratch", "not stated"),
            (
                "optimiser",
                f"SGD lr {self.train.lr:g}, momentum {self.train.momentum:g}, batch {self.train.batch_size}",
                "SGD, lr 1e-4 (momentum, batch not stated)",
            ),
            ("MLP / head widths", "geometry 67-128-128, head 256, dropout 0.5", "not stated"),
            ("loss", "BCE", "BCE"),
            ("epochs", str(self.train.epochs), "100"),
            (
                "negatives per positive",
                "all" if self.negatives_per_positive is None else f"{self.negatives_per_positive:g}",
                "not stated (all)",
            ),
            (
                "LOSO folds",
                "one per subject" if self.max_folds is None else f"{self.max_folds} subject groups",
                "one per subject",
            ),
            (
                "intervals",
                ("union of positive windows" if self.merge == "windows" else "span of positive apexes")
                + f" (p >= {self.threshold:g})",
                "positive windows merged",
            ),
            ("cross-database", ", ".join(self.cross_setups) or "none", "A, B, C"),
            ("metric", "MEGC F1, IoU >= 0.5", "F1, IoU 0.5"),
        ]
        if self.limit_steps is not None:
            rows.append(("optimiser steps", f"at most {self.limit_steps} per training", "every epoch"))
            rows.append(
                (
                    "plumbing caps",
                    f"{common.PLUMBING_MAX_VIDEOS} videos per dataset, a block of {PLUMBING_MAX_WINDOWS} "
                    "windows per video"
                    + (f", ablations on {dataset_label(self.datasets[0])} only" if self.ablations else ""),
                    "every video and window",
                )
            )
        return pd.DataFrame(rows, columns=["setting", "this run", "paper"]).set_index("setting")


def silent_choices(setup: Setup) -> list[str]:
    """What we chose where the paper says nothing (each holds in every profile)."""
    from melib.models.dyngeonet import vgg_pool_size

    pool = vgg_pool_size(setup.input_size)
    lines = [
        "Deform (22 landmark displacements) divided by the onset's inter-ocular distance "
        "(the paper gives pixels; the datasets film faces at different sizes)",
        "the 67 geometric values standardised with each training fold's mean and spread before the MLP",
        "the 12th mouth line read literally as (60, 61), the paper's 'i from 49 to 60' "
        "(not the closing edge (60, 49))",
        "MLP on the geometry 67 -> 128 -> 128 and fused head -> 256 -> 1 logit, dropout 0.5 "
        "(no widths in the paper)",
        "positive window: "
        + (
            "middle frame inside a micro-expression"
            if setup.positive_rule == "middle"
            else f"IoU >= {setup.positive_iou:g} with one"
        )
        + "; "
        "macro-expressions are negatives",
        "intervals: "
        + (
            "union of overlapping positive windows"
            if setup.merge == "windows"
            else "span of the positive windows' middle frames"
        )
        + ", "
        f"a window positive at probability >= {setup.threshold:g}",
        f"SGD momentum {setup.train.momentum:g} and batch {setup.train.batch_size}",
    ]
    if pool != 7:
        maps = setup.input_size // 32
        lines.append(
            f"fc6 reads the last conv maps adaptively pooled to {pool}x{pool} (VGG-16 at 224 px: 7x7), "
            f"since a {setup.input_size} px input leaves {maps}x{maps} maps"
        )
    return lines


def caveats(setup: Setup) -> str:
    """Plain-language list of where this run departs from the paper, tagged by who set
    it (a parameter or the profile's caps), then what we chose where the paper is silent
    (printed beside the results)."""
    lines = []
    if setup.data_root is None:
        lines.append(
            f"- data: melib's synthetic corpus '{setup.limits.corpus}' (not real-dataset results); "
            "every network is trained from scratch on it"
        )
    lines += [
        f"- {what}: {ours} instead of {paper} ({why})" for what, (paper, ours, why) in setup.caps.items()
    ]
    if setup.variant == "bilen":
        lines.append("- dynamic image weights: Bilen et al.'s 2t - T - 1 (the paper prints 2t - T + 1)")
    for name in setup.datasets:
        paper = PAPER_L.get(name)
        if paper is not None and setup.lengths[name] != paper:
            lines.append(
                f"- window L for {dataset_label(name)}: {setup.lengths[name]} instead of {paper} (parameter)"
            )
    if setup.branch != "fusion":
        lines.append(
            f"- chosen network: {BRANCH_NAMES[setup.branch]} (the paper's method is DynGeoNet) (parameter)"
        )
    if not setup.ablations:
        others = " / ".join(BRANCH_NAMES[b] for b in BRANCHES if b != setup.branch)
        lines.append(f"- no {others} ablation runs (Table 1 shows the chosen network only) (parameter)")
    if setup.vgg_weights is None:
        lines.append("- VGG-16 trained from scratch (no ImageNet weights are downloaded)")
    if not setup.cross_setups:
        lines.append("- no cross-database setup runs (Table 2 is empty)")
    elif set(setup.cross_setups) != set(SETUPS):
        lines.append(f"- cross-database setups: {', '.join(setup.cross_setups)} only, instead of A, B, C")
    if common.is_plumbing(setup):
        lines.append(common.plumbing_caveat(setup))
        block = (
            f"- plumbing run: each video keeps a block of {PLUMBING_MAX_WINDOWS} consecutive windows "
            "(around its first micro-expression, else its first expression)"
        )
        if setup.ablations:
            names = " / ".join(BRANCH_NAMES[b] for b in setup.ablations)
            block += f"; the {names} ablations train on {dataset_label(setup.datasets[0])} only"
        if setup.cross_setups:
            block += "; one cross-database setup"
        lines.append(block)
    head = (
        ("Departures from the paper in this run:\n" + "\n".join(lines))
        if lines
        else "This run uses the paper's settings."
    )
    silent = "\n".join(f"- {line}" for line in silent_choices(setup))
    return f"{head}\n\nWhere the paper is silent, our choices:\n{silent}"
