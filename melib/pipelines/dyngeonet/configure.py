"""Resolving the notebook parameters against a profile: :func:`configure` validates every
parameter (a bad value raises :class:`melib.pipelines.common.ParameterError` naming it),
fills the ones left at ``None`` from the profile and records every departure from the
paper in ``Setup.caps``."""

from __future__ import annotations

from pathlib import Path

from melib.evaluation.protocols import CROSS_DATASET_SETUPS
from melib.pipelines import common
from melib.pipelines.common import dataset_label
from melib.pipelines.dyngeonet.config import (
    BRANCHES,
    DATASETS,
    FPS,
    MERGES,
    PAPER_EPOCHS,
    PAPER_LR,
    POSITIVE_RULES,
    PROFILES,
    SETUPS,
    VARIANTS,
    VGG_CHANNEL_DIVISORS,
    Setup,
    window_length,
)

__all__ = ["configure"]


def _per_dataset(name: str, value, datasets, default: dict, minimum: int) -> dict:
    """A whole number for every dataset, a ``{dataset: number}`` dict on top of
    ``default``, or None (``default``)."""
    if value is None:
        return {d: default[d] for d in datasets}
    if isinstance(value, dict):
        unknown = [d for d in value if d not in DATASETS]
        if unknown:
            common.choice(name, unknown[0], DATASETS)
        return {
            d: common.whole_number(f"{name}[{d!r}]", value.get(d, default[d]), minimum=minimum)
            for d in datasets
        }
    number = common.whole_number(
        name, value, minimum=minimum, fix="one number for every dataset, a dict per dataset or None"
    )
    return {d: number for d in datasets}


def _cross_setups(value, profile_value: tuple) -> tuple:
    """``"A"``, ``"B"``, ``"C"``, a list, ``"all"``, ``"none"`` (no cross-database run) or None."""
    if (isinstance(value, str) and value.lower() == "none") or (
        isinstance(value, (list, tuple)) and not value
    ):
        return ()
    return common.dataset_keys(value, SETUPS, profile_value, name="cross_setup")


def _vgg_weights(value, vgg_channels, vgg_batch_norm) -> str | None:
    """ImageNet VGG-16 weights: a local file, and they fit only the plain, full-width VGG-16."""
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not Path(value).expanduser().is_file():
        raise common.ParameterError(
            f"parameter vgg_weights={str(value)!r}: no such file; pass the path of a local "
            "torchvision VGG-16 state dict, or None to train from scratch"
        )
    if vgg_channels not in (None, 1):
        raise common.ParameterError(
            f"parameter vgg_channels={vgg_channels!r}: VGG-16 weights (vgg_weights) need "
            "vgg_channels=1 or None"
        )
    if vgg_batch_norm:
        raise common.ParameterError(
            "parameter vgg_batch_norm=True: the weights (vgg_weights) are plain VGG-16's; use False or None"
        )
    return str(value)


def configure(*, seed=0, profile="book", data_root=None, device="auto", datasets=None, L=None, stride=None,
              positive_rule="middle", positive_iou=0.5, branch="fusion", ablations=None, cross_setup=None,
              epochs=None, lr=None, momentum=0.9, batch_size=16, threshold=0.5, merge="windows",
              variant="bilen", input_size=None, vgg_channels=None, vgg_width=None, vgg_batch_norm=None,
              negatives_per_positive=None, max_folds=None, vgg_weights=None, workers=2,
              limit_steps=None) -> Setup:  # fmt: skip
    """Resolve the notebook parameters against the profile.

    Parameters default to the paper (or, where it is silent, our stated choice); a
    parameter left at ``None`` takes the profile's value, which caps what costs time
    (``epochs``: 100 in ``full``; ``lr``: the paper's 1e-4 in ``full``, 1e-2 in the CPU
    profiles). An explicit value is used as given. ``"all"`` for
    ``negatives_per_positive`` and ``max_folds`` means every negative window and one fold
    per subject (the paper). With ``vgg_weights`` the VGG defaults become the plain VGG-16
    the weights fit (full channels, no BatchNorm). Every value that differs from the paper
    lands in ``caps`` (and :func:`caveats`), tagged as set by a parameter or by the profile.
    ``L``: None derives it from each dataset's fps (:func:`window_length`), an int sets
    it for every dataset, a dict per dataset. ``cross_setup``: ``"A"``, ``"B"``,
    ``"C"``, a list, ``"all"`` or ``"none"``. ``limit_steps`` caps the optimiser steps of
    every training and makes a plumbing run: the profile's settings on the tiny corpus, at
    most 2 LOSO folds, 2 videos per dataset and a block of ``PLUMBING_MAX_WINDOWS`` windows
    per video, the ablations on the first dataset and one cross-database setup. Bad values
    raise :class:`common.ParameterError`.
    """
    # a plumbing run keeps the profile's settings, on the tiny corpus (common.plumbing_profile)
    base, prof = common.start(PROFILES, seed, profile, device, data_root, limit_steps)
    seed = base["seed"]
    plumbing = base["limit_steps"] is not None
    chosen = common.dataset_keys(datasets, DATASETS, prof.datasets)
    common.require_datasets(base["data_root"], chosen)
    branch = common.choice("branch", branch, BRANCHES)
    positive_rule = common.choice("positive_rule", positive_rule, POSITIVE_RULES)
    positive_iou = common.number_in("positive_iou", positive_iou, 0, 1, low_open=True)
    merge = common.choice("merge", merge, MERGES)
    variant = common.choice("variant", variant, VARIANTS)
    threshold = common.number_in(
        "threshold", threshold, 0, 1, low_open=True, high_open=True, fix="a window probability"
    )
    run_ablations = common.flag("ablations", ablations, allow_none=True)
    run_ablations = prof.ablations if run_ablations is None else run_ablations
    setups = _cross_setups(cross_setup, prof.cross_setups)
    if plumbing:  # one cross-database setup (two 224 px VGG-16 trainings in full)
        setups = setups[:1]
    missing = sorted(
        {d for s in setups for d in (*CROSS_DATASET_SETUPS[s]["train"], CROSS_DATASET_SETUPS[s]["test"])}
        - set(chosen)
    )
    if missing:
        raise common.ParameterError(
            f"parameter cross_setup={cross_setup!r}: setups {', '.join(setups)} need "
            f"{', '.join(missing)} among the datasets; add it to datasets or pass "
            "cross_setup='none'"
        )
    lengths = _per_dataset("L", L, chosen, {d: window_length(FPS[d]) for d in DATASETS}, minimum=3)
    # the profile's stride never exceeds a (shorter) L the caller chose: windows must touch
    profile_strides = {d: min(prof.strides.get(d, 1), lengths.get(d, 1)) for d in DATASETS}
    strides = _per_dataset("stride", stride, chosen, profile_strides, minimum=1)
    for d in chosen:
        common.whole_number(
            "stride",
            strides[d],
            maximum=lengths[d],
            fix=f"at most L ({lengths[d]} for {d}) so that windows overlap or touch",
        )
    epochs = common.whole_number("epochs", epochs, allow_none=True, fix="the paper: 100")
    lr = common.positive_number("lr", lr, allow_none=True, fix="the paper: 1e-4")
    momentum = common.number_in("momentum", momentum, 0, 1, high_open=True, fix="our default 0.9")
    batch_size = common.whole_number("batch_size", batch_size, fix="our default 16")
    input_size = common.whole_number(
        "input_size",
        input_size,
        minimum=32,
        allow_none=True,
        fix="VGG-16 halves the image 5 times; the paper: 224",
    )
    if vgg_channels is not None:
        common.whole_number("vgg_channels", vgg_channels, fix="a divisor of 64")
        vgg_channels = common.choice("vgg_channels", int(vgg_channels), VGG_CHANNEL_DIVISORS, allow_none=True)
    vgg_width = common.whole_number(
        "vgg_width", vgg_width, allow_none=True, fix="fc6/fc7 units; the paper: 4096"
    )
    vgg_batch_norm = common.flag("vgg_batch_norm", vgg_batch_norm, allow_none=True)
    negatives = common.cap("negatives_per_positive", negatives_per_positive, prof.negatives_per_positive)
    negatives = None if negatives is None else float(negatives)
    folds = common.plumbing_folds(common.fold_limit(max_folds, prof.max_folds), base["limit_steps"])
    workers = common.whole_number("workers", workers, fix="feature-extraction processes")
    vgg_weights = _vgg_weights(vgg_weights, vgg_channels, vgg_batch_norm)
    # Every value that differs from the paper is recorded, whether the profile capped it
    # or the caller set it: name -> (paper, this run, who chose it).
    caps = {}

    def departure(what, paper, ours, explicit: bool, plumbing_cap: bool = False):
        who = "parameter" if explicit else f"profile '{profile}' caps cost"
        caps[what] = (paper, ours, "a plumbing run (limit_steps)" if plumbing_cap else who)

    run_epochs = common.from_profile(epochs, prof.max_epochs or PAPER_EPOCHS)
    if run_epochs != PAPER_EPOCHS:
        departure("epochs", PAPER_EPOCHS, run_epochs, explicit=epochs is not None)
    # Capped runs make far fewer SGD updates than the paper; the CPU profiles take a larger
    # step (at 1e-4 or 1e-3 the loss did not move in 30-40 epochs). An explicit lr is used as given.
    run_lr = common.from_profile(lr, prof.lr)
    if run_lr != PAPER_LR:
        departure("SGD learning rate", PAPER_LR, run_lr, explicit=lr is not None)
    weighted = vgg_weights is not None  # ImageNet VGG-16 weights: plain layers, full channels
    size = common.from_profile(input_size, prof.input_size)
    if size != 224:
        departure("VGG input (px)", 224, size, explicit=input_size is not None)
    channels = common.from_profile(vgg_channels, 1 if weighted else prof.vgg_channels)
    if channels != 1:
        departure(
            "VGG-16 conv channels", "64..512", f"64..512 / {channels}", explicit=vgg_channels is not None
        )
    fc_width = common.from_profile(vgg_width, prof.vgg_width)
    if fc_width != 4096:
        departure("VGG-16 fc6/fc7 units", 4096, fc_width, explicit=vgg_width is not None)
    if any(strides[d] != 1 for d in chosen):
        departure(
            "window stride (frames)",
            1,
            ", ".join(f"{dataset_label(d)} {strides[d]}" for d in chosen),
            explicit=stride is not None,
        )
    batch_norm = common.from_profile(vgg_batch_norm, False if weighted else prof.vgg_batch_norm)
    if batch_norm:
        departure(
            "VGG-16 layers",
            "plain VGG-16",
            "VGG-16-BN (BatchNorm after each convolution)",
            explicit=vgg_batch_norm is not None,
        )
    if negatives is not None:
        departure(
            "training negatives",
            "all windows",
            f"{negatives:g} per positive window, drawn at random",
            explicit=negatives_per_positive is not None,
        )
    if folds is not None:
        departure(
            "LOSO folds",
            "one per subject",
            f"{folds} groups of subjects",
            explicit=max_folds is not None,
            plumbing_cap=plumbing and folds != common.fold_limit(max_folds, prof.max_folds),
        )
    sgd = {"optimizer": "sgd", "momentum": momentum, "loss": "bce"}
    train = common.train_config(base, epochs=run_epochs, batch_size=batch_size, lr=run_lr, **sgd)
    return Setup(
        **base,
        datasets=chosen,
        lengths=lengths,
        strides=strides,
        positive_rule=positive_rule,
        positive_iou=positive_iou,
        branch=branch,
        ablations=tuple(b for b in BRANCHES if b != branch) if run_ablations else (),
        cross_setups=tuple(setups),
        train=train,
        threshold=threshold,
        merge=merge,
        variant=variant,
        input_size=size,
        vgg_channels=channels,
        vgg_width=fc_width,
        vgg_batch_norm=batch_norm,
        negatives_per_positive=negatives,
        max_folds=folds,
        vgg_weights=vgg_weights,
        workers=workers,
        caps=caps,
        limits=prof,
    )
