"""Bai's parameters resolved: :func:`configure` (every field validated, ``None`` the
profile's value) and :func:`caveats` (where a run departs from the proposal)."""

from __future__ import annotations

import math
from pathlib import Path

from melib.data.datasets import RECOGNITION
from melib.models.bai import DECODERS, EXPERIMENTS, STAGES
from melib.pipelines import common
from melib.pipelines.bai.config import (
    ALIGNMENT_LABELS,
    ALIGNMENTS,
    CLASS_SETS,
    PLUMBING_CLIPS_PER_CLASS,
    PROFILES,
    TRAINING_MODES,
    Setup,
    plumbing_limits,
)

__all__ = ["caveats", "configure"]


# --------------------------------------------------------------------------- configure


def configure(*, seed=0, profile="book", data_root=None, device="auto", dataset="smic_hs", classes="megc2019",
              weights_path=None, experiment="II", specific_layer="auto", fc=(512, 256), decoder="lstm",
              attention=False, n_frames=11, alignment="none", magnify=False, alpha=10.0, low_hz=2.0,
              high_hz=12.0, input_size=None, epochs=None, decoder_epochs=None, lr=None, decoder_lr=1e-3,
              hidden=128, batch_size=None, max_folds=None, training=None,
              limit_steps=None) -> Setup:  # fmt: skip
    """Resolve the notebook parameters against the profile; ``None`` takes the profile's
    value (``lr``: 1e-3 from scratch, 1e-4 with weights), ``max_folds="all"`` runs one
    fold per subject. A bad value raises :class:`common.ParameterError` naming it."""
    base, prof = common.start(
        PROFILES, seed, profile, device, data_root, limit_steps, resolve=plumbing_limits
    )
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
    max_folds = common.plumbing_folds(common.fold_limit(max_folds, prof.max_folds), base["limit_steps"])
    return Setup(
        **base,
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
    )


def _plumbing_caps(setup) -> str:
    """The line ``caveats()`` adds for a plumbing run: this paper's own caps."""
    return (
        f"- plumbing run, Bai's caps: at most {PLUMBING_CLIPS_PER_CLASS} clip per class from each of the "
        f"first {common.PLUMBING_MAX_FOLDS} subjects (frames cached and networks trained on those only), "
        f"Grad-CAM on {setup.limits.cam_clips} clips, N sweep at its ends "
        f"({', '.join(map(str, setup.limits.n_sweep))}); the sizes ({setup.input_size} px ResNet-50, "
        "every decoder and frame-level experiment, the EVM ablation) are the profile's"
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
    return common.departures(
        lines, setup, _plumbing_caps(setup), "This run uses the proposal's settings (where it gives them)."
    )
