"""SOFTNet's scores: the MEGC metric on the spotted intervals, laid out beside the
paper's Tables 1 and 2, the two evaluation protocols and the summary of F1."""

from __future__ import annotations

import numpy as np
import pandas as pd

from melib.evaluation.spotting import evaluate_spotting
from melib.pipelines import common
from melib.pipelines.softnet.config import Setup
from melib.pipelines.softnet.data import Prepared
from melib.pipelines.softnet.paper import PAPER_TABLE1, PAPER_TABLE2, TABLE2_ROWS

__all__ = ["evaluate", "table2", "f1_row", "table1", "protocol_table", "naive_detector", "summary"]

KINDS = ("macro", "micro", "overall")
COUNT_ROWS = ("Total", "TP", "FP", "FN")


def _gt_for(prep: Prepared, kinds) -> pd.DataFrame:
    return prep.gt[prep.gt["type"].isin(kinds)][["video", "onset", "offset", "type"]]


def evaluate(prepared: dict, runs: dict, only_videos_with_type: bool = False) -> dict:
    """MEGC scores per dataset: ``{dataset: SpottingResult}`` (types that were run)."""
    out = {}
    for name, prep in prepared.items():
        kinds = [kind for (n, kind) in runs if n == name]
        pred = pd.concat([runs[(name, kind)].predictions for kind in kinds], ignore_index=True)
        out[name] = evaluate_spotting(
            pred[["video", "onset", "offset", "type", "score"]],
            _gt_for(prep, kinds),
            only_videos_with_type=only_videos_with_type,
            types=kinds,
        )
    return out


def table2(results: dict) -> pd.DataFrame:
    """The paper's Table 2 layout: rows Total..AP, columns (dataset, type, source)."""
    cols, data = [], []
    for name, res in results.items():
        for kind in KINDS:
            if kind not in res.table.index:
                continue
            r = res.table.loc[kind]
            ours = [r["n_gt"], r["TP"], r["FP"], r["FN"], r["precision"], r["recall"], r["F1"], r["AP"]]
            label = common.dataset_label(name)
            cols += [(label, kind, "paper"), (label, kind, "ours")]
            data += [list(PAPER_TABLE2[name][kind]), ours]
    table = pd.DataFrame(
        np.array(data, dtype=float).T,
        index=list(TABLE2_ROWS),
        columns=pd.MultiIndex.from_tuples(cols, names=["dataset", "type", "source"]),
    )
    out = table.astype(object)
    for row in out.index:  # counts as ints, rates rounded, a missing rate as "-"
        out.loc[row] = [
            ("-" if pd.isna(v) else (int(v) if row in COUNT_ROWS else common.round_value(float(v))))
            for v in table.loc[row]
        ]
    return out


def f1_row(results: dict) -> dict:
    """``{(dataset label, type): F1}`` of every scored type."""
    return {
        (common.dataset_label(n), kind): common.round_value(float(res.table.loc[kind, "F1"]))
        for n, res in results.items()
        for kind in KINDS
        if kind in res.table.index
    }


def table1(with_softnet: dict, without_softnet: dict | None = None, datasets=None) -> pd.DataFrame:
    """The paper's Table 1 rows (F1) with ours beneath, labelled by source."""
    datasets = datasets or list(with_softnet)
    rows = {}
    for variant, label in (("without", "W/o SOFTNet"), ("with", "With SOFTNet")):
        rows[f"paper: Ours ({label})"] = {
            (common.dataset_label(d), kind): PAPER_TABLE1[(d, variant)][kind]
            for d in datasets
            for kind in KINDS
        }
    if without_softnet is not None:
        rows["melib: W/o SOFTNet (feature sum, threshold=0.5)"] = f1_row(without_softnet)
    rows["melib: With SOFTNet"] = f1_row(with_softnet)
    table = pd.DataFrame(rows).T
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["dataset", "type"])
    return table


def protocol_table(all_videos: dict, with_type: dict) -> pd.DataFrame:
    """F1 and counts under the MEGC protocol (every video) and the authors' variant."""
    rows = []
    for name in all_videos:
        for kind in KINDS:
            if kind not in all_videos[name].table.index:
                continue
            for label, res in (
                ("all videos (MEGC)", all_videos[name]),
                ("videos with the type (authors)", with_type[name]),
            ):
                r = res.table.loc[kind]
                rows.append(
                    {
                        "dataset": common.dataset_label(name),
                        "type": kind,
                        "scored on": label,
                        "TP": int(r["TP"]),
                        "FP": int(r["FP"]),
                        "FN": int(r["FN"]),
                        "F1": common.round_value(float(r["F1"])) if pd.notna(r["F1"]) else np.nan,
                    }
                )
    return pd.DataFrame(rows).set_index(["dataset", "type", "scored on"])


def naive_detector(setup: Setup) -> pd.DataFrame | None:
    """F1 of the data chapter's naive flow-threshold spotter on the same synthetic corpus
    (``melib.data.synth_check``), the floor a trained model must clear; None on real data
    (it reads the generator's manifest)."""
    if setup.data_root is not None:
        return None
    from melib.data.synth_check import naive_flow_detector_f1

    table = naive_flow_detector_f1(
        common.data_root_for(setup), datasets=setup.datasets, seed=setup.seed, progress=False
    )
    return table.set_index(["dataset", "type"])


def summary(results: dict, control: dict, setup: Setup, naive: pd.DataFrame | None = None) -> pd.DataFrame:
    """F1 per dataset and type: SOFTNet, the feature-sum control, the naive detector
    (synthetic corpus only) and the paper's."""
    rows = []
    for name, res in results.items():
        for kind in KINDS:
            if kind not in res.table.index:
                continue
            ours = float(res.table.loc[kind, "F1"])
            base = float(control[name].table.loc[kind, "F1"])
            naive_f1 = np.nan
            if naive is not None and (name, kind) in naive.index:
                naive_f1 = common.round_value(float(naive.loc[(name, kind), "f1"]))
            rows.append(
                {
                    "dataset": common.dataset_label(name),
                    "type": kind,
                    "F1 SOFTNet (ours)": common.round_value(ours),
                    "F1 feature sum (ours)": common.round_value(base),
                    "F1 naive detector": naive_f1,
                    "F1 SOFTNet (paper)": PAPER_TABLE1[(name, "with")][kind],
                    "F1 control (paper)": PAPER_TABLE1[(name, "without")][kind],
                }
            )
    return pd.DataFrame(rows).set_index(["dataset", "type"])
