"""Sequence level (Bai 2020, section 3.2): a decoder (LSTM, BiLSTM, GRU or TCN, with
optional spatial attention) per LOSO fold over the cached frame encodings; or, with
``training="end_to_end"``, CNN and decoder fine-tuned together on frame sequences
(:class:`~melib.models.bai.SequenceClassifier`), as a GPU run of ``full`` can afford."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from melib import runtime
from melib.evaluation.recognition import evaluate_recognition
from melib.models.bai import SequenceClassifier, SequenceDecoder
from melib.pipelines.bai.config import Setup
from melib.pipelines.bai.data import (
    Clips,
    SequenceSet,
)
from melib.pipelines.bai.frames import Encoded, FrameRunResult, stage_dim
from melib.training import predict, train_folds

__all__ = [
    "SequenceRunResult",
    "run_sequence_level",
    "standardise",
]


@dataclass
class SequenceRunResult:
    """One sequence-level LOSO run (one decoder, one N)."""

    name: str
    decoder: str
    attention: bool
    n_frames: int
    setup: Setup
    predictions: pd.DataFrame
    evaluation: object
    embeddings: np.ndarray  # held-out sequence embeddings, one per clip (table order)
    histories: dict
    checkpoints: dict
    seconds: float = 0.0
    trained_folds: int = 0

    @property
    def scores(self) -> pd.Series:
        return self.evaluation.table.loc["all"]


def _decoder(setup: Setup, decoder: str, attention: bool, n_frames: int, input_dim: int, n_classes: int):
    return SequenceDecoder(
        input_dim, decoder, setup.hidden, n_classes, attention=attention, n_frames=n_frames
    )


def run_sequence_level(
    clips: Clips,
    frame_run: FrameRunResult,
    encoded: Encoded | None,
    setup: Setup,
    decoder: str | None = None,
    attention: bool | None = None,
    n_frames: int | None = None,
    relative: bool = False,
    progress: bool = True,
) -> SequenceRunResult:
    """Train one decoder per fold on that fold's cached frame features (or end to end)
    and predict the held-out clips.

    ``relative`` (ours, not the proposal's): every frame's features minus the onset
    frame's, so that the decoder sees the change over the clip rather than the face."""
    decoder = decoder or setup.decoder
    attention = setup.attention if attention is None else attention
    n = int(n_frames or setup.n_frames)
    start = time.perf_counter()
    folds = frame_run.folds
    n_classes = len(clips.classes)
    labels = clips.table["label"].to_numpy()
    end_to_end = setup.training == "end_to_end"
    if end_to_end and relative:
        raise ValueError("relative=True works on cached features: use training='cached'")
    if not end_to_end and attention and encoded.maps_n != n:
        raise ValueError(
            f"attention at N = {n} needs the feature maps encoded at that N (encode_folds(maps_n={n}))"
        )
    name = f"{decoder}{' + attention' if attention else ''}{' (minus onset)' if relative else ''}, N = {n}"
    key = {
        "frame_checkpoints": {f: Path(p).name for f, p in frame_run.checkpoints.items()},
        "decoder": decoder,
        "attention": attention,
        "n": n,
        "hidden": setup.hidden,
        "training": setup.training,
        "standardised": True,
        "relative": relative,
        "version": 2,
    }

    def inputs(fold):
        x = encoded.load_maps(fold) if attention else encoded.load(fold, n)
        if relative:
            x = x - x[:, :1]
        return standardise(x, folds[fold].train)

    def make_model_for(fold):
        if end_to_end:
            # A copy: end to end trains the CNN too, and the fold's frame model stays as it was.
            return lambda: SequenceClassifier(
                copy.deepcopy(frame_run.model(fold, n_classes)),
                decoder,
                attention,
                setup.hidden,
                n_classes,
                n_frames=n,
            )
        dim = stage_dim(frame_run) if attention else setup.fc[-1]
        return lambda: _decoder(setup, decoder, attention, n, dim, n_classes)

    def make_data(fold):
        train = folds[fold].train
        if end_to_end:
            return SequenceSet(clips, train, n)
        return inputs(fold)[train], labels[train]

    folder = runtime.cache_dir("checkpoints", "bai", clips.name, "sequences")
    preds, histories, checkpoints, trained = [], {}, {}, 0
    embeddings = None
    config = setup.frame_train_config() if end_to_end else setup.decoder_train_config()
    # End to end, each fold starts from its own frame CNN, so each gets its own call.
    groups = [[f] for f in folds] if end_to_end else [list(folds)]
    for group in groups:
        for result in train_folds(
            group,
            make_model_for(group[0]),
            make_data,
            config,
            folder,
            key,
            progress=progress,
            desc=f"decoder {name}",
        ):
            fold = result.fold
            trained += not result.skipped
            histories[fold], checkpoints[fold] = result.history, result.checkpoint
            test = folds[fold].test
            x = SequenceSet(clips, test, n) if end_to_end else inputs(fold)[test]
            logits = predict(result.model, x, batch_size=16, device=setup.device)
            emb = predict(result.model, x, batch_size=16, device=setup.device, method="embedding")
            if embeddings is None:
                embeddings = np.zeros((len(clips.table), emb.shape[1]), np.float32)
            embeddings[test] = emb
            for i, out in zip(test, logits):
                row = clips.table.iloc[i]
                preds.append(
                    {
                        "sample": row["sample"],
                        "subject": row["subject"],
                        "true": row["class"],
                        "predicted": clips.classes[int(out.argmax())],
                        "fold": fold,
                    }
                )
    predictions = pd.DataFrame(preds)
    evaluation = evaluate_recognition(predictions.drop(columns=["fold"]), labels=list(clips.classes))
    return SequenceRunResult(
        name,
        decoder,
        attention,
        n,
        setup,
        predictions,
        evaluation,
        embeddings,
        histories,
        checkpoints,
        time.perf_counter() - start,
        trained,
    )


def standardise(x: np.ndarray, train) -> np.ndarray:
    """Per feature (or map channel), zero mean and unit variance over the training
    subjects' frames. The raw fc2 vectors (ReLU outputs of a few units, often 5-30)
    saturate the LSTM's gates, which then cannot fit even the training clips."""
    axes = (0, 1) if x.ndim == 3 else (0, 1, 3, 4)
    mean = x[train].mean(axis=axes, keepdims=True)[0]
    std = x[train].std(axis=axes, keepdims=True)[0] + 1e-6
    return ((x - mean) / std).astype(np.float32)
