"""The entry point (Bai 2020, sections 3.1 and 3.2): :func:`run` chains the frame
classifier per LOSO fold, the cached encodings and the main sequence decoder."""

from __future__ import annotations

from dataclasses import dataclass

from melib.pipelines.bai.config import Setup
from melib.pipelines.bai.data import (
    Clips,
)
from melib.pipelines.bai.frames import Encoded, FrameRunResult, encode_folds, run_frame_level
from melib.pipelines.bai.gradcam import choose_specific_layer
from melib.pipelines.bai.sequences import SequenceRunResult, run_sequence_level

__all__ = [
    "RunResult",
    "run",
]


@dataclass
class RunResult:
    """Everything one full pass produces: frame level, encoding, the main decoder."""

    clips: Clips
    frame_run: FrameRunResult
    encoded: Encoded
    sequence_run: SequenceRunResult


def run(
    clips: Clips, setup: Setup, *, layer: str | None = None, n_values=None, progress: bool = True
) -> RunResult:
    """Frame CNN per fold, cached encodings, then the main decoder (used by the EVM
    ablation). ``layer`` is l_s (None: ``setup.specific_layer``, or the Grad-CAM
    criterion's choice when that is "auto"); ``n_values``: the N to encode (None: the
    profile's sweep and the main N)."""
    if layer is None:
        layer = (
            choose_specific_layer(clips, setup).layer
            if setup.specific_layer == "auto"
            else setup.specific_layer
        )
    frame_run = run_frame_level(clips, setup, layer, progress=progress)
    encoded = encode_folds(
        clips,
        frame_run,
        setup,
        n_values=n_values,
        maps_n=setup.n_frames if setup.attention else None,
        progress=progress,
    )
    return RunResult(
        clips, frame_run, encoded, run_sequence_level(clips, frame_run, encoded, setup, progress=progress)
    )
