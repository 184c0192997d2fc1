"""SOFTNet's leave-one-subject-out runs: one model per held-out subject and expression
type, the held-out videos scored and spotted (Liong et al. 2021, sections 2.3-2.4), and
the paper's control that scores windows without a network."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from melib import runtime
from melib.evaluation.postprocess import spot_intervals
from melib.models.backbones import build_backbone
from melib.models.softnet import SOFTNet
from melib.pipelines import common
from melib.pipelines.softnet.config import Setup
from melib.pipelines.softnet.data import Prepared
from melib.pipelines.softnet.windows import training_set, video_windows
from melib.training import predict, train_folds

__all__ = [
    "RunResult",
    "make_model",
    "load_fold_model",
    "loso",
    "run",
    "training_summary",
    "feature_sum_scores",
    "without_softnet",
]

SPOTTED_COLUMNS = ["onset", "offset", "peak", "score", "video", "subject", "type"]


@dataclass
class RunResult:
    """One (dataset, type) LOSO run: spotted intervals, scores and training curves."""

    dataset: str
    kind: str
    k: int
    predictions: pd.DataFrame  # video, subject, type, onset, offset, peak, score
    scores: dict  # video -> raw per-window scores
    histories: dict  # fold -> history
    checkpoints: dict  # fold -> Path
    model_name: str = "softnet"
    threshold: float = 0.55
    seconds: float = 0.0
    trained_folds: int = 0


def make_model(name: str):
    """A constructor of SOFTNet or of one of Table 3's backbones."""
    if name == "softnet":
        return SOFTNet
    return functools.partial(build_backbone, name)


def load_fold_model(result: RunResult, fold: str) -> torch.nn.Module:
    """The model trained without subject ``fold``, in eval mode."""
    model = make_model(result.model_name)()
    state = runtime.load_torch(result.checkpoints[fold])["model"]
    model.load_state_dict(state)
    return model.eval()


def loso(
    prep: Prepared,
    setup: Setup,
    kind: str,
    *,
    function: str | None = None,
    model_name: str = "softnet",
    max_folds: int | None = None,
    epochs: int | None = None,
    threshold: float | None = None,
    progress: bool = True,
) -> RunResult:
    """Leave-one-subject-out for one type: train per fold, score and spot held-out videos.

    ``max_folds`` trains only the first N subjects' folds (each still trains on every
    other subject); ``threshold`` and ``epochs`` default to the setup's.
    """
    function = function or setup.pseudo_label
    threshold = setup.threshold if threshold is None else threshold
    k = prep.k[kind]
    subjects = prep.subjects[:max_folds] if max_folds else prep.subjects
    videos_of = {s: list(prep.videos.loc[prep.videos["subject"] == s, "video"]) for s in prep.subjects}
    cfg = setup.train if epochs is None else dataclasses.replace(setup.train, epochs=epochs)
    augment_positives = setup.augment and kind == "micro"
    key = {
        "dataset": prep.name,
        "root": str(prep.root),
        "features": prep.specs[kind].key(),
        "type": kind,
        "labels": function,
        "negatives": (setup.negative_keep, setup.negative_sampling),
        "augment": (augment_positives, setup.noise_std),
        "model": model_name,
        # feature file names carry each video's frame stamp: a regenerated corpus retrains
        "videos": sorted(prep.paths[(v, kind)].name for v in prep.videos["video"]),
        "subjects": subjects,
        "version": 1,
    }

    def make_data(fold):
        train_videos = [v for s in prep.subjects if s != fold for v in videos_of[s]]
        return training_set(
            prep,
            train_videos,
            kind,
            function,
            setup.negative_keep,
            setup.negative_sampling,
            augment_positives,
            seed=setup.seed,
            noise_std=setup.noise_std,
        )

    folder = runtime.cache_dir("checkpoints", "softnet", prep.name)
    start = time.perf_counter()
    preds, scores, histories, ckpts, trained = [], {}, {}, {}, 0
    label = f"{common.dataset_label(prep.name)} {kind}" + (
        "" if model_name == "softnet" else f" {model_name}"
    )
    for fold in train_folds(
        subjects, make_model(model_name), make_data, cfg, folder, key, progress=progress, desc=label
    ):
        trained += not fold.skipped
        histories[fold.fold], ckpts[fold.fold] = fold.history, fold.checkpoint
        for video in videos_of[fold.fold]:
            s = predict(fold.model, video_windows(prep, video, kind), batch_size=512, device=setup.device)
            scores[video] = s
            spotted = spot_intervals(s, k, threshold, n_frames=prep.n_frames(video))
            preds.append(spotted.assign(video=video, subject=fold.fold, type=kind))
    predictions = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(columns=SPOTTED_COLUMNS)
    return RunResult(
        prep.name,
        kind,
        k,
        predictions,
        scores,
        histories,
        ckpts,
        model_name,
        threshold,
        time.perf_counter() - start,
        trained,
    )


def run(prepared: dict, setup: Setup, *, progress: bool = True) -> dict:
    """SOFTNet LOSO for every dataset and type: ``{(dataset, type): RunResult}``."""
    return {
        (name, kind): loso(prep, setup, kind, progress=progress)
        for name, prep in prepared.items()
        for kind in prep.specs
    }


def training_summary(runs: dict) -> pd.DataFrame:
    """k, folds, the mean first and last epoch loss and the spotted count of each run."""
    rows = []
    for (name, kind), result in runs.items():
        first = [h["epoch_loss"][0] for h in result.histories.values() if h["epoch_loss"]]
        last = [h["epoch_loss"][-1] for h in result.histories.values() if h["epoch_loss"]]
        rows.append(
            {
                "dataset": common.dataset_label(name),
                "type": kind,
                "k": result.k,
                "folds": len(result.histories),
                "loss epoch 1": common.round_value(float(np.mean(first))) if first else np.nan,
                "loss last epoch": common.round_value(float(np.mean(last))) if last else np.nan,
                "spotted": len(result.predictions),
            }
        )
    return pd.DataFrame(rows).set_index(["dataset", "type"])


def feature_sum_scores(prep: Prepared, video: str, kind: str) -> np.ndarray:
    """The control's frame score: the sum of the window's feature map (|u|+|v|+strain)."""
    feats = prep.features(video, kind)
    return np.asarray([float(feats[i].sum()) for i in range(len(feats))])


def without_softnet(prepared: dict, setup: Setup, threshold: float = 0.5) -> dict:
    """The paper's control (Table 1): no network, each window scored by its feature sum,
    threshold p = 0.5.

    Our feature map is the resampled 42x42 input (the paper's control skipped the
    resampling); the spotting steps are the same as SOFTNet's.
    """
    threshold = common.number_in("threshold", threshold, 0, 1)
    runs = {}
    for name, prep in prepared.items():
        for kind in prep.specs:
            preds, scores = [], {}
            for video, subject, n_frames in prep.videos[["video", "subject", "n_frames"]].itertuples(
                index=False
            ):
                s = feature_sum_scores(prep, video, kind)
                scores[video] = s
                preds.append(
                    spot_intervals(s, prep.k[kind], threshold, n_frames=n_frames).assign(
                        video=video, subject=subject, type=kind
                    )
                )
            runs[(name, kind)] = RunResult(
                name,
                kind,
                prep.k[kind],
                pd.concat(preds, ignore_index=True),
                scores,
                {},
                {},
                model_name="feature sum",
                threshold=threshold,
            )
    return runs
