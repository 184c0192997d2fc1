"""SOFTNet's settings: the paper's values, the profiles that cap what costs time, the
resolved :class:`Setup` and the plain-language :func:`caveats`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from melib import runtime
from melib.features.flow import FlowSettings, TVL1Settings
from melib.features.softnet_input import SoftnetInputSettings
from melib.models.backbones import BACKBONES
from melib.pipelines import common
from melib.training import TrainConfig

__all__ = [
    "TYPES",
    "SPOTTING_DATASETS",
    "PAPER_EPOCHS",
    "PAPER_LR",
    "PSEUDO_LABELS",
    "Profile",
    "PROFILES",
    "PLUMBING_K_FACTORS",
    "PLUMBING_BACKBONE_FRAMES",
    "PLUMBING_TSNE_POINTS",
    "PLUMBING_TSNE_ITER",
    "plumbing_limits",
    "Setup",
    "caveats",
]

TYPES = ("micro", "macro")
SPOTTING_DATASETS = ("casme_sq", "samm_lv")
PAPER_EPOCHS = 10  # section 2.3: SGD, lr 0.0005, batch 12, 10 epochs
PAPER_LR = 5e-4
PAPER_CROP = 128
PSEUDO_LABELS = ("unit_step", "linear", "step")
NEGATIVE_SAMPLING = ("every_other", "random")
FLOW_METHODS = ("tvl1", "farneback")
TVL1_PRESETS = ("default", "light", "fast")

# ------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile(common.BaseProfile):
    """What a profile caps. ``None`` means no cap (the paper's value is used)."""

    datasets: tuple = SPOTTING_DATASETS
    max_folds: int | None = None
    max_epochs: int | None = None
    crop_size: int = PAPER_CROP
    tvl1: str = "default"
    ablations: tuple = ("pseudo_labels", "without_softnet", "backbones")
    ablation_dataset: str = "casme_sq"
    ablation_max_folds: int | None = None
    ablation_max_epochs: int | None = None
    backbone_train: tuple = ()
    backbone_max_folds: int | None = None
    backbone_frames: int = 1000
    tsne_points: int = 1500
    tsne_iter: int = 1000
    k_factors: tuple = (0.5, 1.0, 2.0)
    # Capped runs make 5x fewer SGD updates than the paper; a larger step makes up for it
    # (on the book corpus, 2 epochs at 10x lr: CAS(ME)² macro F1 0.75 instead of 0.43).
    lr_multiplier: float = 1.0


# fmt: off
PROFILES = {
    # CI: one tiny dataset, two folds, one epoch, the cheapest flow.
    "smoke": Profile(corpus="tiny", datasets=("casme_sq",), max_folds=2, max_epochs=1, crop_size=64,
                     tvl1="fast", ablation_max_folds=2, ablation_max_epochs=1, backbone_frames=24,
                     tsne_points=300, tsne_iter=300, k_factors=(1.0, 2.0), lr_multiplier=10.0),
    # The book (15 min on 2 CPU cores): both long-video sets, every fold, 64 px crops,
    # the 'fast' TV-L1 preset and 2 epochs; two backbones trained on one fold.
    "book": Profile(corpus="book", max_epochs=2, crop_size=64, tvl1="fast", backbone_frames=500,
                    tsne_points=800, k_factors=(1.0, 2.0), lr_multiplier=10.0),
    # Paper scale (a GPU): 128 px crops, OpenCV's default TV-L1, every fold and backbone.
    "full": Profile(corpus="full", backbone_train=BACKBONES, backbone_frames=10000, tsne_points=3000),
}
# fmt: on


# A plumbing run (``limit_steps`` set) keeps the profile's model, crop, TV-L1, optimiser and
# loss, and caps what only repeats them: the k sweep (the derived k and one re-extracted
# variant), the frames timed per backbone, and the t-SNE points.
PLUMBING_K_FACTORS = (1.0, 2.0)
PLUMBING_BACKBONE_FRAMES = 24
PLUMBING_TSNE_POINTS = 200
PLUMBING_TSNE_ITER = 250


def plumbing_limits(prof: Profile, limit_steps) -> Profile:
    """``prof`` for a plumbing run: the tiny corpus (``common.plumbing_profile``), at most
    :data:`common.PLUMBING_MAX_FOLDS` ablation folds, and the sweeps capped (above);
    ``prof`` itself when ``limit_steps`` is None. :func:`configure` caps the run's own
    folds (``common.plumbing_folds``) and :func:`prepare` its videos."""
    if limit_steps is None:
        return prof
    prof = common.plumbing_profile(prof, limit_steps)
    return dataclasses.replace(
        prof,
        ablation_max_folds=common.plumbing_folds(prof.ablation_max_folds, limit_steps),
        backbone_frames=min(prof.backbone_frames, PLUMBING_BACKBONE_FRAMES),
        tsne_points=min(prof.tsne_points, PLUMBING_TSNE_POINTS),
        tsne_iter=min(prof.tsne_iter, PLUMBING_TSNE_ITER),
        k_factors=tuple(f for f in prof.k_factors if f in PLUMBING_K_FACTORS) or PLUMBING_K_FACTORS,
    )


# ---------------------------------------------------------------------------- setup


@dataclass
class Setup(common.BaseSetup):
    """The resolved run: notebook parameters after the profile's caps."""

    datasets: tuple
    expressions: tuple
    k: dict | int | None
    threshold: float
    train: TrainConfig
    pseudo_label: str
    negative_keep: float
    negative_sampling: str
    augment: bool
    noise_std: float
    flow: FlowSettings
    crop_size: int
    max_folds: int | None
    workers: int
    caps: dict
    limits: Profile
    limit_steps: int | None = None

    @property
    def geometry(self) -> SoftnetInputSettings:
        return SoftnetInputSettings(crop_size=self.crop_size)

    def describe(self) -> pd.DataFrame:
        """What runs, beside the paper's setting."""
        tv = self.flow.tvl1
        rows = [
            ("datasets", ", ".join(common.dataset_label(d) for d in self.datasets), "CAS(ME)², SAMM-LV"),
            (
                "data",
                str(self.data_root) if self.data_root else f"synthetic corpus '{self.limits.corpus}'",
                "real datasets",
            ),
            ("subjects (LOSO folds)", "all" if self.max_folds is None else f"first {self.max_folds}", "all"),
            ("expressions", ", ".join(self.expressions), "micro, macro"),
            ("k", "derived int((N+1)/2)" if self.k is None else str(self.k), "derived (6/18, 37/174)"),
            ("face crop", f"{self.crop_size}x{self.crop_size}", "128x128"),
            (
                "optical flow",
                f"{self.flow.method}"
                + (
                    f" (scales {tv.nscales}, warps {tv.warps}, "
                    f"iterations {tv.inner_iterations}x{tv.outer_iterations})"
                    if self.flow.method == "tvl1"
                    else ""
                ),
                "TV-L1 (OpenCV defaults: 5, 5, 30x10)",
            ),
            ("pseudo-labels", self.pseudo_label, "unit_step"),
            ("negatives kept", f"{self.negative_keep:g} ({self.negative_sampling})", "1 of every 2"),
            (
                "micro augmentation",
                f"flip, 7x7 blur, noise N(0,{self.noise_std:g})" if self.augment else "off",
                "flip, 7x7 blur, noise N(0,1)",
            ),
            (
                "optimiser",
                f"{self.train.optimizer.upper()} lr {self.train.lr:g}, {self.train.loss.upper()}",
                "SGD lr 0.0005, MSE",
            ),
            ("epochs / batch", f"{self.train.epochs} / {self.train.batch_size}", "10 / 12"),
            ("threshold", f"{self.threshold:g}", "0.55"),
            ("device", str(runtime.resolve_device(self.device)), "GPU"),
        ]
        if self.limit_steps is not None:
            rows.append(("optimiser steps", f"at most {self.limit_steps} per training", "every epoch"))
        return pd.DataFrame(rows, columns=["setting", "this run", "paper"]).set_index("setting")


def _plumbing_caps(setup) -> str:
    """The line ``caveats()`` adds for a plumbing run: this paper's own caps."""
    return (
        f"- plumbing caps: k sweep x{', x'.join(f'{f:g}' for f in setup.limits.k_factors)}, "
        f"Table 3 timed on {setup.limits.backbone_frames} frames, t-SNE of at most "
        f"{setup.limits.tsne_points} windows"
    )


def caveats(setup: Setup) -> str:
    """Plain-language list of where this run departs from the paper (printed beside the
    results)."""
    lines = []
    if setup.data_root is None:
        lines.append(
            f"- data: melib's synthetic corpus '{setup.limits.corpus}', trained from scratch; "
            "these are not real-dataset results"
        )
    names = {
        "epochs": "epochs",
        "subjects": "LOSO folds (subjects)",
        "crop size": "face crop (px)",
        "TV-L1 settings": "TV-L1 preset",
        "learning rate": "SGD learning rate (makes up for fewer epochs)",
    }
    for what, (paper, ours) in setup.caps.items():
        lines.append(
            f"- {names.get(what, what)}: {ours} instead of {paper} (profile '{setup.profile}' caps cost)"
        )
    if setup.train.epochs != PAPER_EPOCHS and "epochs" not in setup.caps:
        lines.append(f"- epochs: {setup.train.epochs} instead of {PAPER_EPOCHS}")
    if setup.train.lr != PAPER_LR and "learning rate" not in setup.caps:
        lines.append(f"- SGD learning rate: {setup.train.lr:g} instead of {PAPER_LR:g}")
    if setup.flow.method != "tvl1":
        lines.append(f"- optical flow: {setup.flow.method} instead of TV-L1")
    elif setup.flow.tvl1 != TVL1Settings() and "TV-L1 settings" not in setup.caps:
        lines.append(f"- TV-L1 settings: {setup.flow.tvl1} instead of OpenCV's defaults")
    if setup.max_folds is not None and "subjects" not in setup.caps:
        lines.append(f"- LOSO folds: the first {setup.max_folds} subjects only")
    if setup.limits.backbone_max_folds:
        trained = ", ".join(setup.limits.backbone_train) or "none"
        lines.append(
            f"- Table 3 backbones: {trained} trained on {setup.limits.backbone_max_folds} LOSO "
            "fold(s) only; the others report parameters and time"
        )
    if setup.pseudo_label != "unit_step":
        lines.append(f"- pseudo-labels: {setup.pseudo_label} instead of the paper's unit step")
    return common.departures(lines, setup, _plumbing_caps(setup), "This run uses the paper's settings.")
