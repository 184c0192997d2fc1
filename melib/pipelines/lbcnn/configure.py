"""lbcnn: the notebook parameters resolved into a :class:`Setup` (:func:`configure`,
every field validated, ``None`` the profile's value), and :func:`caveats`."""

from __future__ import annotations

import math
from pathlib import Path

from melib.models.lbcnn import TRUNKS
from melib.pipelines import common
from melib.pipelines.lbcnn.config import (
    ALEXNET_CHANNELS,
    CODE_EPOCHS,
    PAPER_INPUT_SIZE,
    PLUMBING_GRID_FRAMES,
    PLUMBING_TSNE_PER_CLASS,
    PROFILES,
    SPOTTING_DATASETS,
    Setup,
)

__all__ = ["configure", "caveats"]


# ------------------------------------------------------------------------ configure


def _strides(value, profile_strides: dict) -> dict:
    """``sampling_stride``: None (the profile's), one int for every dataset, or a
    ``{dataset: int}`` dict that overrides the profile's for the datasets it names."""
    strides = dict(profile_strides)
    if value is common.FROM_PROFILE:
        return strides
    if isinstance(value, dict):
        for key, stride in value.items():
            common.choice("sampling_stride", key, SPOTTING_DATASETS)
            strides[key] = common.whole_number("sampling_stride", stride, minimum=1)
        return strides
    stride = common.whole_number(
        "sampling_stride",
        value,
        minimum=1,
        allow_none=True,
        fix="frames between classified frames, or a {dataset: int} dict",
    )
    return {key: stride for key in strides}


def _channels(value, profile_channels: tuple) -> tuple:
    if value is common.FROM_PROFILE:
        return tuple(profile_channels)
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 3:
        raise common.ParameterError(
            f"parameter channels={value!r}: use three whole numbers (the widths of "
            "conv1, conv2, conv3; AlexNet's: 64, 192, 256) or None (the profile's)"
        )
    return tuple(common.whole_number("channels", c, minimum=1) for c in value)


def _weights(value, trunk: str) -> str | None:
    if value is None:
        return None
    if trunk != "resnet18":
        raise common.ParameterError(
            f"parameter weights={value!r}: weights load into trunk='resnet18' only; "
            "use None for the AlexNet-like trunk"
        )
    if not isinstance(value, (str, Path)) or not Path(value).expanduser().is_file():
        raise common.ParameterError(
            f"parameter weights={value!r}: no such file; pass the path of a "
            "torchvision resnet18 state dict, or None (from scratch)"
        )
    return str(value)


def configure(*, seed=0, profile="book", data_root=None, device="auto", datasets="all", trunk="alexnet_like",
              input_size=None, sampling_stride=None, epochs=None, lr=1e-3, batch_size=None, loss="ce",
              balance="oversample", max_per_class=None, max_folds=None, min_run_length=2,
              length_rule="own_class", streams=1, channels=None, hidden=None, dropout=None, weights=None,
              batch_norm=True, neutral_gap_s=0.5, min_expression_samples=3, workers=1,
              limit_steps=None) -> Setup:  # fmt: skip
    """Resolve the notebook parameters against the profile into a :class:`Setup`.

    ``None`` takes the profile's value; ``"all"`` lifts a cap (``max_per_class``,
    ``max_folds``). ``datasets``: ``casme_sq``, ``samm_lv``, a list of them or ``"all"``.
    ``sampling_stride``: frames between classified (and neutral training) frames, one
    int for every dataset or a ``{dataset: int}`` dict. A bad value raises
    :class:`~melib.pipelines.common.ParameterError` naming the parameter.
    """
    # A plumbing run (limit_steps set) keeps the profile's sizes on the tiny corpus.
    shared, limits = common.start(PROFILES, seed, profile, device, data_root, limit_steps, seeded=False)
    datasets = common.dataset_keys(datasets, SPOTTING_DATASETS, SPOTTING_DATASETS)
    common.require_datasets(shared["data_root"], datasets)
    trunk = common.choice("trunk", trunk, TRUNKS)
    loss = common.choice("loss", loss, ("ce", "mse"))
    balance = common.choice("balance", balance, ("oversample", "undersample"))
    length_rule = common.choice("length_rule", length_rule, ("own_class", "by_length"))
    streams = int(common.choice("streams", streams, (1, 2)))
    input_size = common.whole_number(
        "input_size",
        common.from_profile(input_size, limits.input_size),
        minimum=32,
        fix="the side of the face crop and of the ROI mosaic",
    )
    train = common.train_config(
        shared,
        epochs=common.whole_number("epochs", common.from_profile(epochs, limits.epochs)),
        batch_size=common.whole_number("batch_size", common.from_profile(batch_size, limits.batch_size)),
        lr=common.positive_number("lr", lr),
        optimizer="adam",
        loss=loss,
    )
    # ResNet-18's 512² bilinear vector is classified linearly, as in the code.
    default_hidden = 0 if trunk == "resnet18" else limits.hidden
    return Setup(
        **shared,
        datasets=datasets,
        trunk=trunk,
        streams=streams,
        input_size=input_size,
        channels=_channels(channels, limits.channels),
        hidden=common.whole_number(
            "hidden",
            common.from_profile(hidden, default_hidden),
            minimum=0,
            fix="units of the first fc layer; 0: one linear layer",
        ),
        dropout=common.number_in(
            "dropout", common.from_profile(dropout, limits.dropout), 0, 1, high_open=True
        ),
        weights=_weights(weights, trunk),
        batch_norm=common.flag("batch_norm", batch_norm),
        strides=_strides(sampling_stride, limits.strides),
        neutral_gap_s=common.number_in("neutral_gap_s", neutral_gap_s, 0, math.inf, high_open=True),
        min_expression_samples=common.whole_number("min_expression_samples", min_expression_samples),
        balance=balance,
        max_per_class=common.cap("max_per_class", max_per_class, limits.max_per_class),
        max_folds=common.plumbing_folds(
            common.fold_limit(max_folds, limits.max_folds), shared["limit_steps"]
        ),
        min_run_length=common.whole_number("min_run_length", min_run_length),
        length_rule=length_rule,
        train=train,
        cache_grid=limits.cache_grid,
        tsne_per_class=limits.tsne_per_class
        if shared["limit_steps"] is None
        else min(limits.tsne_per_class, PLUMBING_TSNE_PER_CLASS),
        workers=common.whole_number("workers", workers),
        limits=limits,
    )


# -------------------------------------------------------------------------- caveats


def caveats(setup: Setup) -> str:
    """Plain-language list of where this run departs from the paper (Pan et al. 2020,
    section III) and, where the paper is silent, which choice ran."""
    lines = []
    if setup.data_root is None:
        lines.append(
            f"- data: melib's synthetic corpus '{setup.limits.corpus}', trained from scratch; "
            "these are not results on the real datasets"
        )
    if setup.input_size != PAPER_INPUT_SIZE:
        lines.append(f"- input: {setup.input_size} px instead of {PAPER_INPUT_SIZE} px")
    if setup.trunk == "alexnet_like":
        if tuple(setup.channels) != ALEXNET_CHANNELS:
            lines.append(
                f"- trunk widths: {'/'.join(map(str, setup.channels))} instead of AlexNet's "
                f"{'/'.join(map(str, ALEXNET_CHANNELS))}"
            )
        if setup.batch_norm:
            lines.append(
                "- a BatchNorm after each convolution (our addition: without it the from-scratch "
                "B-CNN stayed at chance level)"
            )
    else:
        lines.append(
            "- trunk: the authors' code's ResNet-18 instead of the paper's AlexNet-like stream"
            + ("" if setup.weights else ", trained from scratch (the code starts from ImageNet)")
        )
    if setup.train.epochs != CODE_EPOCHS:
        lines.append(
            f"- epochs: {setup.train.epochs} instead of the authors' code's {CODE_EPOCHS} "
            "(the paper gives none), at a constant learning rate"
        )
    if common.is_plumbing(setup):
        lines.append(common.plumbing_caveat(setup))
        lines.append(
            f"- plumbing run: at most the first {PLUMBING_GRID_FRAMES} frames of each held-out video are "
            f"classified, and the t-SNE shows at most {setup.tsne_per_class} frames per class"
        )
    coarse = {d: s for d, s in setup.strides.items() if d in setup.datasets and s != 1}
    if coarse:
        lines.append(
            "- classified frames: "
            + ", ".join(f"{common.dataset_label(d)} one in {s}" for d, s in coarse.items())
            + " instead of every frame"
        )
    if setup.max_per_class is not None:
        lines.append(f"- at most {setup.max_per_class} training frames per class and fold")
    if setup.max_folds is not None:
        lines.append(f"- LOSO: {setup.max_folds} folds of grouped subjects instead of one per subject")
    head = (
        ("Departures from the paper in this run:\n" + "\n".join(lines))
        if lines
        else "This run uses the paper's settings (where it gives them)."
    )
    silent = [
        "loss: "
        + (
            "cross-entropy (our reading of B-CNN's linear classifier)"
            if setup.train.loss == "ce"
            else "MSE on one-hot targets (the authors' code)"
        ),
        f"optimiser: Adam, lr {setup.train.lr:g} (the authors' code)",
        "class balance: "
        + (
            "every class resampled to one size"
            if setup.balance == "oversample"
            else "every class cut to the smallest (the authors' code)"
        ),
        f"intervals: runs of >= {setup.min_run_length} frames of one class, the code's length filters "
        f"({setup.length_rule})",
        "counting: the MEGC rules (one match per ground truth), not the code's",
    ]
    return f"{head}\n\nWhere the paper is silent, our choices:\n" + "\n".join(f"- {s}" for s in silent)
