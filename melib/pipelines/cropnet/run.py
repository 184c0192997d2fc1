"""Training CropNet leave-one-subject-out: :func:`run` trains one fresh model per fold
and predicts the held-out clips; :class:`RunResult` keeps what came out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from torch import nn

from melib import runtime
from melib.evaluation.protocols import composite_loso_splits, loso_splits
from melib.evaluation.recognition import confusion_table, evaluate_recognition
from melib.features.cache import safe_name
from melib.models.cropnet import CropNet
from melib.pipelines.cropnet.config import CLASSES, Setup
from melib.pipelines.cropnet.data import ImageSet, ProtocolData, prepare_images
from melib.runtime import stable_hash
from melib.training import predict, train_folds

__all__ = ["RunResult", "run"]


@dataclass
class RunResult:
    """One LOSO run: predictions for every clip, scores, curves and where the models are."""

    name: str
    protocol: str
    setup: Setup
    predictions: pd.DataFrame  # sample, subject, dataset, true, predicted, fold
    evaluation: object  # RecognitionResult
    confusion: pd.DataFrame
    histories: dict
    checkpoints: dict  # fold -> Path
    fold_of: dict  # sample -> fold
    paths: list
    seconds: float = 0.0
    trained_folds: int = 0

    @property
    def scores(self) -> pd.DataFrame:
        return self.evaluation.table

    def model(self, fold: str) -> CropNet:
        model = CropNet(self.setup.model_config(len(CLASSES[self.protocol])))
        state = runtime.load_torch(self.checkpoints[fold])
        model.load_state_dict(state["model"])
        return model.eval()


def _splits(data: ProtocolData, max_folds):
    if data.protocol == "megc2019":
        return composite_loso_splits(data.table, max_folds=max_folds)
    return loso_splits(data.table["fold_key"], max_folds=max_folds)


def _fold_name(held_out: tuple) -> str:
    name = "+".join(safe_name(h) for h in held_out)
    if len(name) <= 60:
        return name
    return f"{safe_name(held_out[0])}+{len(held_out) - 1}more-{stable_hash(held_out, length=6)}"


def run(
    data: ProtocolData, setup: Setup, *, name: str = "CropNet", progress: bool = True, **changes
) -> RunResult:
    """Train one CropNet per LOSO fold (fresh weights each time) and predict its held-out clips.

    ``changes`` override setup fields for this run only (``preprocessing="rrs"``,
    ``cgpo=False``, ``n_key=3``, ``epochs=...``, ``max_folds=...``): the ablations use it.
    """
    setup = (setup.with_(**changes) if changes else setup).for_protocol(data.protocol)
    start_time = time.perf_counter()
    paths = prepare_images(data, setup, progress=progress)
    folds = _splits(data, setup.max_folds)
    names = [_fold_name(f.held_out) for f in folds]
    labels = data.table["label"].to_numpy()
    n_classes = len(data.classes)
    settings = setup.image_settings()
    key = {
        "protocol": data.protocol,
        "samples": list(map(str, data.table["sample"])),
        "root": str(data.dataset.root),
        "images": settings.key(),
        "model": setup.model_config(n_classes),
        "label_smoothing": setup.label_smoothing,
        "folds": [list(f.held_out) for f in folds],
        "augment": "paper-4",
        "version": 1,
        # the image files' names carry the frames' stamps: a regenerated corpus retrains
        "images_on_disk": [Path(p).name for p in paths],
    }
    by_name = dict(zip(names, folds))

    def make_data(fold_name):
        train = by_name[fold_name].train
        return ImageSet([paths[i] for i in train], labels[train], train=True)

    criterion = nn.CrossEntropyLoss(label_smoothing=setup.label_smoothing)
    folder = runtime.cache_dir("checkpoints", "cropnet", data.protocol)
    preds, histories, checkpoints, fold_of, trained = [], {}, {}, {}, 0
    for result in train_folds(
        names,
        lambda: CropNet(setup.model_config(n_classes)),
        make_data,
        setup.train_config(),
        folder,
        key,
        progress=progress,
        desc=name,
        criterion=criterion,
    ):
        trained += not result.skipped
        histories[result.fold], checkpoints[result.fold] = result.history, result.checkpoint
        test = by_name[result.fold].test
        logits = predict(
            result.model, ImageSet([paths[i] for i in test], labels[test]), batch_size=64, device=setup.device
        )
        rows = data.table.iloc[test]
        for (_, row), guess in zip(rows.iterrows(), logits.argmax(1)):
            fold_of[row["sample"]] = result.fold
            preds.append(
                {
                    "sample": row["sample"],
                    "subject": row["subject"],
                    "dataset": row["dataset"],
                    "true": row["class"],
                    "predicted": data.classes[int(guess)],
                    "fold": result.fold,
                }
            )
    predictions = pd.DataFrame(preds)
    scored = predictions.drop(columns=["fold"])
    if data.protocol != "megc2019":
        scored = scored.drop(columns=["dataset"])
    evaluation = evaluate_recognition(scored)
    confusion = confusion_table(predictions["true"], predictions["predicted"], labels=list(data.classes))
    return RunResult(
        name,
        data.protocol,
        setup,
        predictions,
        evaluation,
        confusion,
        histories,
        checkpoints,
        fold_of,
        paths,
        time.perf_counter() - start_time,
        trained,
    )
