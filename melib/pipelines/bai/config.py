"""Bai's settings: the constants, the profiles and the resolved :class:`Setup`
(:mod:`.configure` turns notebook parameters into one)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

from melib import runtime
from melib.models.bai import DECODERS, EXPERIMENTS
from melib.pipelines import common
from melib.training import TrainConfig

__all__ = ["ALIGNMENT_LABELS", "ALIGNMENTS", "CLASS_SETS", "PLUMBING_CAM_CLIPS", "PLUMBING_CLIPS_PER_CLASS",
           "PROFILES", "TRAINING_MODES", "Profile", "Setup", "plumbing_limits"]  # fmt: skip

CLASS_SETS = ("megc2019", "all")
ALIGNMENTS = ("none", "crop", "align")
TRAINING_MODES = ("cached", "end_to_end")
ALIGNMENT_LABELS = {
    "none": "the whole frame resized (no crop, no alignment: the paper's)",
    "crop": "dlib face box per clip",
    "align": "eyes levelled, then the dlib face box",
}

# ------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile(common.BaseProfile):
    """What a profile caps: input size, frames, epochs, folds, the N sweep and the tables' rows."""

    input_size: int
    frames_per_clip: int | None  # frames of each sequence used at frame level (None: all N)
    epochs: int  # frame-level CNN
    decoder_epochs: int
    batch_size: int
    max_folds: int | None
    n_sweep: tuple
    decoders: tuple
    experiments: tuple  # frame-level experiments in the table (the main one always runs)
    cam_clips: int  # clips whose apex frames feed the l_s criterion
    decoder_batch: int = 8
    training: str = "cached"


# fmt: off
PROFILES = {
    # CI: the tiny corpus (6 clips, 2 subjects), 48 px, 1 epoch.
    "smoke": Profile(corpus="tiny", input_size=48, frames_per_clip=2, epochs=1, decoder_epochs=3,
                     batch_size=8, max_folds=2, n_sweep=(11, 13), decoders=DECODERS, experiments=EXPERIMENTS,
                     cam_clips=3),
    # The book: the book corpus (36 SMIC clips, 6 subjects), 3 grouped folds, 64 px (a 2-core CPU in 15 min).
    "book": Profile(corpus="book", input_size=64, frames_per_clip=4, epochs=3, decoder_epochs=40,
                    batch_size=16, max_folds=3, n_sweep=(11, 14, 17), decoders=DECODERS,
                    experiments=EXPERIMENTS, cam_clips=6),
    # Paper scale (a GPU): 224 px, every LOSO fold, all N, every frame of the sequence.
    "full": Profile(corpus="full", input_size=224, frames_per_clip=None, epochs=20, decoder_epochs=60,
                    batch_size=32, max_folds=None, n_sweep=(11, 12, 13, 14, 15, 16, 17), decoders=DECODERS,
                    experiments=EXPERIMENTS, cam_clips=12, decoder_batch=16),
}
# fmt: on

# A plumbing run (``limit_steps`` set) keeps the profile's sizes (224 px ResNet-50 in
# ``full``, every decoder, every frame-level experiment) but caps what multiplies them:
# the clips (this many per class from each of the first PLUMBING_MAX_FOLDS subjects, so
# that both folds train on every class when the data have it), the Grad-CAM clips, and
# the N sweep (its two ends).
PLUMBING_CLIPS_PER_CLASS = 1
PLUMBING_CAM_CLIPS = 3


def plumbing_limits(prof: Profile, limit_steps) -> Profile:
    """The profile a run resolves against: for a plumbing run, the tiny corpus
    (:func:`common.plumbing_profile`), at most two folds, the N sweep cut to its two
    ends and at most :data:`PLUMBING_CAM_CLIPS` Grad-CAM clips; every size is kept."""
    prof = common.plumbing_profile(prof, limit_steps)
    if limit_steps is None:
        return prof
    sweep = tuple(prof.n_sweep)
    return dataclasses.replace(
        prof,
        max_folds=common.plumbing_folds(prof.max_folds, limit_steps),
        n_sweep=sweep if len(sweep) <= 2 else (sweep[0], sweep[-1]),
        cam_clips=min(prof.cam_clips, PLUMBING_CAM_CLIPS),
    )


# --------------------------------------------------------------------------- the setup


@dataclass
class Setup(common.BaseSetup):
    """The resolved run: the notebook's parameters after the profile's defaults."""

    dataset: str
    classes: str
    weights_path: str | None
    experiment: str
    specific_layer: str  # "auto" or a stage name
    fc: tuple
    decoder: str
    attention: bool
    n_frames: int
    alignment: str
    magnify: bool
    alpha: float
    low_hz: float
    high_hz: float
    input_size: int
    epochs: int
    decoder_epochs: int
    lr: float
    decoder_lr: float
    hidden: int
    batch_size: int
    max_folds: int | None  # None: one fold per subject
    frames_per_clip: int | None
    training: str
    limits: Profile = field(repr=False)
    limit_steps: int | None = None

    def with_(self, **changes) -> Setup:
        return dataclasses.replace(self, **changes)

    def frame_key(self) -> dict:
        """What changes the cached frames."""
        key = {"alignment": self.alignment, "size": self.input_size, "magnify": self.magnify}
        if self.magnify:
            key.update(alpha=self.alpha, low_hz=self.low_hz, high_hz=self.high_hz)
        return key

    def frame_train_config(self) -> TrainConfig:
        return self.make_train_config(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="adam", loss="ce"
        )

    def decoder_train_config(self) -> TrainConfig:
        batch = self.limits.decoder_batch
        return self.make_train_config(
            epochs=self.decoder_epochs, batch_size=batch, lr=self.decoder_lr, optimizer="adam", loss="ce"
        )

    def describe(self) -> pd.DataFrame:
        """What runs, beside what the proposal says (or that it says nothing)."""
        silent = "not given"
        label = common.dataset_label(self.dataset)
        backbone = f"weights from {self.weights_path}" if self.weights_path else "from scratch"
        three = self.dataset == "smic_hs" or self.classes == "megc2019"
        folds = "every subject" if self.max_folds is None else f"{self.max_folds} folds of grouped subjects"
        per_clip = "all N" if self.frames_per_clip is None else str(self.frames_per_clip)
        sweep = ", ".join(map(str, self.limits.n_sweep))
        decoder = f"{self.decoder}{' + spatial attention' if self.attention else ''}"
        rows = [
            (
                "data",
                str(self.data_root / self.dataset)
                if self.data_root
                else f"synthetic corpus '{self.limits.corpus}', {label} layout (not the real data)",
                "SMIC (CASME II, SAMM planned)",
            ),
            (
                "classes",
                "negative / positive / surprise" if three else "every emotion label",
                "SMIC's 3 classes",
            ),
            ("LOSO folds", folds, silent),
            ("backbone", f"ResNet-50, {backbone}", "ResNet-50 trained on VGGFace2"),
            (
                "specific layer l_s",
                "chosen by Grad-CAM (criterion below)"
                if self.specific_layer == "auto"
                else f"{self.specific_layer} (given)",
                "chosen by Grad-CAM",
            ),
            (
                "frame-level experiment",
                f"{self.experiment} (table: {', '.join(self.limits.experiments)})",
                "I, II, III",
            ),
            ("fc1, fc2, fc3", f"{self.fc[0]}, {self.fc[1]}, classes", "fc1-fc3, sizes not given"),
            (
                "input",
                f"{self.input_size} px, {ALIGNMENT_LABELS[self.alignment]}",
                "frames without face cropping or alignment (3.2)",
            ),
            ("frames per clip (frame level)", per_clip, silent),
            ("sequence length N", f"{self.n_frames} (sweep {sweep})", "11 .. 17"),
            (
                "decoder",
                f"{decoder} (table: {', '.join(self.limits.decoders)} + attention)",
                "LSTM, BiLSTM (GRU, TCN, attention planned)",
            ),
            (
                "decoder training",
                "on cached per-fold frame features"
                if self.training == "cached"
                else "end to end with the CNN",
                silent,
            ),
            (
                "EVM",
                f"on: alpha {self.alpha:g}, {self.low_hz:g}-{self.high_hz:g} Hz"
                if self.magnify
                else "off (ablation below)",
                "planned, parameters not given",
            ),
            ("optimiser", f"Adam, lr {self.lr:g} (CNN) / {self.decoder_lr:g} (decoder)", silent),
            (
                "epochs / batch",
                f"{self.epochs} (CNN), {self.decoder_epochs} (decoder) / {self.batch_size}",
                silent,
            ),
            ("device", str(runtime.resolve_device(self.device)), silent),
        ]
        if self.limit_steps is not None:
            rows.append(("step limit", f"{self.limit_steps} optimiser steps per training", "none"))
        return pd.DataFrame(rows, columns=["setting", "this run", "paper"]).set_index("setting")
