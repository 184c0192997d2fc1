"""SOFTNet's ablations: the pseudo-label function (Liong et al. 2021, section 3.2), the
window length k, and the backbones of Table 3."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from melib.models.backbones import BACKBONES, PAPER_TABLE3, inference_time, keras_style_count
from melib.models.softnet import count_parameters
from melib.pipelines import common
from melib.pipelines.softnet.config import Setup
from melib.pipelines.softnet.data import Prepared, with_k
from melib.pipelines.softnet.paper import PAPER_PSEUDO_LABELS
from melib.pipelines.softnet.run import RunResult, loso, make_model
from melib.pipelines.softnet.tables import evaluate
from melib.training import cpu_threads

__all__ = ["ablation_pseudo_labels", "ablation_k", "ablation_backbones"]


def _ablation_dataset(prepared: dict, setup: Setup, dataset: str | None) -> str:
    name = dataset or setup.limits.ablation_dataset
    return name if name in prepared else next(iter(prepared))


def _prepared_kind(prep: Prepared, kind: str) -> str:
    """``kind`` when its features exist, else the type that was prepared."""
    return kind if kind in prep.specs else next(iter(prep.specs))


def _ablation_epochs(setup: Setup) -> int:
    limit = setup.limits.ablation_max_epochs
    return setup.train.epochs if limit is None else min(limit, setup.train.epochs)


def _subset(prep: Prepared, result: RunResult) -> Prepared:
    """``prep`` restricted to the subjects a (possibly capped) run scored."""
    videos = prep.videos[prep.videos["video"].isin(result.scores)]
    return dataclasses.replace(prep, videos=videos, gt=prep.gt[prep.gt["video"].isin(videos["video"])])


def _scores(prep: Prepared, result: RunResult) -> pd.Series:
    """The MEGC row (TP, FP, FN, F1, AP...) of one run, on the subjects it scored."""
    return evaluate({prep.name: _subset(prep, result)}, {(prep.name, result.kind): result})[
        prep.name
    ].table.loc[result.kind]


def _ablation_scores(prep: Prepared, setup: Setup, kind: str, progress: bool, **options) -> dict:
    """TP, FP, FN, F1 and AP of one ablation variant, trained with the ablation caps."""
    max_folds = setup.limits.ablation_max_folds
    epochs = _ablation_epochs(setup)
    result = loso(prep, setup, kind, max_folds=max_folds, epochs=epochs, progress=progress, **options)
    r = _scores(prep, result)
    row = {count: int(r[count]) for count in ("TP", "FP", "FN")}
    return row | {f"{metric} (ours)": common.round_value(float(r[metric])) for metric in ("F1", "AP")}


def ablation_pseudo_labels(
    prepared: dict,
    setup: Setup,
    functions=("unit_step", "linear", "step"),
    dataset: str | None = None,
    kind: str = "macro",
    progress: bool = True,
) -> pd.DataFrame:
    """F1 of SOFTNet trained with each pseudo-label function (paper: CAS(ME)² macro)."""
    prep = prepared[_ablation_dataset(prepared, setup, dataset)]
    kind = _prepared_kind(prep, kind)
    rows = []
    for fn in functions:
        scores = _ablation_scores(prep, setup, kind, progress, function=fn)
        rows.append({"pseudo-label": fn, **scores, "F1 (paper, CAS(ME)² macro)": PAPER_PSEUDO_LABELS[fn]})
    return pd.DataFrame(rows).set_index("pseudo-label")


def ablation_k(
    prepared: dict,
    setup: Setup,
    factors=None,
    dataset: str | None = None,
    kind: str = "macro",
    progress: bool = True,
) -> pd.DataFrame:
    """SOFTNet with the window length k scaled around the paper's int((N+1)/2).

    k sets the flow's frame gap, the pseudo-label window, the smoothing span and the
    spotted interval's length [peak-k, peak+k] at once, so it trades recall of short
    expressions against the IoU of long ones.
    """
    name = _ablation_dataset(prepared, setup, dataset)
    prep = prepared[name]
    kind = _prepared_kind(prep, kind)
    rows = []
    for factor in factors or setup.limits.k_factors:
        k = max(1, int(round(prep.k[kind] * factor)))
        variant = prep if k == prep.k[kind] else with_k(prep, setup, kind, k, progress=progress)
        rows.append({"k": k, "x derived k": factor, **_ablation_scores(variant, setup, kind, progress)})
    table = pd.DataFrame(rows).set_index("k")
    table.attrs["title"] = f"{common.dataset_label(name)} {kind}"
    return table


def ablation_backbones(
    prepared: dict,
    setup: Setup,
    dataset: str | None = None,
    kind: str = "macro",
    train=None,
    progress: bool = True,
) -> pd.DataFrame:
    """Table 3: parameters and CPU inference time for every backbone; F1/AP for the
    ones in ``train`` (default: the profile's list), trained like SOFTNet."""
    prep = prepared[_ablation_dataset(prepared, setup, dataset)]
    kind = _prepared_kind(prep, kind)
    train = setup.limits.backbone_train if train is None else tuple(train)
    n_frames = setup.limits.backbone_frames
    rows = []
    for model_name in ("softnet",) + BACKBONES:
        model = make_model(model_name)()
        f1 = ap = np.nan
        if model_name == "softnet" or model_name in train:
            result = loso(
                prep,
                setup,
                kind,
                model_name=model_name,
                epochs=_ablation_epochs(setup),
                max_folds=setup.limits.backbone_max_folds or setup.limits.ablation_max_folds,
                progress=progress,
            )
            r = _scores(prep, result)
            f1, ap = common.round_value(float(r["F1"])), common.round_value(float(r["AP"]))
        torch.manual_seed(0)
        with cpu_threads(1):
            seconds = inference_time(model, n_frames=n_frames, batch_size=256)
        paper = PAPER_TABLE3[model_name]
        millions = round(count_parameters(model) / 1e6, 4)
        rows.append(
            {
                "network": model_name,
                "F1 (ours)": f1,
                "AP (ours)": ap,
                f"CPU s / {n_frames} frames (ours)": round(seconds, 3),
                "x SOFTNet time (ours)": None,
                "params M (ours)": millions,
                "params M, Keras-style (ours)": round(keras_style_count(model) / 1e6, 4)
                if model_name != "softnet"
                else millions,
                "F1 (paper)": paper[0],
                "AP (paper)": paper[1],
                "inference s (paper)": paper[2],
                "params M (paper)": paper[3],
            }
        )
    table = pd.DataFrame(rows).set_index("network")
    # Seconds depend on the machine; the ratio to SOFTNet is what compares with the paper.
    col = f"CPU s / {n_frames} frames (ours)"
    table["x SOFTNet time (ours)"] = (table[col] / table.loc["softnet", col]).round(1)
    table["x SOFTNet time (paper)"] = (table["inference s (paper)"] / PAPER_TABLE3["softnet"][2]).round(1)
    return table
