"""LBCNN's numbers, the profiles, and the resolved run (:class:`Setup`, built by
:func:`configure`), with :func:`caveats` listing where a run departs from the paper.

Paper: Pan, Xie & Wang, MEGC 2020. Where the paper is silent, the authors' code is
named as the source (its ResNet-18 trunk, MSE loss, Adam, undersampling, length filters).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from melib import runtime
from melib.features.lbcnn import InputSettings, SamplingSettings
from melib.models.lbcnn import LBCNN
from melib.pipelines import common
from melib.training import TrainConfig

__all__ = [
    "SPOTTING_DATASETS",
    "PAPER_TABLE3",
    "PAPER_INPUT_SIZE",
    "ALEXNET_CHANNELS",
    "CODE_EPOCHS",
    "PLUMBING_GRID_FRAMES",
    "PLUMBING_TSNE_PER_CLASS",
    "Profile",
    "PROFILES",
    "Setup",
]

SPOTTING_DATASETS = ("casme_sq", "samm_lv")
PAPER_INPUT_SIZE = 224  # the paper's 224x224x3 inputs, both branches
ALEXNET_CHANNELS = (64, 192, 256)  # AlexNet's first three convolutions
CODE_EPOCHS = 300  # the authors' code (the paper gives none)
# A plumbing run (limit_steps set) keeps every frame of the grid but classifies at most the
# first PLUMBING_GRID_FRAMES of each held-out video (more than one 256-frame batch, so that
# the batched path runs), and shows at most PLUMBING_TSNE_PER_CLASS t-SNE frames per class.
PLUMBING_GRID_FRAMES = 300
PLUMBING_TSNE_PER_CLASS = 20

# Table III of the paper: TP, FP, FN, precision, recall, F1 as printed. (The paper's
# MDMD CAS(ME)² recall and F1 do not follow from its own counts: 130/465 = 0.2796.)
PAPER_TABLE3 = {
    ("MDMD", "casme_sq"): (130, 6428, 335, 0.0198, 0.3641, 0.0376),
    ("LBCNN", "casme_sq"): (35, 872, 234, 0.0386, 0.1301, 0.0595),
    ("MDMD", "samm_lv"): (51, 1741, 451, 0.0285, 0.1016, 0.0445),
    ("LBCNN", "samm_lv"): (29, 397, 258, 0.0681, 0.1010, 0.0813),
}


# ------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile(common.BaseProfile):
    """The caps that cost time: input size, trunk widths, epochs, classified frames,
    training samples and folds."""

    input_size: int
    channels: tuple
    hidden: int
    epochs: int
    strides: dict  # frames between classified frames, per dataset
    max_per_class: int | None  # training samples per class per fold (None: no cap)
    max_folds: int | None  # None: one fold per subject
    batch_size: int = 32
    dropout: float = 0.0  # before each fc layer; the few CPU epochs converge faster without
    cache_grid: bool = True
    tsne_per_class: int = 150


# fmt: off
PROFILES = {
    # CI: the tiny corpus, a few hundred 48-px frames, 2 folds of 1 epoch.
    "smoke": Profile(corpus="tiny", input_size=48, channels=(8, 16, 16), hidden=32, epochs=1,
                     strides={"casme_sq": 3, "samm_lv": 20}, max_per_class=32, max_folds=2,
                     tsne_per_class=40),
    # The book: 64-px inputs, narrow trunks, CAS(ME)² every 2nd and SAMM-LV every 8th
    # frame (15 and 25 classified frames per second), every subject a fold, 10 epochs.
    "book": Profile(corpus="book", input_size=64, channels=(16, 32, 32), hidden=64, epochs=10,
                    strides={"casme_sq": 2, "samm_lv": 8}, max_per_class=300, max_folds=None),
    # Paper scale (a GPU): 224 px, AlexNet widths, every frame, the code's 300 epochs.
    "full": Profile(corpus="full", input_size=PAPER_INPUT_SIZE, channels=ALEXNET_CHANNELS, hidden=256,
                    epochs=CODE_EPOCHS, strides={"casme_sq": 1, "samm_lv": 1}, max_per_class=None,
                    max_folds=None, dropout=0.5, cache_grid=False, tsne_per_class=300),
}
# fmt: on


# ---------------------------------------------------------------------------- setup


@dataclass
class Setup(common.BaseSetup):
    """The resolved run: the notebook parameters after the profile."""

    datasets: tuple
    trunk: str
    streams: int
    input_size: int
    channels: tuple
    hidden: int
    dropout: float
    weights: str | None
    batch_norm: bool
    strides: dict
    neutral_gap_s: float
    min_expression_samples: int
    balance: str
    max_per_class: int | None
    max_folds: int | None
    min_run_length: int
    length_rule: str
    train: TrainConfig
    cache_grid: bool
    tsne_per_class: int
    workers: int
    limit_steps: int | None
    limits: Profile

    @property
    def input_settings(self) -> InputSettings:
        return InputSettings(input_size=self.input_size)

    def sampling(self, dataset: str, fps: float) -> SamplingSettings:
        return SamplingSettings(
            stride=int(self.strides[dataset]),
            neutral_gap=int(round(self.neutral_gap_s * fps)),
            min_expression_samples=self.min_expression_samples,
            cache_grid=self.cache_grid,
        )

    def model_kwargs(self) -> dict:
        names = ("trunk", "input_size", "streams", "channels", "hidden", "dropout", "weights", "batch_norm")
        kwargs = {name: getattr(self, name) for name in names}
        kwargs["channels"] = tuple(self.channels)
        return kwargs

    def make_model(self) -> LBCNN:
        return LBCNN(**self.model_kwargs())

    def describe(self) -> pd.DataFrame:
        """What runs, beside the paper (and the authors' code where they differ)."""
        head = f"fc {self.hidden} + fc 3" if self.hidden else "linear fc 3"
        head += f", dropout {self.dropout:g}" if self.dropout else ""
        trunk = (
            f"AlexNet-like conv {'/'.join(map(str, self.channels))}"
            + (" + BatchNorm" if self.batch_norm else "")
            if self.trunk == "alexnet_like"
            else "ResNet-18 (from scratch)"
            if self.weights is None
            else f"ResNet-18 ({self.weights})"
        )
        label = common.dataset_label
        strides = ", ".join(f"{label(d)} every {self.strides[d]}" for d in self.datasets)
        optimiser = f"Adam lr {self.train.lr:g}, {self.train.epochs} epoch(s), batch {self.train.batch_size}"
        if self.limit_steps is not None:
            optimiser += f", at most {self.limit_steps} step(s) per fold"
        rows = [
            (
                "datasets",
                ", ".join(label(d) for d in self.datasets),
                ", ".join(label(d) for d in SPOTTING_DATASETS),
                "same",
            ),
            (
                "data",
                str(self.data_root)
                if self.data_root
                else f"synthetic corpus '{self.limits.corpus}' (not the real datasets)",
                "real datasets",
                "same",
            ),
            (
                "input size",
                f"{self.input_size}x{self.input_size}x3 (face) + same (ROI mosaic)",
                "224x224x3",
                "224x224x3",
            ),
            ("trunk", trunk, "AlexNet-like: 3 conv, 2 pool, 2 fc", "ResNet-18 (ImageNet)"),
            (
                "bilinear",
                f"{'symmetric' if self.streams == 1 else 'two-stream'} outer product, mean over "
                "locations, signed sqrt, L2",
                "B-CNN (Lin et al.)",
                "outer product / 28², sqrt, L2",
            ),
            ("head after fusion", head, "2 fc (with the trunk)", "fc 3"),
            (
                "loss",
                {"ce": "cross-entropy", "mse": "MSE on one-hot"}[self.train.loss],
                "not stated (B-CNN: linear classifier)",
                "MSE on one-hot",
            ),
            ("optimiser", optimiser, "not stated", "Adam 1e-3, StepLR(50, 0.5), 300 epochs"),
            (
                "class balance",
                f"{self.balance}"
                + (f", at most {self.max_per_class} per class" if self.max_per_class else ""),
                "uniform sampling",
                "undersampling",
            ),
            ("classified frames", strides, "every frame", "every frame"),
            (
                "LOSO folds",
                "one per subject" if self.max_folds is None else f"{self.max_folds} subject groups",
                "one per subject",
                "one per subject",
            ),
            (
                "intervals",
                f"runs >= {self.min_run_length} frames, length filter ({self.length_rule})",
                "not stated",
                "runs >= 2, CAS 6-16 / >=17, SAMM 20-105 / >=106",
            ),
            ("device", str(runtime.resolve_device(self.device)), "GPU", "GPU"),
        ]
        columns = ["setting", "this run", "paper", "authors' code"]
        return pd.DataFrame(rows, columns=columns).set_index("setting")
