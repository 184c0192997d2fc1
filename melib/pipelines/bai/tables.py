"""Bai's tables: frame-level experiments, the decoder and N ablations, the EVM ablation,
our numbers beside the proposal's (labelled as the paper's), training and timing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from melib.pipelines import common
from melib.pipelines.bai.config import Setup
from melib.pipelines.bai.data import Clips, prepare
from melib.pipelines.bai.frames import Encoded, FrameRunResult
from melib.pipelines.bai.paper import PAPER_RESULTS, STATUS, paper_frames_cell, paper_sequence_cell
from melib.pipelines.bai.run import RunResult, run
from melib.pipelines.bai.sequences import SequenceRunResult, run_sequence_level

__all__ = [
    "comparison_table",
    "decoder_ablation",
    "evm_ablation",
    "frame_table",
    "motion_gain",
    "n_sweep",
    "timing_table",
    "training_summary",
]


def frame_table(runs: list[FrameRunResult], dataset: str) -> pd.DataFrame:
    """Frame-level scores per experiment (frames pooled over folds; clips by mean
    logits), with the paper's SMIC accuracy beside them."""
    rows = []
    for r in runs:
        f, c = r.evaluation.table.loc["all"], r.clip_evaluation.table.loc["all"]
        rows.append(
            {
                "experiment": r.experiment,
                "l_s": "not used" if r.experiment == "I" else r.layer,
                "trained stages": ", ".join(r.trainable) or "none (fc only)",
                "frames": int(f["n"]),
                "frame accuracy": f["accuracy"],
                "frame UF1": f["UF1"],
                "frame UAR": f["UAR"],
                "clip accuracy": c["accuracy"],
                "clip UF1": c["UF1"],
                "clip UAR": c["UAR"],
            }
        )
    out = common.round_table(pd.DataFrame(rows).set_index("experiment"))
    out["paper accuracy (SMIC)"] = paper_frames_cell(dataset)
    return out


def decoder_ablation(clips: Clips, frame_run: FrameRunResult, encoded: Encoded, setup: Setup,
                     main: SequenceRunResult | None = None,
                     progress: bool = True) -> tuple[pd.DataFrame, list]:  # fmt: skip
    """A row per decoder at the main N, then the main decoder with spatial attention,
    then (ours) the main decoder on features minus the onset frame's; ``main`` is
    reused for its own row."""
    variants = [(d, False, False) for d in setup.limits.decoders] + [(setup.decoder, True, False)]
    if setup.training == "cached":  # the onset difference is taken on cached features
        variants.append((setup.decoder, False, True))
    rows, runs = [], []
    for decoder, attention, relative in variants:
        if (
            main is not None
            and not relative
            and (main.decoder, main.attention, main.n_frames) == (decoder, attention, setup.n_frames)
        ):
            result = main
        else:
            result = run_sequence_level(
                clips, frame_run, encoded, setup, decoder, attention, relative=relative, progress=progress
            )
        runs.append(result)
        s = result.scores
        label = (
            decoder + (" + attention" if attention else "") + (", features minus onset" if relative else "")
        )
        rows.append(
            {
                "decoder": label,
                "in the proposal": "ours (not in the proposal)"
                if relative
                else STATUS["attention" if attention else decoder],
                "N": setup.n_frames,
                "clips": int(s["n"]),
                "accuracy": s["accuracy"],
                "UF1": s["UF1"],
                "UAR": s["UAR"],
                "paper accuracy (SMIC)": "no such experiment"
                if relative
                else paper_sequence_cell(decoder, attention, setup.dataset),
            }
        )
    return common.round_table(pd.DataFrame(rows).set_index("decoder")), runs


def n_sweep(clips: Clips, frame_run: FrameRunResult, encoded: Encoded, setup: Setup,
            main: SequenceRunResult | None = None,
            progress: bool = True) -> tuple[pd.DataFrame, list]:  # fmt: skip
    """The main decoder (without attention) for every N of the profile's sweep."""
    rows, runs = [], []
    for n in setup.limits.n_sweep:
        if main is not None and not main.attention and main.n_frames == n and main.decoder == setup.decoder:
            result = main
        else:
            result = run_sequence_level(
                clips, frame_run, encoded, setup, setup.decoder, False, n, progress=progress
            )
        runs.append(result)
        s = result.scores
        rows.append(
            {
                "N": n,
                "accuracy": s["accuracy"],
                "UF1": s["UF1"],
                "UAR": s["UAR"],
                "paper": "tested 11..17; per-N results not given",
            }
        )
    return common.round_table(pd.DataFrame(rows).set_index("N")), runs


def comparison_table(
    frame_run: FrameRunResult, sequence_run: SequenceRunResult, dataset: str
) -> pd.DataFrame:
    """Our headline numbers beside the proposal's two (SMIC accuracy, labelled as the paper's)."""
    on_smic = dataset == "smic_hs"
    frames_paper = PAPER_RESULTS["frames"]["accuracy"] if on_smic else float("nan")
    what = f"experiment {frame_run.experiment}, l_s {frame_run.layer}"
    rows = []
    for level, ours, unit, table, paper in (
        ("frames only (3.1)", what, "held-out frames", frame_run.evaluation.table, frames_paper),
        (
            "frames only (3.1)",
            what + ", mean logits per clip",
            "clips",
            frame_run.clip_evaluation.table,
            frames_paper,
        ),
        (
            "sequence (3.2)",
            sequence_run.name,
            "clips",
            sequence_run.evaluation.table,
            PAPER_RESULTS["sequence"]["accuracy"] if on_smic else float("nan"),
        ),
    ):
        s = table.loc["all"]
        rows.append(
            {
                "level": level,
                "ours": ours,
                "scored": f"{int(s['n'])} {unit}",
                "accuracy": s["accuracy"],
                "UF1": s["UF1"],
                "UAR": s["UAR"],
                "paper accuracy (SMIC)": paper,
            }
        )
    out = common.round_table(pd.DataFrame(rows).set_index("level"))
    if not on_smic:
        out["paper accuracy (SMIC)"] = "SMIC only in the proposal"
    return out


def evm_ablation(
    setup: Setup, layer: str, reference: RunResult, progress: bool = True
) -> tuple[pd.DataFrame, RunResult]:
    """The whole pipeline again with EVM toggled (frame CNN retrained on the other frames)."""
    other_setup = setup.with_(magnify=not reference.clips.magnified)
    other_clips = prepare(other_setup, progress=progress)
    other = run(other_clips, other_setup, layer=layer, n_values=(setup.n_frames,), progress=progress)
    rows = []
    for p in sorted([reference, other], key=lambda p: p.clips.magnified):
        f, s = p.frame_run.clip_evaluation.table.loc["all"], p.sequence_run.scores
        rows.append(
            {
                "EVM": f"on (alpha {setup.alpha:g}, {setup.low_hz:g}-{setup.high_hz:g} Hz)"
                if p.clips.magnified
                else "off",
                "frame CNN clip accuracy": f["accuracy"],
                "sequence accuracy": s["accuracy"],
                "sequence UF1": s["UF1"],
                "sequence UAR": s["UAR"],
                "paper": "planned (4.3): no result",
            }
        )
    return common.round_table(pd.DataFrame(rows).set_index("EVM")), other


def training_summary(frame_runs: list, sequence_runs: list) -> pd.DataFrame:
    """Per run: the folds and the last epoch's training loss, averaged over the folds."""
    rows = []
    for r in list(frame_runs) + list(sequence_runs):
        last = [h["epoch_loss"][-1] for h in r.histories.values() if h.get("epoch_loss")]
        rows.append(
            {
                "run": r.name,
                "folds": len(r.checkpoints),
                "final loss (mean over folds)": common.round_value(float(np.mean(last)))
                if last
                else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("run")


timing_table = common.timing_table  # per run: folds trained, from checkpoints, seconds


def motion_gain(original: Clips, magnified: Clips) -> pd.DataFrame:
    """Mean |frame - onset| per clip, original vs magnified (EVM should raise it)."""
    rows = []
    for i in range(len(original.table)):
        a, b = original.load(i).astype(np.float32), magnified.load(i).astype(np.float32)
        rows.append(
            {
                "sample": original.table["sample"].iat[i],
                "original": float(np.abs(a - a[:1]).mean()),
                "magnified": float(np.abs(b - b[:1]).mean()),
            }
        )
    t = pd.DataFrame(rows).set_index("sample")
    t["ratio"] = t["magnified"] / t["original"].where(t["original"] > 0)
    return common.round_table(t)
