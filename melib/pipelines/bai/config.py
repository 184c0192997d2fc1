"""Bai's settings: the profiles, the resolved :class:`Setup`, :func:`configure` and
:func:`caveats` (where a run departs from the proposal)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from melib import runtime
from melib.data.datasets import RECOGNITION
from melib.models.bai import DECODERS, EXPERIMENTS, STAGES
from melib.pipelines import common
from melib.training import TrainConfig

__all__ = [
    "ALIGNMENT_LABELS",
    "ALIGNMENTS",
    "CLASS_SETS",
    "PROFILES",
    "TRAINING_MODES",
    "Profile",
    "Setup",
    "caveats",
    "configure",
]

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


PROFILES = {
    # CI: the tiny corpus (6 clips, 2 subjects), 48 px, 1 epoch.
    "smoke": Profile(
        corpus="tiny",
        input_size=48,
        frames_per_clip=2,
        epochs=1,
        decoder_epochs=3,
        batch_size=8,
        max_folds=2,
        n_sweep=(11, 13),
        decoders=DECODERS,
        experiments=EXPERIMENTS,
        cam_clips=3,
    ),
    # The book: the book corpus (36 SMIC clips, 6 subjects), 3 grouped folds, 64 px (a 2-core CPU in 15 min).
    "book": Profile(
        corpus="book",
        input_size=64,
        frames_per_clip=4,
        epochs=3,
        decoder_epochs=40,
        batch_size=16,
        max_folds=3,
        n_sweep=(11, 14, 17),
        decoders=DECODERS,
        experiments=EXPERIMENTS,
        cam_clips=6,
    ),
    # Paper scale (a GPU): 224 px, every LOSO fold, all N, every frame of the sequence.
    "full": Profile(
        corpus="full",
        input_size=224,
        frames_per_clip=None,
        epochs=20,
        decoder_epochs=60,
        batch_size=32,
        max_folds=None,
        n_sweep=(11, 12, 13, 14, 15, 16, 17),
        decoders=DECODERS,
        experiments=EXPERIMENTS,
        cam_clips=12,
        decoder_batch=16,
    ),
}

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
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer="adam",
            loss="ce",
            seed=self.seed,
            device=self.device,
            max_steps=self.limit_steps,
        )

    def decoder_train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.decoder_epochs,
            batch_size=self.limits.decoder_batch,
            lr=self.decoder_lr,
            optimizer="adam",
            loss="ce",
            seed=self.seed,
            device=self.device,
            max_steps=self.limit_steps,
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


# --------------------------------------------------------------------------- configure


def configure(
    *,
    seed=0,
    profile="book",
    data_root=None,
    device="auto",
    dataset="smic_hs",
    classes="megc2019",
    weights_path=None,
    experiment="II",
    specific_layer="auto",
    fc=(512, 256),
    decoder="lstm",
    attention=False,
    n_frames=11,
    alignment="none",
    magnify=False,
    alpha=10.0,
    low_hz=2.0,
    high_hz=12.0,
    input_size=None,
    epochs=None,
    decoder_epochs=None,
    lr=None,
    decoder_lr=1e-3,
    hidden=128,
    batch_size=None,
    max_folds=None,
    training=None,
    limit_steps=None,
) -> Setup:
    """Resolve the notebook parameters against the profile; ``None`` takes the profile's
    value (``lr``: 1e-3 from scratch, 1e-4 with weights), ``max_folds="all"`` runs one
    fold per subject. A bad value raises :class:`common.ParameterError` naming it."""
    base = common.check_common(
        seed=seed, profile=profile, device=device, data_root=data_root, limit_steps=limit_steps
    )
    runtime.seed_everything(base["seed"])
    prof = PROFILES[profile]
    dataset = common.choice("dataset", dataset, RECOGNITION)
    common.require_datasets(base["data_root"], (dataset,))
    classes = common.choice("classes", classes, CLASS_SETS)
    experiment = common.choice("experiment", experiment, EXPERIMENTS)
    specific_layer = common.choice("specific_layer", specific_layer, ("auto",) + STAGES)
    decoder = common.choice("decoder", decoder, DECODERS)
    alignment = common.choice("alignment", alignment, ALIGNMENTS)
    training = common.from_profile(
        common.choice("training", training, TRAINING_MODES, allow_none=True), prof.training
    )
    if weights_path is not None and (
        not isinstance(weights_path, (str, Path)) or not Path(weights_path).expanduser().is_file()
    ):
        raise common.ParameterError(
            f"parameter weights_path={weights_path!r}: no such file; give a local "
            "ResNet-50 state dict (e.g. VGGFace2) or None to train from scratch"
        )
    if isinstance(fc, (str, bytes)) or not hasattr(fc, "__len__") or len(fc) != 2:
        raise common.ParameterError(
            f"parameter fc={fc!r}: give the widths of fc1 and fc2, e.g. (512, 256) (fc3 outputs the classes)"
        )
    fc = tuple(common.whole_number("fc", w, fix="the width of fc1 or fc2") for w in fc)
    attention = common.flag("attention", attention)
    magnify = common.flag("magnify", magnify)
    n_frames = common.whole_number(
        "n_frames", n_frames, minimum=2, maximum=64, fix="the sequence length; the paper tests 11..17"
    )
    alpha = common.positive_number("alpha", alpha, fix="the EVM amplification")
    low_hz = common.number_in(
        "low_hz", low_hz, 0, math.inf, high_open=True, fix="the band's lower edge in Hz"
    )
    high_hz = common.positive_number("high_hz", high_hz, fix="the band's upper edge in Hz")
    if not low_hz < high_hz:
        raise common.ParameterError(f"parameter high_hz={high_hz!r}: use a number above low_hz={low_hz!r}")
    size = common.from_profile(
        common.whole_number(
            "input_size", input_size, minimum=32, allow_none=True, fix="ResNet-50 down-samples 32x"
        ),
        prof.input_size,
    )
    epochs = common.from_profile(common.whole_number("epochs", epochs, allow_none=True), prof.epochs)
    decoder_epochs = common.from_profile(
        common.whole_number("decoder_epochs", decoder_epochs, allow_none=True), prof.decoder_epochs
    )
    lr = common.from_profile(
        common.positive_number("lr", lr, allow_none=True), 1e-4 if weights_path else 1e-3
    )
    decoder_lr = common.positive_number("decoder_lr", decoder_lr)
    hidden = common.whole_number("hidden", hidden, fix="the decoder's hidden units per direction")
    batch_size = common.from_profile(
        common.whole_number("batch_size", batch_size, allow_none=True), prof.batch_size
    )
    max_folds = common.fold_limit(max_folds, prof.max_folds)
    return Setup(
        seed=base["seed"],
        profile=profile,
        data_root=base["data_root"],
        device=base["device"],
        dataset=dataset,
        classes=classes,
        weights_path=str(Path(weights_path).expanduser()) if weights_path else None,
        experiment=experiment,
        specific_layer=specific_layer,
        fc=fc,
        decoder=decoder,
        attention=attention,
        n_frames=n_frames,
        alignment=alignment,
        magnify=magnify,
        alpha=alpha,
        low_hz=low_hz,
        high_hz=high_hz,
        input_size=size,
        epochs=epochs,
        decoder_epochs=decoder_epochs,
        lr=float(lr),
        decoder_lr=decoder_lr,
        hidden=hidden,
        batch_size=batch_size,
        max_folds=max_folds,
        frames_per_clip=prof.frames_per_clip,
        training=training,
        limits=prof,
        limit_steps=base["limit_steps"],
    )


def caveats(setup: Setup) -> str:
    """Plain-language list of where this run departs from the proposal."""
    lines = []
    label = common.dataset_label(setup.dataset)
    if setup.data_root is None:
        lines.append(
            f"- data: melib's synthetic corpus '{setup.limits.corpus}' in the {label} "
            "layout; these are not results on the real dataset"
        )
    elif setup.dataset != "smic_hs":
        lines.append(f"- data: {label} (the proposal reports SMIC only)")
    if setup.weights_path is None:
        lines.append(
            "- backbone: ResNet-50 trained from scratch (no VGGFace2 weights given): the Grad-CAM "
            "choice of l_s reads an untrained network, and experiment I trains a classifier on "
            "random features"
        )
    if setup.specific_layer == "auto":
        lines.append(
            "- l_s: chosen among the 5 ResNet-50 stages (conv1, layer1..layer4), not among every "
            "convolutional layer as the proposal says, by a stated criterion instead of by eye, "
            "once for all folds"
        )
    lines.append("- frame level: every frame of a clip carries the clip's label (the proposal does not say)")
    if setup.max_folds is not None:
        lines.append(f"- LOSO: {setup.max_folds} folds of grouped subjects instead of one per subject")
    if setup.input_size != 224:
        lines.append(f"- input: {setup.input_size} px instead of ResNet-50's 224 px")
    if setup.frames_per_clip is not None:
        lines.append(f"- frame level: {setup.frames_per_clip} frames per clip, {setup.epochs} epoch(s)")
    if setup.training == "cached":
        lines.append(
            "- sequence level: decoders train on frame features cached from each fold's frame CNN "
            "(the CNN is not fine-tuned with the decoder)"
        )
    if tuple(setup.limits.n_sweep) != tuple(range(11, 18)):
        lines.append(f"- N sweep: {', '.join(map(str, setup.limits.n_sweep))} instead of every N in 11..17")
    if setup.alignment != "none":
        lines.append(f"- faces: {ALIGNMENT_LABELS[setup.alignment]} (the paper uses whole frames)")
    if setup.limit_steps is not None:
        lines.append(
            f"- training: every network stops after {setup.limit_steps} optimiser step(s) "
            "(limit_steps, a plumbing run): its numbers say nothing about the method"
        )
    if not lines:
        return "This run uses the proposal's settings (where it gives them)."
    return "Departures from the paper in this run:\n" + "\n".join(lines)
