"""softnet: the notebook parameters resolved into a :class:`Setup` (:func:`configure`,
every field validated, ``None`` the profile's value), and :func:`caveats`."""

from __future__ import annotations

import dataclasses
import math

from melib.features.flow import FlowSettings, TVL1Settings
from melib.pipelines import common
from melib.pipelines.softnet.config import (
    FLOW_METHODS,
    NEGATIVE_SAMPLING,
    PAPER_CROP,
    PAPER_EPOCHS,
    PAPER_LR,
    PROFILES,
    PSEUDO_LABELS,
    SPOTTING_DATASETS,
    TVL1_PRESETS,
    TYPES,
    Setup,
    plumbing_limits,
)

__all__ = ["configure"]


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


def configure(*, seed=0, profile="book", data_root=None, device="auto", datasets=None, expression="both",
              k=None, threshold=0.55, epochs=None, lr=None, batch_size=12, pseudo_label="unit_step",
              negative_keep=0.5, negative_sampling="every_other", augment=True, noise_std=1.0,
              flow_method="tvl1", tvl1=None, crop_size=None, max_folds=None, workers=2,
              limit_steps=None) -> Setup:  # fmt: skip
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
    base, prof = common.start(
        PROFILES, seed, profile, device, data_root, limit_steps, resolve=plumbing_limits
    )
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
    train = common.train_config(base, epochs=run_epochs, batch_size=batch_size, lr=run_lr)
    return Setup(
        **base,
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
    )
