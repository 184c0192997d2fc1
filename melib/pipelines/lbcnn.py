"""LBCNN end to end: Pan, Xie & Wang, "Local Bilinear Convolutional Neural Network for
spotting macro- and micro-expression intervals in long video sequences" (MEGC 2020).

Each notebook cell calls one or two functions of this module:

1. :func:`configure` resolves the notebook parameters against the profile into an
   :class:`LbcnnSetup` (``describe()`` lays this run beside the paper);
2. :func:`prepare` loads each dataset, tracks the face and caches the sampled inputs
   (face crop + ROI mosaic) of every video;
3. :func:`run` trains one LBCNN per LOSO fold on class-balanced samples, classifies
   every grid frame of the held-out videos, and turns runs of frames into intervals;
4. :func:`frame_metrics`, :func:`spotting_tables`, :func:`table_iii` score them
   (frame accuracy / UF1 / UAR, the MEGC metric on all videos, the paper's Table III);
5. figures: :func:`input_figure`, :func:`timeline_figure`, :func:`gradcam_figure`,
   :func:`tsne_figure`, :func:`loss_figure`.

Paper vs authors' code, and what is exposed
-------------------------------------------
* Trunk: the paper's shallow AlexNet-like stream (``trunk="alexnet_like"``, default)
  or the code's ResNet-18 (``"resnet18"``); both from scratch here. Our addition: a
  BatchNorm after each AlexNet-like convolution (``batch_norm=True``); without it the
  from-scratch B-CNN stayed at chance level (see :mod:`melib.models.lbcnn`).
* Loss: the paper does not name one; it follows Lin et al.'s B-CNN, a linear
  classifier trained on the class labels, which we read as softmax cross-entropy
  (``loss="ce"``, default). The code trains MSE on one-hot targets (``loss="mse"``).
* Optimiser: the paper gives none; the code's Adam (lr 1e-3) is used. The code's
  StepLR(50, 0.5) over 300 epochs is not reproduced (constant lr); ``full`` keeps its
  300 epochs.
* Class balance: the code undersamples every class to the smallest one
  (``balance="undersample"``); by default we resample every class to the same count
  (``"oversample"``: the largest class, capped by the profile's ``max_per_class``).
* Spotting: runs of at least ``min_run_length`` (2) consecutive classified frames of
  one class become intervals; the length filters of the code (CAS(ME)² micro 6-16
  frames, macro >= 17; SAMM-LV micro 20-105, macro >= 106; scaled by fps for other
  frame rates) keep a run only when its length fits its own class
  (``length_rule="own_class"``, default), or give any expression run the type its
  length implies (``"by_length"``).
* Counting: the MEGC rules on every video (one ground truth matches at most one
  prediction). The code's count, where one ground truth can be matched several
  times, is shown only as a labelled aside (:func:`double_counting_table`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset as TorchDataset

from melib import runtime
from melib.data.datasets import load_from_data_root
from melib.evaluation import postprocess
from melib.evaluation.protocols import loso_splits
from melib.evaluation.recognition import confusion_table, recognition_scores
from melib.evaluation.spotting import evaluate_spotting, lbcnn_double_counting
from melib.features.cache import stable_hash
from melib.features.lbcnn import (
    CLASS_INDEX,
    CLASS_NAMES,
    InputSettings,
    SamplingSettings,
    VideoSamples,
    frame_input,
    prepare_videos,
)
from melib.models.lbcnn import LBCNN, TRUNKS, count_parameters
from melib.training import TrainConfig, fold_seed, predict, train_folds

__all__ = ["PAPER_TABLE3", "PROFILES", "LbcnnSetup", "configure", "prepare", "run", "spot_video",
           "frame_metrics", "spotting_tables", "table_iii", "double_counting_table", "pick_examples",
           "input_figure", "timeline_figure", "gradcam_figure", "tsne_figure", "loss_figure",
           "load_fold_model"]

SPOTTING_DATASETS = ("casme_sq", "samm_lv")
DATASET_LABELS = {"casme_sq": "CAS(ME)²", "samm_lv": "SAMM Long Videos"}

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
class Profile:
    corpus: str
    input_size: int
    channels: tuple
    hidden: int
    epochs: int
    strides: dict  # frames between classified frames, per dataset
    max_per_class: int | None  # training samples per class per fold
    max_folds: int | None  # None: one fold per subject
    batch_size: int = 32
    dropout: float = 0.0  # before each fc layer; the few CPU epochs converge faster without
    cache_grid: bool = True
    tsne_per_class: int = 150


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
    "full": Profile(corpus="full", input_size=224, channels=(64, 192, 256), hidden=256, epochs=300,
                    strides={"casme_sq": 1, "samm_lv": 1}, max_per_class=None, max_folds=None,
                    dropout=0.5, cache_grid=False, tsne_per_class=300),
}


@dataclass
class LbcnnSetup:
    """The resolved run: notebook parameters after the profile."""

    seed: int
    profile: str
    data_root: Path | None
    device: str
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
    limits: Profile

    @property
    def input_settings(self) -> InputSettings:
        return InputSettings(input_size=self.input_size)

    def sampling(self, dataset: str, fps: float) -> SamplingSettings:
        return SamplingSettings(stride=int(self.strides[dataset]),
                                neutral_gap=int(round(self.neutral_gap_s * fps)),
                                min_expression_samples=self.min_expression_samples,
                                cache_grid=self.cache_grid)

    def model_kwargs(self) -> dict:
        return dict(trunk=self.trunk, input_size=self.input_size, streams=self.streams,
                    channels=tuple(self.channels), hidden=self.hidden, dropout=self.dropout,
                    weights=self.weights, batch_norm=self.batch_norm)

    def make_model(self) -> LBCNN:
        return LBCNN(**self.model_kwargs())

    def describe(self) -> pd.DataFrame:
        """What runs, beside the paper (and the authors' code where they differ)."""
        head = f"fc {self.hidden} + fc 3" if self.hidden else "linear fc 3"
        head += f", dropout {self.dropout:g}" if self.dropout else ""
        trunk = (f"AlexNet-like conv {'/'.join(map(str, self.channels))}"
                 + (" + BatchNorm" if self.batch_norm else "") if self.trunk == "alexnet_like"
                 else "ResNet-18 (from scratch)" if self.weights is None else f"ResNet-18 ({self.weights})")
        strides = ", ".join(f"{DATASET_LABELS.get(d, d)} every {self.strides[d]}" for d in self.datasets)
        rows = [
            ("datasets", ", ".join(DATASET_LABELS.get(d, d) for d in self.datasets),
             "CAS(ME)², SAMM Long Videos", "same"),
            ("data", str(self.data_root) if self.data_root else
             f"synthetic corpus '{self.limits.corpus}' (not the real datasets)", "real datasets", "same"),
            ("input size", f"{self.input_size}x{self.input_size}x3 (face) + same (ROI mosaic)", "224x224x3",
             "224x224x3"),
            ("trunk", trunk, "AlexNet-like: 3 conv, 2 pool, 2 fc", "ResNet-18 (ImageNet)"),
            ("bilinear", f"{'symmetric' if self.streams == 1 else 'two-stream'} outer product, mean over "
                         "locations, signed sqrt, L2", "B-CNN (Lin et al.)", "outer product / 28², sqrt, L2"),
            ("head after fusion", head, "2 fc (with the trunk)", "fc 3"),
            ("loss", {"ce": "cross-entropy", "mse": "MSE on one-hot"}[self.train.loss],
             "not stated (B-CNN: linear classifier)", "MSE on one-hot"),
            ("optimiser", f"Adam lr {self.train.lr:g}, {self.train.epochs} epoch(s), "
                          f"batch {self.train.batch_size}", "not stated", "Adam 1e-3, StepLR(50, 0.5), 300 epochs"),
            ("class balance", f"{self.balance}" + (f", at most {self.max_per_class} per class"
                                                   if self.max_per_class else ""),
             "uniform sampling", "undersampling"),
            ("classified frames", strides, "every frame", "every frame"),
            ("LOSO folds", "one per subject" if self.max_folds is None else f"{self.max_folds} subject groups",
             "one per subject", "one per subject"),
            ("intervals", f"runs >= {self.min_run_length} frames, length filter ({self.length_rule})",
             "not stated", "runs >= 2, CAS 6-16 / >=17, SAMM 20-105 / >=106"),
            ("device", str(runtime.resolve_device(self.device)), "GPU", "GPU"),
        ]
        return pd.DataFrame(rows, columns=["setting", "this run", "paper", "authors' code"]).set_index("setting")


def _default(value, fallback):
    return fallback if value is None else value


def configure(seed: int = 0, profile: str = "book", data_root=None, device: str = "auto",
              dataset="both", trunk: str = "alexnet_like", input_size: int | None = None,
              sampling_stride=None, epochs: int | None = None, lr: float = 1e-3,
              min_run_length: int = 2, loss: str = "ce", balance: str = "oversample",
              max_per_class=..., max_folds=..., streams: int = 1, channels=None,
              hidden: int | None = None, dropout: float | None = None, weights: str | None = None,
              batch_norm: bool = True,
              batch_size: int | None = None, neutral_gap_s: float = 0.5,
              min_expression_samples: int = 3, length_rule: str = "own_class",
              workers: int = 1) -> LbcnnSetup:
    """Resolve the notebook parameters against the profile (``None``: the profile's).

    ``dataset``: ``casme_sq``, ``samm_lv`` or ``both``. ``sampling_stride``: frames
    between classified (and neutral training) frames: an int for every dataset, or a
    ``{dataset: int}`` dict. ``max_per_class`` / ``max_folds``: ``None`` lifts the
    profile's cap.
    """
    runtime.check_profile(profile)
    limits = PROFILES[profile]
    datasets = SPOTTING_DATASETS if dataset in (None, "both") else \
        tuple([dataset] if isinstance(dataset, str) else dataset)
    unknown = [d for d in datasets if d not in SPOTTING_DATASETS]
    if unknown:
        raise ValueError(f"dataset={dataset!r}: LBCNN spots on {', '.join(SPOTTING_DATASETS)} or 'both'")
    if trunk not in TRUNKS:
        raise ValueError(f"trunk={trunk!r}: use one of {', '.join(TRUNKS)}")
    if loss not in ("ce", "mse"):
        raise ValueError(f"loss={loss!r}: use 'ce' (cross-entropy) or 'mse' (the code's, one-hot)")
    if balance not in ("oversample", "undersample"):
        raise ValueError(f"balance={balance!r}: use 'oversample' or 'undersample' (the code's)")
    if length_rule not in ("own_class", "by_length"):
        raise ValueError(f"length_rule={length_rule!r}: use 'own_class' or 'by_length'")
    if min_run_length < 1:
        raise ValueError(f"min_run_length must be >= 1, got {min_run_length}")
    strides = dict(limits.strides)
    if isinstance(sampling_stride, dict):
        strides.update({k: int(v) for k, v in sampling_stride.items()})
    elif sampling_stride is not None:
        strides = {k: int(sampling_stride) for k in strides}
    if any(v < 1 for v in strides.values()):
        raise ValueError(f"sampling_stride must be >= 1, got {sampling_stride!r}")
    train = TrainConfig(epochs=int(_default(epochs, limits.epochs)),
                        batch_size=int(_default(batch_size, limits.batch_size)), lr=float(lr),
                        optimizer="adam", loss=loss, seed=int(seed), device=device)
    # ResNet-18's 512² bilinear vector is classified linearly, as in the code.
    default_hidden = 0 if trunk == "resnet18" else limits.hidden
    return LbcnnSetup(
        seed=int(seed), profile=profile, data_root=Path(data_root).expanduser() if data_root else None,
        device=device, datasets=datasets, trunk=trunk, streams=int(streams),
        input_size=int(_default(input_size, limits.input_size)),
        channels=tuple(_default(channels, limits.channels)), hidden=int(_default(hidden, default_hidden)),
        dropout=float(_default(dropout, limits.dropout)), weights=weights, batch_norm=bool(batch_norm),
        strides=strides, neutral_gap_s=float(neutral_gap_s),
        min_expression_samples=int(min_expression_samples), balance=balance,
        max_per_class=limits.max_per_class if max_per_class is ... else max_per_class,
        max_folds=limits.max_folds if max_folds is ... else max_folds,
        min_run_length=int(min_run_length), length_rule=length_rule, train=train,
        cache_grid=limits.cache_grid, tsne_per_class=limits.tsne_per_class, workers=int(workers),
        limits=limits)


# ------------------------------------------------------------------------- prepare


@dataclass
class Prepared:
    """One dataset: the loader and every video's cached samples."""

    name: str
    dataset: object
    videos: dict[str, VideoSamples]
    sampling: SamplingSettings

    def sample_counts(self) -> pd.DataFrame:
        rows = []
        for vs in self.videos.values():
            counts = vs.samples["label"].value_counts()
            rows.append({"subject": vs.subject, "video": vs.video, "frames": vs.n_frames,
                         "classified": len(vs.grid),
                         **{name: int(counts.get(i, 0)) for i, name in enumerate(CLASS_NAMES)}})
        return pd.DataFrame(rows)


def data_root_for(setup: LbcnnSetup) -> Path:
    if setup.data_root is not None:
        return setup.data_root
    from melib.data.synth import ensure_corpus

    return ensure_corpus(setup.limits.corpus, seed=setup.seed, progress=False)


def prepare(setup: LbcnnSetup, progress: bool = True) -> dict[str, Prepared]:
    """Load each dataset and cache the inputs of every video (crops, ROIs, samples)."""
    root = data_root_for(setup)
    out = {}
    for name in setup.datasets:
        ds = load_from_data_root(name, root)
        sampling = setup.sampling(name, ds.fps)
        videos = prepare_videos(ds, setup.input_settings, sampling, workers=setup.workers,
                                progress=progress)
        out[name] = Prepared(name, ds, videos, sampling)
    return out


def sample_summary(prepared: dict[str, Prepared]) -> pd.DataFrame:
    """Training samples per class and classified frames, per dataset."""
    rows = []
    for name, p in prepared.items():
        t = p.sample_counts()
        rows.append({"dataset": name, "subjects": t["subject"].nunique(), "videos": len(t),
                     "frames": int(t["frames"].sum()), "stride": p.sampling.stride,
                     "classified": int(t["classified"].sum()),
                     **{c: int(t[c].sum()) for c in CLASS_NAMES},
                     "neutral gap (frames)": p.sampling.neutral_gap})
    return pd.DataFrame(rows).set_index("dataset")


# ------------------------------------------------------------------------- training


class SampleSet(TorchDataset):
    """(input, target) pairs read from the per-video memory maps on demand."""

    def __init__(self, items: list[tuple[VideoSamples, int, int]], loss: str):
        self.items = items
        self.loss = loss

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        vs, row, label = self.items[i]
        x = torch.from_numpy(np.asarray(vs.inputs[row], dtype=np.float32))
        if self.loss == "mse":
            y = torch.zeros(len(CLASS_NAMES), dtype=torch.float32)
            y[label] = 1.0
            return x, y
        return x, torch.tensor(label, dtype=torch.long)


def balanced_items(videos: list[VideoSamples], balance: str, max_per_class: int | None,
                   seed: int) -> list[tuple[VideoSamples, int, int]]:
    """Class-balanced training items from the sampled frames of ``videos``.

    ``oversample``: every class drawn to the size of the largest (capped at
    ``max_per_class``), without replacement where a class has enough frames, with
    replacement where it has fewer. ``undersample``: every class cut to the smallest.
    """
    pools: dict[int, list] = {c: [] for c in range(len(CLASS_NAMES))}
    for vs in videos:
        rows = vs.rows(vs.samples["frame"].to_numpy())
        for row, label in zip(rows, vs.samples["label"].to_numpy()):
            pools[int(label)].append((vs, int(row), int(label)))
    present = {c: p for c, p in pools.items() if p}
    if not present:
        raise ValueError("no training samples: the training videos have no sampled frames")
    sizes = [len(p) for p in present.values()]
    target = max(sizes) if balance == "oversample" else min(sizes)
    if max_per_class is not None:
        target = min(target, int(max_per_class))
    rng = np.random.default_rng(seed)
    items = []
    for c, pool in present.items():
        pick = rng.choice(len(pool), size=target, replace=len(pool) < target)
        items += [pool[i] for i in np.sort(pick)]
    return items


def _grid_inputs(prep: Prepared, vs: VideoSamples, chunk: int = 256):
    """Batches of the inputs of the grid frames, from the cache or decoded on the fly."""
    for start in range(0, len(vs.grid), chunk):
        frames = vs.grid[start:start + chunk]
        try:
            yield vs.inputs_of(frames)
        except KeyError:
            size = vs.inputs.shape[-1]
            yield np.stack([frame_input(prep.dataset.read_frame(vs.video, int(f)), vs.face_box, vs.rois, size)
                            for f in frames])


def _scores(outputs: np.ndarray, loss: str) -> np.ndarray:
    """Class scores in [0, 1]: softmax of the logits (CE), or the regressed one-hot (MSE)."""
    if loss == "ce":
        z = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return np.clip(outputs, 0.0, 1.0)


@dataclass
class DatasetRun:
    name: str
    fps: float
    folds: list[dict]
    predictions: dict[str, dict]  # video -> grid, classes, scores, n_frames, stride, subject, fold
    spotted: pd.DataFrame
    truth: pd.DataFrame
    embedding: dict = field(default_factory=dict)  # features, labels, videos, frames


@dataclass
class LbcnnRun:
    setup: LbcnnSetup
    datasets: dict[str, DatasetRun]

    def histories(self, name: str) -> dict:
        return {f["fold"]: f["history"] for f in self.datasets[name].folds}


def spot_video(classes, scores, grid, n_frames: int, stride: int, limits: dict,
               min_run_length: int = 2, length_rule: str = "own_class") -> pd.DataFrame:
    """Intervals of one video from its per-frame classes (0 neutral, 1 micro, 2 macro).

    ``classes``/``scores`` are given at the ``grid`` frames (every ``stride``-th frame).
    A run of at least ``min_run_length`` consecutive grid frames of one class becomes
    the interval from its first grid frame to the last frame its last grid frame stands
    for (``+ stride - 1``, clipped to the video); with ``stride=1`` that is the paper's
    rule on every frame. The length filter (``limits``, inclusive frame counts) then
    keeps the run when its length fits its own class (``own_class``), or, with
    ``by_length``, merges micro and macro frames into expression runs and types each
    run by its length. ``score``: the mean score of the run's class over the run.
    """
    classes = np.asarray(classes, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.int64)
    if length_rule == "by_length":
        runs = postprocess.frame_class_runs((classes > 0).astype(np.int64), 0, min_run_length)
    elif length_rule == "own_class":
        runs = postprocess.frame_class_runs(classes, 0, min_run_length)
    else:
        raise ValueError(f"length_rule={length_rule!r}: use 'own_class' or 'by_length'")
    columns = ["onset", "offset", "type", "score"]
    if runs.empty:
        return pd.DataFrame(columns=columns).astype({"onset": np.int64, "offset": np.int64, "score": float})
    first, last = runs["onset"].to_numpy(), runs["offset"].to_numpy()
    intervals = pd.DataFrame({"onset": grid[first],
                              "offset": np.minimum(grid[last] + stride - 1, n_frames - 1)})
    if length_rule == "own_class":
        intervals["label"] = [CLASS_NAMES[int(c)] for c in runs["label"]]
        intervals["score"] = [float(scores[a:b + 1, int(c)].mean())
                              for a, b, c in zip(first, last, runs["label"])]
        kept = postprocess.classify_by_length(intervals, limits, label_column="label")
    else:
        intervals["score"] = [float(scores[a:b + 1, 1:].max(axis=1).mean()) for a, b in zip(first, last)]
        kept = postprocess.classify_by_length(intervals, limits)
    return kept[columns].reset_index(drop=True)


def _experiment_key(setup: LbcnnSetup, prep: Prepared) -> dict:
    ds = prep.dataset
    return {"dataset": prep.name, "root": str(ds.root), "model": setup.model_kwargs(),
            "inputs": asdict(setup.input_settings), "sampling": asdict(prep.sampling),
            "balance": setup.balance, "max_per_class": setup.max_per_class,
            "annotations": stable_hash(ds.annotations[["video", "onset", "offset", "type"]]
                                       .to_dict(orient="list"), length=12)}


def _embedding_rows(vs: VideoSamples, per_class: int, seed: int) -> np.ndarray:
    """Grid positions of at most ``per_class`` frames of each true class of a video."""
    truth = vs.truth[vs.grid]
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(truth == c)
        if len(idx) > per_class:
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        keep.append(idx)
    return np.sort(np.concatenate(keep))


def _sketch(features: np.ndarray, dim: int = 4096, seed: int = 0) -> np.ndarray:
    """Count-sketch features wider than ``dim`` down to ``dim`` (inner products are kept
    in expectation), so that ResNet-18's 2 x 512² bilinear vectors fit t-SNE's memory."""
    features = np.asarray(features, dtype=np.float32)
    if features.shape[1] <= dim:
        return features
    rng = np.random.default_rng(seed)
    bucket = rng.integers(0, dim, size=features.shape[1])
    sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=features.shape[1])
    return np.stack([np.bincount(bucket, weights=row * sign, minlength=dim) for row in features]).astype(np.float32)


def run_dataset(setup: LbcnnSetup, prep: Prepared, progress: bool = True) -> DatasetRun:
    """LOSO training and per-frame classification of one dataset."""
    videos = list(prep.videos.values())
    subjects = [vs.subject for vs in videos]
    folds = loso_splits(subjects, max_folds=setup.max_folds)
    names = ["+".join(f.held_out) for f in folds]
    by_name = dict(zip(names, folds))
    ckpt_dir = runtime.cache_dir("checkpoints", "lbcnn", prep.name)
    key = _experiment_key(setup, prep)
    limits = postprocess.length_limits(prep.name, prep.dataset.fps)
    n_videos_folds = max(1, len(folds))
    per_fold_tsne = max(1, int(math.ceil(setup.tsne_per_class / n_videos_folds)))

    def make_data(fold_name: str):
        train = [videos[i] for i in by_name[fold_name].train]
        items = balanced_items(train, setup.balance, setup.max_per_class,
                               fold_seed(setup.seed, fold_name))
        return SampleSet(items, setup.train.loss)

    fold_rows, predictions, spotted = [], {}, []
    emb_feats, emb_labels, emb_videos, emb_frames = [], [], [], []
    for result in train_folds(names, setup.make_model, make_data, setup.train, ckpt_dir, key,
                              progress=progress, desc=f"LBCNN {prep.name}"):
        fold = by_name[result.fold]
        fold_rows.append({"fold": result.fold, "held_out": list(fold.held_out),
                          "checkpoint": str(result.checkpoint), "history": result.history,
                          "n_train": result.info.get("n_train")})
        model = result.model
        for i in fold.test:
            vs = videos[i]
            outs = [predict(model, x, batch_size=256, device=setup.device) for x in _grid_inputs(prep, vs)]
            scores = _scores(np.concatenate(outs), setup.train.loss)
            classes = scores.argmax(axis=1)
            predictions[vs.video] = {"subject": vs.subject, "fold": result.fold, "grid": vs.grid,
                                     "classes": classes, "scores": scores, "n_frames": vs.n_frames,
                                     "stride": vs.stride}
            found = spot_video(classes, scores, vs.grid, vs.n_frames, vs.stride, limits,
                               setup.min_run_length, setup.length_rule)
            found.insert(0, "video", vs.video)
            found["subject"], found["fold"] = vs.subject, result.fold
            spotted.append(found)
            rows = _embedding_rows(vs, max(1, per_fold_tsne // max(1, len(fold.test))),
                                   fold_seed(setup.seed, vs.video))
            if len(rows):
                frames = vs.grid[rows]
                try:
                    x = vs.inputs_of(frames)
                except KeyError:
                    x = np.stack([frame_input(prep.dataset.read_frame(vs.video, int(f)), vs.face_box,
                                              vs.rois, vs.inputs.shape[-1]) for f in frames])
                emb_feats.append(_sketch(predict(model, x, device=setup.device, method="embed"),
                                         seed=setup.seed))
                emb_labels.append(vs.truth[frames])
                emb_videos += [vs.video] * len(frames)
                emb_frames.append(frames)
        del model, result
    spotted_df = pd.concat(spotted, ignore_index=True) if spotted else pd.DataFrame(
        columns=["video", "onset", "offset", "type", "score", "subject", "fold"])
    truth = prep.dataset.annotations[["subject", "video", "onset", "offset", "type"]].reset_index(drop=True)
    embedding = {}
    if emb_feats:
        embedding = {"features": np.concatenate(emb_feats), "labels": np.concatenate(emb_labels),
                     "videos": np.asarray(emb_videos), "frames": np.concatenate(emb_frames)}
    return DatasetRun(prep.name, float(prep.dataset.fps), fold_rows, predictions, spotted_df, truth, embedding)


def run(setup: LbcnnSetup, prepared: dict[str, Prepared], progress: bool = True) -> LbcnnRun:
    """Train and test every dataset of the setup (LOSO, a checkpoint per fold)."""
    return LbcnnRun(setup, {name: run_dataset(setup, prepared[name], progress) for name in setup.datasets})


def model_summary(setup: LbcnnSetup) -> pd.DataFrame:
    model = setup.make_model()
    rows = [("trunk", setup.trunk), ("input", f"(N, 6, {setup.input_size}, {setup.input_size})"),
            ("bilinear dim per branch", model.global_branch.dim), ("fused feature dim", model.feature_dim),
            ("head", "fc {} + fc 3".format(setup.hidden) if setup.hidden else "fc 3"),
            ("parameters", f"{count_parameters(model):,}")]
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


# ------------------------------------------------------------------------- evaluation


def frame_metrics(result: LbcnnRun) -> pd.DataFrame:
    """Accuracy, UF1 and UAR of the per-frame classes, pooled over every classified
    frame of every held-out video (neutral, micro, macro)."""
    rows = []
    for name, dr in result.datasets.items():
        truth, pred = [], []
        for video, p in dr.predictions.items():
            labels = _truth_of(dr, video, p)
            truth.append(labels)
            pred.append(p["classes"])
        y = np.concatenate(truth)
        yhat = np.concatenate(pred)
        s = recognition_scores([CLASS_NAMES[i] for i in y], [CLASS_NAMES[i] for i in yhat],
                               labels=list(CLASS_NAMES))
        rows.append({"dataset": name, "frames": s["n"], "accuracy": round(s["accuracy"], 4),
                     "UF1": round(s["UF1"], 4), "UAR": round(s["UAR"], 4)})
    return pd.DataFrame(rows).set_index("dataset")


def _truth_of(dr: DatasetRun, video: str, p: dict) -> np.ndarray:
    from melib.features.lbcnn import frame_labels

    labels = frame_labels(p["n_frames"], dr.truth[dr.truth["video"] == video])
    return labels[p["grid"]]


def confusion(result: LbcnnRun, name: str) -> pd.DataFrame:
    dr = result.datasets[name]
    y = np.concatenate([_truth_of(dr, v, p) for v, p in dr.predictions.items()])
    yhat = np.concatenate([p["classes"] for p in dr.predictions.values()])
    return confusion_table([CLASS_NAMES[i] for i in y], [CLASS_NAMES[i] for i in yhat], labels=list(CLASS_NAMES))


def evaluate(result: LbcnnRun) -> dict:
    """MEGC spotting metric per dataset, on every video (default rules)."""
    return {name: evaluate_spotting(dr.spotted, dr.truth) for name, dr in result.datasets.items()}


def spotting_tables(evaluations: dict) -> pd.DataFrame:
    """Counts and ratios per dataset and type (macro, micro, overall), rounded."""
    return _stack_counts({name: ev.table for name, ev in evaluations.items()})


def _stack_counts(tables: dict) -> pd.DataFrame:
    """Per-dataset count tables (indexed by type) as one table, ratios rounded."""
    parts = []
    for name, t in tables.items():
        t = t[["n_gt", "n_pred", "TP", "FP", "FN", "precision", "recall", "F1"]].copy()
        t.insert(0, "dataset", name)
        parts.append(t.reset_index())
    table = pd.concat(parts, ignore_index=True).set_index(["dataset", "type"])
    for c in ("precision", "recall", "F1"):
        table[c] = table[c].astype(float).round(4)
    return table


def table_iii(result: LbcnnRun, evaluations: dict) -> pd.DataFrame:
    """The paper's Table III (overall counts: macro and micro pooled) with our rows.

    Rows labelled ``paper`` are the published numbers; ``ours`` is this run, on the
    synthetic corpus unless a ``data_root`` was given.
    """
    ours_source = "ours (synthetic)" if result.setup.data_root is None else "ours"
    rows = []
    for name in SPOTTING_DATASETS:
        label = DATASET_LABELS[name]
        for method in ("MDMD", "LBCNN"):
            tp, fp, fn, p, r, f1 = PAPER_TABLE3[(method, name)]
            rows.append({"method": f"{method} ({label})", "source": "paper", "TP": tp, "FP": fp, "FN": fn,
                         "Precision": p, "Recall": r, "F1-score": f1})
        if name in evaluations:
            o = evaluations[name].table.loc["overall"]
            shown = label if result.setup.data_root is not None else f"synthetic {name}"
            rows.append({"method": f"LBCNN ({shown})", "source": ours_source, "TP": int(o["TP"]),
                         "FP": int(o["FP"]), "FN": int(o["FN"]),
                         "Precision": _round(o["precision"]), "Recall": _round(o["recall"]),
                         "F1-score": _round(o["F1"])})
    return pd.DataFrame(rows).set_index("method")


def _round(v) -> float:
    return float("nan") if pd.isna(v) else round(float(v), 4)


def double_counting_table(result: LbcnnRun) -> pd.DataFrame:
    """Our intervals counted the authors' way (teaching only: one ground truth can be
    counted as several TPs). Compare with :func:`spotting_tables`, never report it."""
    return _stack_counts({name: lbcnn_double_counting(dr.spotted, dr.truth).loc[["overall"]]
                          for name, dr in result.datasets.items()})


# ------------------------------------------------------------------------- figures


def pick_examples(prepared: dict[str, Prepared], name: str | None = None) -> list[dict]:
    """A micro, a macro and a neutral training frame (expression frames nearest the apex),
    from the first video that has a micro-expression (else the first video)."""
    name = name or next(iter(prepared))
    prep = prepared[name]
    ann = prep.dataset.annotations
    videos = list(prep.videos)
    with_micro = [v for v in videos if (ann[(ann["video"] == v)]["type"] == "micro").any()]
    examples = []
    for kind in ("micro", "macro", "neutral"):
        order = with_micro + [v for v in videos if v not in with_micro]
        for video in order:
            vs = prep.videos[video]
            s = vs.samples[vs.samples["label"] == CLASS_INDEX[kind]]
            if s.empty:
                continue
            if kind == "neutral":
                frame = int(s["frame"].iloc[len(s) // 2])
            else:
                row = ann[ann["video"] == video].iloc[int(s["expression"].iloc[0])]
                apex = int(row["apex"]) if pd.notna(row["apex"]) else (int(row["onset"]) + int(row["offset"])) // 2
                frames = s[s["expression"] == s["expression"].iloc[0]]["frame"].to_numpy()
                frame = int(frames[np.argmin(np.abs(frames - apex))])
            examples.append({"dataset": name, "video": video, "subject": vs.subject, "frame": frame,
                             "label": CLASS_INDEX[kind], "kind": kind, "input": vs.inputs_of([frame])[0],
                             "title": f"{kind}\n{video}\nframe {frame}"})
            break
    return examples


def input_figure(examples: list[dict]):
    from melib.visualization.lbcnn import plot_inputs

    return plot_inputs(examples)


def timeline_figure(result: LbcnnRun, name: str, video: str | None = None):
    """Per-frame classes of one held-out video against its ground truth (default: the
    video with the most ground-truth intervals)."""
    from melib.visualization.lbcnn import plot_class_timeline

    dr = result.datasets[name]
    if video is None:
        counts = dr.truth.groupby("video").size()
        video = str(counts.sort_values(ascending=False, kind="stable").index[0])
    p = dr.predictions[video]
    truth = [(int(r.onset), int(r.offset), r.type) for r in dr.truth[dr.truth["video"] == video].itertuples()]
    spotted = [(int(r.onset), int(r.offset), r.type) for r in dr.spotted[dr.spotted["video"] == video].itertuples()]
    return plot_class_timeline(p["n_frames"], p["grid"], p["classes"], truth, spotted, stride=p["stride"],
                               scores=p["scores"], fps=dr.fps,
                               title=f"{name} {video} (held out in fold {p['fold']}): every {p['stride']} frame(s)")


def load_fold_model(result: LbcnnRun, name: str, subject: str) -> LBCNN:
    """The model of the fold that held ``subject`` out, from its checkpoint."""
    for f in result.datasets[name].folds:
        if subject in f["held_out"]:
            model = result.setup.make_model()
            state = torch.load(f["checkpoint"], map_location="cpu", weights_only=False)
            model.load_state_dict(state["model"])
            return model.eval()
    raise KeyError(f"{name}: subject {subject!r} was held out by no fold")


def branch_cams(result: LbcnnRun, examples: list[dict]) -> dict:
    """Grad-CAM of each example's own class on both branches, with the fold model that
    never saw its subject: ``{"global": (N, S, S), "local": (N, S, S)}``."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from melib.training import cpu_threads
    from melib.visualization.cams import grad_cam

    maps = {"global": [], "local": []}
    # One thread, like training: spinning OpenMP threads crawl on a shared 2-core box.
    with cpu_threads(1):
        for ex in examples:
            model = load_fold_model(result, ex["dataset"], ex["subject"])
            x = torch.from_numpy(np.asarray(ex["input"], dtype=np.float32)[None])
            for branch, layer in model.cam_layers().items():
                target = [ClassifierOutputTarget(ex["label"])]
                maps[branch].append(grad_cam(model, x, layer, targets=target)[0])
    return {k: np.stack(v) for k, v in maps.items() if v}


def gradcam_figure(result: LbcnnRun, examples: list[dict]):
    from melib.visualization.lbcnn import plot_branch_cams

    cams = branch_cams(result, examples)
    return plot_branch_cams(np.stack([ex["input"] for ex in examples]), cams,
                            titles=[ex["title"] for ex in examples])


def tsne_figure(result: LbcnnRun, seed: int = 0):
    """t-SNE of the fused bilinear features of held-out frames, coloured by true class."""
    import matplotlib.pyplot as plt

    from melib.visualization.embedding import plot_embedding, tsne
    from melib.visualization.lbcnn import CLASS_COLORS

    names = [n for n, dr in result.datasets.items() if dr.embedding]
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        emb = result.datasets[name].embedding
        xy = tsne(emb["features"], seed=seed)
        labels = np.array([CLASS_NAMES[i] for i in emb["labels"]])
        plot_embedding(xy, labels, ax=ax, title=f"{name}: fused bilinear features (held out)",
                       palette=CLASS_COLORS, order=[c for c in CLASS_NAMES if c in set(labels)])
    fig.tight_layout()
    return fig


def loss_figure(result: LbcnnRun):
    import matplotlib.pyplot as plt

    from melib.visualization.training import plot_loss_curves

    names = list(result.datasets)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        plot_loss_curves(result.histories(name), ax=ax, title=f"{name}: training loss per fold")
    fig.tight_layout()
    return fig
