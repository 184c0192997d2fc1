"""Training and scoring: :func:`run` (leave one subject out on each dataset, the chosen
branch and its ablations) and :func:`run_cross_dataset` (setups A, B, C against the
VGG16-on-frames baseline), both returning :class:`RunResult` objects."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from melib import runtime
from melib.evaluation.protocols import CROSS_DATASET_SETUPS, loso_splits
from melib.pipelines import common
from melib.pipelines.dyngeonet.config import BRANCH_NAMES, CACHE_VERSION, Setup, predict_batch
from melib.pipelines.dyngeonet.data import Prepared, VideoWindows, geometry_stats, training_set, video_windows
from melib.training import fold_seed, predict, train_folds

__all__ = [
    "model_factory",
    "RunResult",
    "fold_groups",
    "score_video",
    "loso",
    "run",
    "cross_dataset",
    "run_cross_dataset",
    "load_fold_model",
    "training_summary",
]


def model_factory(setup: Setup, branch: str):
    """A function building a fresh model: a DynGeoNet branch (packed inputs) or
    ``"frames"``, the VGG16-on-frames baseline. Both return one logit per sample."""
    from melib.features.geometry import GEO_DIM
    from melib.models.dyngeonet import DynGeoNet, VGGFrames

    shared = {
        "input_size": setup.input_size,
        "vgg_weights": setup.vgg_weights,
        "vgg_width": setup.vgg_width,
        "vgg_channels": setup.vgg_channels,
        "vgg_batch_norm": setup.vgg_batch_norm,
    }
    if branch == "frames":
        return lambda: VGGFrames(**shared)
    return lambda: DynGeoNet(branch=branch, geo_dim=GEO_DIM, **shared)


@dataclass
class RunResult:
    """One trained configuration scored on one dataset's videos."""

    dataset: str
    branch: str  # fusion | dyn | geo | frames
    protocol: str  # "LOSO" or a cross-database setup "A" / "B" / "C"
    probs: dict  # video -> per-window probability
    fold_of: dict  # video -> fold name whose model scored it
    histories: dict  # fold -> history
    checkpoints: dict  # fold -> Path
    stats: dict  # fold -> (geo mean, geo std)
    seconds: float = 0.0
    trained_folds: int = 0

    @property
    def method(self) -> str:
        return "VGG16 (frames)" if self.branch == "frames" else BRANCH_NAMES[self.branch]


def fold_groups(subjects, max_folds: int | None) -> dict:
    """``{fold name: subjects held out}``: one fold per subject, or ``max_folds`` groups."""
    subjects = sorted(set(subjects))
    folds = loso_splits(subjects, max_folds=max_folds)
    return {"+".join(f.held_out): list(f.held_out) for f in folds}


def _experiment_key(setup: Setup, branch: str, sources: list[VideoWindows], extra) -> dict:
    return {
        "branch": branch,
        "videos": sorted(w.stamp for w in sources),
        "rule": setup.positive_rule,
        "positive_iou": setup.positive_iou if setup.positive_rule == "iou" else None,
        "negatives": setup.negatives_per_positive,
        "size": setup.input_size,
        "vgg": (setup.vgg_channels, setup.vgg_width, setup.vgg_batch_norm),
        "weights": setup.vgg_weights,
        "extra": extra,
        "version": CACHE_VERSION,
    }


def _train(
    setup: Setup, branch: str, folds: dict, train_sources, folder: Path, key: dict, label: str, progress: bool
):
    """Yield (FoldResult, geometry stats) for each fold, training where needed."""
    mode = "frames" if branch == "frames" else "packed"
    stats = {fold: geometry_stats(train_sources(fold)) for fold in folds}

    def make_data(fold):
        return training_set(
            train_sources(fold), setup.negatives_per_positive, fold_seed(setup.seed, fold), mode, stats[fold]
        )

    for result in train_folds(
        list(folds),
        model_factory(setup, branch),
        make_data,
        setup.train,
        folder,
        key,
        progress=progress,
        desc=label,
    ):
        yield result, stats[result.fold]


def score_video(
    model: nn.Module, windows: VideoWindows, mode: str, stats, device: str = "auto", batch_size: int = 256
) -> np.ndarray:
    """Probability of every window of a video, ``batch_size`` windows at a time."""
    logits = predict(model, video_windows(windows, mode, stats), batch_size=batch_size, device=device)
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64).reshape(-1)))


def loso(prep: Prepared, setup: Setup, branch: str | None = None, *, progress: bool = True) -> RunResult:
    """Leave-one-subject-out on one dataset: train per fold, score its held-out videos."""
    branch = branch or setup.branch
    folds = fold_groups(prep.subjects, setup.max_folds)
    all_sources = [prep.windows[v] for v in prep.videos["video"]]

    def train_sources(fold):
        return [w for w in all_sources if w.subject not in folds[fold]]

    key = _experiment_key(setup, branch, all_sources, {"dataset": prep.name, "folds": folds})
    folder = runtime.cache_dir("checkpoints", "dyngeonet", prep.name)
    out = RunResult(prep.name, branch, "LOSO", {}, {}, {}, {}, {})
    start = time.perf_counter()
    mode = "frames" if branch == "frames" else "packed"
    # the bar counts epochs over all folds: say so, or "48/48 epoch" reads as 48 epochs
    label = (
        f"{common.dataset_label(prep.name)} {BRANCH_NAMES.get(branch, branch)} "
        f"({len(folds)} folds x {setup.train.epochs} epochs)"
    )
    if common.is_plumbing(setup):  # the bar still counts epochs; training stops far sooner
        label += f", at most {setup.limit_steps} steps each"
    for result, stats in _train(setup, branch, folds, train_sources, folder, key, label, progress):
        out.trained_folds += not result.skipped
        out.histories[result.fold], out.checkpoints[result.fold] = result.history, result.checkpoint
        out.stats[result.fold] = stats
        for video in prep.videos_of(folds[result.fold]):
            out.probs[video] = score_video(
                result.model, prep.windows[video], mode, stats, setup.device, predict_batch(setup.input_size)
            )
            out.fold_of[video] = result.fold
    out.seconds = time.perf_counter() - start
    return out


def run(prepared: dict, setup: Setup, *, progress: bool = True) -> dict:
    """The chosen branch and (when the profile runs them) the two ablations, leave one
    subject out on every dataset (the ablations on the first only in a plumbing run):
    ``{(dataset, branch): RunResult}``."""
    return {
        (name, branch): loso(prep, setup, branch, progress=progress)
        for branch in (setup.branch,) + setup.ablations
        for name, prep in prepared.items()
        if branch == setup.branch or name in setup.ablation_datasets()
    }


def cross_dataset(
    prepared: dict, setup: Setup, cross: str, branch: str | None = None, *, progress: bool = True
) -> RunResult:
    """Setup ``cross`` (A, B or C): one model trained on every video of the two training
    datasets, scored on every video of the test dataset."""
    branch = branch or setup.branch
    spec = CROSS_DATASET_SETUPS[cross]
    sources = [w for name in spec["train"] for w in prepared[name].windows.values()]
    test = prepared[spec["test"]]
    key = _experiment_key(setup, branch, sources, {"setup": cross, "train": list(spec["train"])})
    folder = runtime.cache_dir("checkpoints", "dyngeonet", f"cross-{cross}")
    out = RunResult(test.name, branch, cross, {}, {}, {}, {}, {})
    start = time.perf_counter()
    mode = "frames" if branch == "frames" else "packed"
    label = f"setup {cross} {BRANCH_NAMES.get(branch, 'VGG16 frames')}"
    for result, stats in _train(
        setup, branch, {cross: None}, lambda fold: sources, folder, key, label, progress
    ):
        out.trained_folds += not result.skipped
        out.histories[cross], out.checkpoints[cross], out.stats[cross] = (
            result.history,
            result.checkpoint,
            stats,
        )
        for video in test.videos["video"]:
            out.probs[video] = score_video(
                result.model, test.windows[video], mode, stats, setup.device, predict_batch(setup.input_size)
            )
            out.fold_of[video] = cross
    out.seconds = time.perf_counter() - start
    return out


def run_cross_dataset(prepared: dict, setup: Setup, *, progress: bool = True) -> dict:
    """Every setup of ``setup.cross_setups`` for the chosen branch and the VGG16 baseline:
    ``{(setup, branch): RunResult}``."""
    return {
        (cross, branch): cross_dataset(prepared, setup, cross, branch, progress=progress)
        for cross in setup.cross_setups
        for branch in (setup.branch, "frames")
    }


def load_fold_model(setup: Setup, result: RunResult, fold: str) -> nn.Module:
    """The trained model of one fold of a run, in eval mode."""
    model = model_factory(setup, result.branch)()
    model.load_state_dict(runtime.load_torch(result.checkpoints[fold])["model"])
    return model.eval()


def training_summary(runs: dict) -> pd.DataFrame:
    """Folds, training windows, first and last epoch loss and trained/loaded folds."""
    rows = []
    for result in runs.values():
        first = [h["epoch_loss"][0] for h in result.histories.values() if h["epoch_loss"]]
        last = [h["epoch_loss"][-1] for h in result.histories.values() if h["epoch_loss"]]
        rows.append(
            {
                "dataset": common.dataset_label(result.dataset),
                "protocol": result.protocol,
                "network": result.method,
                "folds": len(result.histories),
                "loss epoch 1": common.round_value(float(np.mean(first))) if first else np.nan,
                "loss last epoch": common.round_value(float(np.mean(last))) if last else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index(["dataset", "protocol", "network"])
