"""CropNet's settings: the protocols and classes, the profiles, the resolved
:class:`Setup`, :func:`configure` and :func:`caveats` (every departure of a run from
Zhao, Chen & Luo 2021)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from melib import runtime
from melib.features.cgpo import CGPOLayout
from melib.features.residual_sums import METHODS, ResidualSettings
from melib.models.cropnet import BACKBONES, PAPER_PARAMETERS_M, CropNet, CropNetConfig, count_parameters
from melib.pipelines import common
from melib.pipelines.cropnet.paper import NOT_GIVEN
from melib.training import TrainConfig

__all__ = [
    "PROTOCOLS",
    "CLASSES",
    "PROTOCOL_LABELS",
    "METHOD_LABELS",
    "POSITION_EMBEDDINGS",
    "Profile",
    "PROFILES",
    "PLUMBING_CLIPS_PER_CLASS",
    "PLUMBING_GRADCAM_ROWS",
    "plumbing_limits",
    "Setup",
    "configure",
    "caveats",
]

PROTOCOLS = ("casme2_5class", "megc2019")
# The paper's class order (section 4.3) and the MEGC2019 classes (section 4.4).
CLASSES = {
    "casme2_5class": ("others", "disgust", "happiness", "repression", "surprise"),
    "megc2019": ("negative", "positive", "surprise"),
}
PROTOCOL_LABELS = {"casme2_5class": "CASME II, 5 classes", "megc2019": common.dataset_label("megc2019")}
METHOD_LABELS = {"ars": "ARS", "rrs": "RRS", "farneback": "Farneback flow", "tvl1": "TV-L1 flow"}
POSITION_EMBEDDINGS = ("paper", "all", "none")  # p1..p9 on z1..z9 (eq. 8) | every crop | none
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The paper's settings that a run may depart from (sections 3.1-3.2, 4.5).
PAPER_INPUT_SIZE = 320
PAPER_N_KEY = 5
PAPER_ALPHA = 0.3

# ------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile(common.BaseProfile):
    """The caps that cost time: input size, backbone width, epochs, folds, the sweep."""

    input_size: int
    backbone: str
    epochs: int  # CASME II, 5 classes
    composite_epochs: int  # MEGC2019 composite (about 3x the clips: as many updates in fewer epochs)
    batch_size: int
    max_folds: int | None
    tvl1_light: bool
    nkey_sweep: tuple
    tsne_size: int = 32


# fmt: off
PROFILES = {
    # CI: the tiny corpus, 2 folds, 1 epoch, 64 px inputs (32 px crops), tiny ReXNet.
    "smoke": Profile(corpus="tiny", input_size=64, backbone="tiny", epochs=1, composite_epochs=1,
                     batch_size=8, max_folds=2, tvl1_light=True, nkey_sweep=(3, 5)),
    # The book: the book corpus, 3 grouped folds, 64 px inputs, slim ReXNet.
    "book": Profile(corpus="book", input_size=64, backbone="slim", epochs=16, composite_epochs=8,
                    batch_size=8, max_folds=3, tvl1_light=True, nkey_sweep=(1, 5, 9)),
    # Paper scale (a GPU): 320 px inputs, ReXNet-1.0x, every LOSO fold, default TV-L1.
    "full": Profile(corpus="full", input_size=320, backbone="rexnet_100", epochs=60, composite_epochs=60,
                    batch_size=32, max_folds=None, tvl1_light=False, nkey_sweep=(1, 2, 3, 4, 5, 6, 7, 8, 9),
                    tsne_size=64),
}
# fmt: on

# A plumbing run (``limit_steps`` set) keeps the profile's input size, backbone, TV-L1,
# optimiser and loss, and caps only what costs time: the tiny corpus, at most 2 LOSO folds
# (common), at most this many clips per dataset and class (distinct subjects first, so that
# each class that has clips keeps them in 2 subjects where it can: 2 folds can each test
# it), the N_key sweep to 2 points (one of them the main run's) and the Grad-CAM rows.
# A class with no clip at all stays absent: the tables score the classes present, as
# the smoke profile already does on the tiny corpus (no CASME II disgust or surprise).
PLUMBING_CLIPS_PER_CLASS = common.PLUMBING_MAX_VIDEOS  # 2, common.plumbing_videos per class
PLUMBING_GRADCAM_ROWS = 1


def plumbing_limits(prof: Profile, limit_steps, n_key: int = PAPER_N_KEY) -> Profile:
    """The profile a run resolves against: for a plumbing run (``limit_steps`` set), the
    tiny corpus and an N_key sweep of two points, the run's own ``n_key`` (the sweep
    reuses the main run for it when the settings match) and the sweep's value farthest
    from it (its ends when ``n_key`` is not swept); ``prof`` itself when ``limit_steps``
    is None."""
    if limit_steps is None:
        return prof
    prof = common.plumbing_profile(prof, limit_steps)
    sweep = tuple(prof.nkey_sweep)
    if n_key in sweep and len(sweep) > 1:
        kept = {n_key, max(sweep, key=lambda v: (abs(v - n_key), v))}
    else:
        kept = {sweep[0], sweep[-1]}
    return dataclasses.replace(prof, nkey_sweep=tuple(v for v in sweep if v in kept))


# ---------------------------------------------------------------------------- setup


@dataclass
class Setup(common.BaseSetup):
    """The resolved run: the notebook's parameters after the profile's defaults."""

    protocol: str
    preprocessing: str
    n_key: int
    alpha: float
    backbone: str
    cgpo: bool
    input_size: int
    epochs: int
    composite_epochs: int
    lr: float
    label_smoothing: float
    batch_size: int
    max_folds: int | None  # None: every subject is a fold
    tvl1_light: bool
    pretrained: str | None
    position_embedding: str
    limit_steps: int | None
    limits: Profile = field(repr=False)

    def with_(self, **changes) -> Setup:
        return dataclasses.replace(self, **changes)

    def for_protocol(self, protocol: str) -> Setup:
        """The setup a run of ``protocol`` trains with (its own epoch count)."""
        return self.with_(epochs=self.composite_epochs) if protocol == "megc2019" else self

    @property
    def crop_size(self) -> int:
        return self.input_size // 2

    def image_settings(self, method: str | None = None, n_key: int | None = None) -> ResidualSettings:
        return ResidualSettings(
            method=method or self.preprocessing,
            n_key=n_key or self.n_key,
            size=self.input_size,
            tvl1_light=self.tvl1_light,
        )

    def model_config(self, num_classes: int) -> CropNetConfig:
        names = ("backbone", "input_size", "crop_size", "alpha", "cgpo", "position_embedding", "pretrained")
        return CropNetConfig(num_classes=num_classes, **{name: getattr(self, name) for name in names})

    def train_config(self) -> TrainConfig:
        return self.make_train_config(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="adamp", loss="ce"
        )

    def describe(self) -> pd.DataFrame:
        """What runs, beside what the paper says (or that it says nothing)."""
        layout = CGPOLayout(self.input_size, self.crop_size, self.alpha)
        model = CropNet(self.model_config(len(CLASSES[self.protocol])))
        extractor = "pretrained from " + self.pretrained if self.pretrained else "from scratch"
        rows = [
            (
                "data",
                str(self.data_root)
                if self.data_root
                else f"synthetic corpus '{self.limits.corpus}' (not the real datasets)",
                "CASME II, SAMM, SMIC-HS",
            ),
            ("protocol", PROTOCOL_LABELS[self.protocol], "both, LOSO"),
            (
                "LOSO folds",
                "every subject" if self.max_folds is None else f"{self.max_folds} folds of grouped subjects",
                "every subject",
            ),
            ("preprocessing", METHOD_LABELS[self.preprocessing], "ARS"),
            ("key frames N_key", str(self.n_key), "5"),
            ("input / crop", f"{self.input_size} / {self.crop_size} px", "320 / 160 px"),
            (
                "CGPO",
                f"{layout.n_crops} crops, α = {self.alpha:g}" if self.cgpo else "off",
                "10 crops, α = 0.3",
            ),
            ("extractor", f"ReXNet '{self.backbone}', {extractor}", "ReXNet, ImageNet-pretrained"),
            ("parameters", f"{count_parameters(model) / 1e6:.2f} M", f"about {PAPER_PARAMETERS_M} M"),
            ("position embeddings", f"{len(model.position)} ({self.position_embedding})", "9, N(0, 0.2)"),
            (
                "optimiser / loss",
                f"AdamP lr {self.lr:g} / CE, label smoothing {self.label_smoothing:g}",
                f"AdamP lr ? / label smoothing ? ({NOT_GIVEN})",
            ),
            (
                "epochs / batch",
                f"{self.epochs} (CASME II), {self.composite_epochs} (composite) / {self.batch_size}",
                NOT_GIVEN,
            ),
            (
                "TV-L1 (ablation)",
                "light (3 scales, 3 warps)" if self.tvl1_light else "OpenCV defaults",
                NOT_GIVEN,
            ),
            ("device", str(runtime.resolve_device(self.device)), "GPU"),
        ]
        if self.limit_steps is not None:
            rows.append(("step limit", f"{self.limit_steps} optimiser steps per fold", "none"))
        return pd.DataFrame(rows, columns=["setting", "this run", "paper"]).set_index("setting")


def _pretrained(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)) and Path(value).expanduser().is_file():
        return str(Path(value).expanduser())
    raise common.ParameterError(
        f"parameter pretrained={value!r}: use the path of a local ReXNet ImageNet "
        "checkpoint (nothing is downloaded), or None to train from scratch"
    )


def configure(*, seed=0, profile="book", data_root=None, device="auto", protocol="casme2_5class",
              preprocessing="ars", n_key=PAPER_N_KEY, alpha=PAPER_ALPHA, backbone=None, cgpo=True,
              epochs=None, lr=1e-3, label_smoothing=0.1, batch_size=None, input_size=None, max_folds=None,
              pretrained=None, position_embedding="paper", limit_steps=None) -> Setup:  # fmt: skip
    """Resolve the notebook parameters into a :class:`Setup`; ``None`` takes the
    profile's value and ``max_folds="all"`` trains one fold per subject (the paper's
    LOSO). ``epochs`` sets both protocols' epochs. A bad value raises
    :class:`~melib.pipelines.common.ParameterError` naming the parameter."""
    base = common.check_common(
        seed=seed, profile=profile, device=device, data_root=data_root, limit_steps=limit_steps
    )
    protocol = common.choice("protocol", protocol, PROTOCOLS)
    common.require_datasets(
        base["data_root"], ("casme2",) if protocol == "casme2_5class" else ("casme2", "samm", "smic_hs")
    )
    preprocessing = common.choice("preprocessing", preprocessing, METHODS)
    n_key = common.whole_number("n_key", n_key, minimum=1, fix="key frames per clip; the paper uses 5")
    prof = plumbing_limits(PROFILES[base["profile"]], base["limit_steps"], n_key)
    alpha = common.number_in(
        "alpha", alpha, 0, 1, high_open=True, fix="the CGPO overlap factor; the paper's is 0.3"
    )
    backbone = common.from_profile(
        common.choice("backbone", backbone, tuple(BACKBONES), allow_none=True), prof.backbone
    )
    cgpo = common.flag("cgpo", cgpo)
    epochs = common.whole_number("epochs", epochs, minimum=1, allow_none=True, fix="None takes the profile's")
    lr = common.positive_number("lr", lr)
    label_smoothing = common.number_in("label_smoothing", label_smoothing, 0, 1, high_open=True)
    batch_size = common.whole_number(
        "batch_size", batch_size, minimum=1, allow_none=True, fix="None takes the profile's"
    )
    input_size = common.from_profile(
        common.whole_number("input_size", input_size, minimum=8, allow_none=True), prof.input_size
    )
    if input_size % 4:
        raise common.ParameterError(
            f"parameter input_size={input_size!r}: use a multiple of 4 (CGPO halves "
            "the input and crops half of it; the paper's is 320)"
        )
    max_folds = common.plumbing_folds(common.fold_limit(max_folds, prof.max_folds), base["limit_steps"])
    pretrained = _pretrained(pretrained)
    position_embedding = common.choice("position_embedding", position_embedding, POSITION_EMBEDDINGS)
    runtime.seed_everything(base["seed"])
    return Setup(
        **base,
        protocol=protocol,
        preprocessing=preprocessing,
        n_key=n_key,
        alpha=alpha,
        backbone=backbone,
        cgpo=cgpo,
        input_size=input_size,
        epochs=common.from_profile(epochs, prof.epochs),
        composite_epochs=common.from_profile(epochs, prof.composite_epochs),
        lr=lr,
        label_smoothing=label_smoothing,
        batch_size=common.from_profile(batch_size, prof.batch_size),
        max_folds=max_folds,
        tvl1_light=prof.tvl1_light,
        pretrained=pretrained,
        position_embedding=position_embedding,
        limits=prof,
    )


def _plumbing_caps(setup) -> str:
    """The line ``caveats()`` adds for a plumbing run: this paper's own caps."""
    return (
        f"- plumbing clips: at most {PLUMBING_CLIPS_PER_CLASS} clips per dataset and class "
        "(distinct subjects first) for the images, the training and the t-SNE; a class "
        f"without clips stays absent and is not scored; Grad-CAM on {PLUMBING_GRADCAM_ROWS} clip"
    )


def caveats(setup: Setup) -> str:
    """Plain-language list of where this run departs from the paper."""
    lines = []
    if setup.data_root is None:
        lines.append(
            f"- data: melib's synthetic corpus '{setup.limits.corpus}' in the CASME II, SAMM and SMIC-HS "
            "layouts; these are not results on the real datasets"
        )
    if setup.max_folds is not None:
        lines.append(f"- LOSO: {setup.max_folds} folds of grouped subjects instead of one per subject")
    if setup.input_size != PAPER_INPUT_SIZE:
        lines.append(
            f"- input: {setup.input_size} px with {setup.crop_size} px crops instead of "
            f"{PAPER_INPUT_SIZE} px with {PAPER_INPUT_SIZE // 2} px crops"
        )
    if not setup.backbone.startswith("rexnet"):
        lines.append(
            f"- extractor: the ReXNet recipe scaled down ('{setup.backbone}') instead of a full ReXNet"
        )
    if setup.pretrained is None:
        lines.append(
            "- extractor trained from scratch (the paper starts from ImageNet weights; nothing is downloaded)"
        )
    if setup.preprocessing != "ars":
        lines.append(f"- main preprocessing: {METHOD_LABELS[setup.preprocessing]} instead of ARS")
    if setup.n_key != PAPER_N_KEY:
        lines.append(f"- key frames: N_key = {setup.n_key} instead of {PAPER_N_KEY}")
    if not setup.cgpo:
        lines.append("- CGPO off: the whole image is one crop")
    elif setup.alpha != PAPER_ALPHA:
        lines.append(f"- CGPO overlap: α = {setup.alpha:g} instead of {PAPER_ALPHA:g}")
    if setup.position_embedding != "paper":
        lines.append(
            f"- position embeddings: '{setup.position_embedding}' instead of p1..p9 on z1..z9 (eq. 8)"
        )
    if setup.tvl1_light:
        lines.append(
            "- TV-L1 (Table 4 ablation): light settings, 3 scales and 3 warps (the paper gives none; "
            "the full profile keeps OpenCV's defaults)"
        )
    if tuple(setup.limits.nkey_sweep) != PROFILES["full"].nkey_sweep:
        lines.append(
            f"- N_key sweep (figure 5): {', '.join(map(str, setup.limits.nkey_sweep))} only "
            "(the full profile sweeps 1 to 9)"
        )
    return common.departures(
        lines, setup, _plumbing_caps(setup), "This run uses the paper's settings (where it gives them)."
    )
