"""SOFTNet's settings: the paper's values, the profiles that cap what costs time, the
resolved :class:`Setup` and the plain-language :func:`caveats`."""

from __future__ import annotations

import dataclasses
import math
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
    "configure",
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


PROFILES = {
    # CI: one tiny dataset, two folds, one epoch, the cheapest flow.
    "smoke": Profile(
        corpus="tiny",
        datasets=("casme_sq",),
        max_folds=2,
        max_epochs=1,
        crop_size=64,
        tvl1="fast",
        ablation_max_folds=2,
        ablation_max_epochs=1,
        backbone_frames=24,
        tsne_points=300,
        tsne_iter=300,
        k_factors=(1.0, 2.0),
        lr_multiplier=10.0,
    ),
    # The book (15 min on 2 CPU cores): both long-video sets, every fold, 64 px crops,
    # the 'fast' TV-L1 preset and 2 epochs; two backbones trained on one fold.
    "book": Profile(
        corpus="book",
        max_epochs=2,
        crop_size=64,
        tvl1="fast",
        backbone_frames=500,
        tsne_points=800,
        k_factors=(1.0, 2.0),
        lr_multiplier=10.0,
    ),
    # Paper scale (a GPU): 128 px crops, OpenCV's default TV-L1, every fold and backbone.
    "full": Profile(corpus="full", backbone_train=BACKBONES, backbone_frames=10000, tsne_points=3000),
}


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
    if common.is_plumbing(setup):
        lines.append(common.plumbing_caveat(setup))
        lines.append(
            f"- plumbing caps: k sweep x{', x'.join(f'{f:g}' for f in setup.limits.k_factors)}, "
            f"Table 3 timed on {setup.limits.backbone_frames} frames, t-SNE of at most "
            f"{setup.limits.tsne_points} windows"
        )
    if not lines:
        return "This run uses the paper's settings."
    return "Departures from the paper in this run:\n" + "\n".join(lines)


# ------------------------------------------------------------------------ configure


def _window_k(k):
    """``None`` (derived), a whole number for every type, or ``{type: k}``."""
    if k is None:
        return None
    if isinstance(k, dict):
        bad = [kind for kind in k if kind not in TYPES]
        if bad:
            common.choice("k", bad[0], TYPES)
        return {kind: common.whole_number(f"k[{kind!r}]", value) for kind, value in k.items()}
    return common.whole_number(
        "k",
        k,
        allow_none=True,
        fix="frames; a dict {'micro': 6, 'macro': 18} sets one per type, None derives int((N+1)/2)",
    )


def _tvl1_settings(tvl1, preset: str, caps: dict) -> TVL1Settings:
    """A preset name, or a dict of :class:`TVL1Settings` fields on top of OpenCV's defaults."""
    if isinstance(tvl1, dict):
        fields = {f.name for f in dataclasses.fields(TVL1Settings)}
        bad = [name for name in tvl1 if name not in fields]
        if bad:
            common.choice("tvl1", bad[0], sorted(fields))
        for name, value in tvl1.items():
            default = getattr(TVL1Settings(), name)
            label = f"tvl1[{name!r}]"
            if isinstance(default, int) and name != "gamma":
                # median_filtering 0 or 1 turns the filter off; the others count up from 1
                common.whole_number(label, value, minimum=0 if name == "median_filtering" else 1)
            elif name in ("scale_step",):
                common.number_in(label, value, 0, 1, low_open=True, high_open=True)
            elif name == "gamma":
                common.number_in(label, value, 0, math.inf)
            else:
                common.positive_number(label, value)
        return dataclasses.replace(TVL1Settings(), **tvl1)
    if tvl1 is None and preset != "default":
        caps["TV-L1 settings"] = ("default", preset)
    return TVL1Settings.preset(common.choice("tvl1", common.from_profile(tvl1, preset), TVL1_PRESETS))


def configure(
    *,
    seed=0,
    profile="book",
    data_root=None,
    device="auto",
    datasets=None,
    expression="both",
    k=None,
    threshold=0.55,
    epochs=None,
    lr=None,
    batch_size=12,
    pseudo_label="unit_step",
    negative_keep=0.5,
    negative_sampling="every_other",
    augment=True,
    noise_std=1.0,
    flow_method="tvl1",
    tvl1=None,
    crop_size=None,
    max_folds=None,
    workers=2,
    limit_steps=None,
) -> Setup:
    """Resolve the notebook parameters against the profile.

    Parameters default to the paper (Liong et al. 2021, section 2.3); ``None`` takes the
    profile's value, which caps what costs time (epochs, folds, crop size, TV-L1
    iterations; a profile that caps the epochs raises the learning rate to make up).
    ``datasets``: ``casme_sq``, ``samm_lv``, a list, ``"all"`` or None (the profile's).
    ``expression``: ``micro``, ``macro`` or ``both``. ``k``: None derives int((N+1)/2)
    per type, a whole number sets it for both, ``{"micro": 6, "macro": 18}`` per type.
    ``tvl1``: a preset name (``default``, ``light``, ``fast``) or a dict of
    :class:`~melib.features.flow.TVL1Settings` fields, e.g. ``{"nscales": 3}``.
    ``max_folds``: the first N subjects, each a LOSO fold (``"all"``: every subject).
    ``limit_steps`` caps the optimiser steps of every training and makes a plumbing run:
    the tiny corpus, at most 2 LOSO folds and 2 videos per dataset, the sweeps capped
    (:func:`plumbing_limits`); the model, crop, TV-L1, optimiser and loss stay the profile's.
    """
    base = common.check_common(
        seed=seed, profile=profile, device=device, data_root=data_root, limit_steps=limit_steps
    )
    runtime.seed_everything(base["seed"])
    prof = plumbing_limits(PROFILES[profile], base["limit_steps"])
    datasets = common.dataset_keys(datasets, SPOTTING_DATASETS, prof.datasets)
    common.require_datasets(base["data_root"], datasets)
    expression = common.choice("expression", expression, ("micro", "macro", "both"))
    expressions = TYPES if expression == "both" else (expression,)
    k = _window_k(k)
    threshold = common.number_in("threshold", threshold, 0, 1, fix="the paper's p; T = mean + p (max - mean)")
    batch_size = common.whole_number("batch_size", batch_size)
    pseudo_label = common.choice("pseudo_label", pseudo_label, PSEUDO_LABELS)
    negative_keep = common.number_in("negative_keep", negative_keep, 0, 1)
    negative_sampling = common.choice("negative_sampling", negative_sampling, NEGATIVE_SAMPLING)
    augment = common.flag("augment", augment)
    noise_std = common.number_in("noise_std", noise_std, 0, math.inf)
    flow_method = common.choice("flow_method", flow_method, FLOW_METHODS)
    workers = common.whole_number("workers", workers, fix="feature-extraction processes")

    caps = {}
    if epochs is common.FROM_PROFILE:
        run_epochs = PAPER_EPOCHS if prof.max_epochs is None else min(PAPER_EPOCHS, prof.max_epochs)
        if run_epochs != PAPER_EPOCHS:
            caps["epochs"] = (PAPER_EPOCHS, run_epochs)
    else:
        run_epochs = common.whole_number("epochs", epochs)
    folds = common.plumbing_folds(common.fold_limit(max_folds, prof.max_folds), base["limit_steps"])
    if max_folds is common.FROM_PROFILE and prof.max_folds is not None:
        caps["subjects"] = ("all", prof.max_folds)
    size = common.whole_number(
        "crop_size",
        common.from_profile(crop_size, prof.crop_size),
        minimum=32,
        fix="face crop side in pixels, the paper's 128",
    )
    if crop_size is common.FROM_PROFILE and size != PAPER_CROP:
        caps["crop size"] = (PAPER_CROP, size)
    flow = FlowSettings(method=flow_method, tvl1=_tvl1_settings(tvl1, prof.tvl1, caps))
    if lr is common.FROM_PROFILE:
        run_lr = PAPER_LR
        if "epochs" in caps and prof.lr_multiplier != 1.0:
            run_lr = PAPER_LR * prof.lr_multiplier
            caps["learning rate"] = (PAPER_LR, run_lr)
    else:
        run_lr = common.positive_number("lr", lr)
    train = TrainConfig(
        epochs=run_epochs,
        batch_size=batch_size,
        lr=run_lr,
        seed=base["seed"],
        device=device,
        max_steps=base["limit_steps"],
    )
    return Setup(
        seed=base["seed"],
        profile=profile,
        data_root=base["data_root"],
        device=device,
        datasets=datasets,
        expressions=expressions,
        k=k,
        threshold=threshold,
        train=train,
        pseudo_label=pseudo_label,
        negative_keep=negative_keep,
        negative_sampling=negative_sampling,
        augment=augment,
        noise_std=noise_std,
        flow=flow,
        crop_size=size,
        max_folds=folds,
        workers=workers,
        caps=caps,
        limits=prof,
        limit_steps=base["limit_steps"],
    )
