"""CropNet's printed tables: scores beside the paper's Tables 2 and 3, the training
summary and timings, and the parameter counts of each backbone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from melib.models.cropnet import PAPER_PARAMETERS_M, CropNet, CropNetConfig, count_parameters
from melib.pipelines import common
from melib.pipelines.cropnet.paper import NOT_TRANSCRIBED
from melib.pipelines.cropnet.run import RunResult

__all__ = ["scores_table", "training_summary", "timing_table", "parameter_table"]


def scores_table(result: RunResult) -> pd.DataFrame:
    """Our pooled LOSO scores beside the paper's (Table 2 or 3, printed as images)."""
    t = result.scores.copy()
    t.index = [common.dataset_label(i) for i in t.index]
    t.index.name = "subset"
    columns = ["n", "accuracy", "UF1", "UAR"] if result.protocol == "casme2_5class" else ["n", "UF1", "UAR"]
    t = common.round_table(t[columns])
    t["paper (CropNet, ARS)"] = (
        f"Table {'2' if result.protocol == 'casme2_5class' else '3'}: {NOT_TRANSCRIBED}"
    )
    return t


def training_summary(results: list[RunResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        last = [h["epoch_loss"][-1] for h in r.histories.values() if h.get("epoch_loss")]
        rows.append(
            {
                "run": r.name,
                "protocol": r.protocol,
                "folds": len(r.checkpoints),
                "epochs": r.setup.epochs,
                "final loss (mean over folds)": common.round_value(np.mean(last)),
            }
        )
    return pd.DataFrame(rows).set_index("run")


timing_table = common.timing_table  # per run: folds trained, from checkpoints, seconds


def parameter_table() -> pd.DataFrame:
    """Parameter counts of each backbone option (10-crop CropNet, 5 classes)."""
    from melib.models.cropnet import BACKBONES

    rows = []
    for name in BACKBONES:
        model = CropNet(CropNetConfig(num_classes=5, backbone=name))
        rows.append(
            {
                "backbone": name,
                "parameters (M)": round(count_parameters(model) / 1e6, 3),
                "extractor only (M)": round(count_parameters(model.extractor) / 1e6, 3),
            }
        )
    out = pd.DataFrame(rows).set_index("backbone")
    out["paper"] = ""
    out.loc[out.index[0], "paper"] = f"about {PAPER_PARAMETERS_M} M (whole network)"
    return out
