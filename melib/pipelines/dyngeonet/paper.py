"""The paper's published numbers (Tran, Vo & Zhao 2021, Tables 1 and 2) and the two
tables that print them beside ours (:func:`table1`, :func:`table2`)."""

from __future__ import annotations

import pandas as pd

from melib.evaluation.protocols import CROSS_DATASET_SETUPS
from melib.pipelines.common import dataset_label
from melib.pipelines.dyngeonet.config import BRANCH_NAMES, Setup

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "NOT_REPORTED",
    "NO_MICRO",
    "published",
    "ours_label",
    "table1",
    "table2",
]

# Table 1: F1 per dataset (None: not reported).
PAPER_TABLE1 = {
    "LBP-X2 [8, 20]": {"casme_sq": 0.0055, "samm_lv": 0.0111, "smic_e_long": 0.0666},
    "HOGTOP-LSTM [20]": {"casme_sq": 0.0111, "samm_lv": 0.03202, "smic_e_long": 0.0535},
    "HIGOTOP-LSTM [20]": {"casme_sq": 0.00902, "samm_lv": 0.03428, "smic_e_long": 0.0835},
    "MDMD [5, 20]": {"casme_sq": 0.0082, "samm_lv": 0.0364, "smic_e_long": 0.0268},
    "LBCNN [13]": {"casme_sq": 0.0595, "samm_lv": 0.0813, "smic_e_long": None},
    "DynNet (Ours)": {"casme_sq": 0.00921, "samm_lv": 0.0208, "smic_e_long": 0.0438},
    "GeoNet (Ours)": {"casme_sq": 0.0081, "samm_lv": 0.0198, "smic_e_long": 0.0278},
    "DynGeoNet (Ours)": {"casme_sq": 0.05012, "samm_lv": 0.0974, "smic_e_long": 0.1035},
}
# Table 2: (method, setup) -> TP, FP, FN, F1.
PAPER_TABLE2 = {
    ("VGG16 [20]", "A"): (45, 2157, 114, 0.0381),
    ("DynGeoNet", "A"): (49, 1830, 110, 0.0481),
    ("VGG16 [20]", "B"): (58, 2340, 108, 0.0452),
    ("DynGeoNet", "B"): (48, 1260, 118, 0.06512),
    ("VGG16 [20]", "C"): (11, 2521, 46, 0.0085),
    ("DynGeoNet", "C"): (12, 1509, 45, 0.01521),
}

NOT_REPORTED = "not reported"
NO_MICRO = "no micro-expressions in the test set"


def published(value) -> str:
    """A paper value as printed there (0.05012 stays 0.05012); its "-" reads "not reported"."""
    return NOT_REPORTED if value is None else repr(value)


def ours_label(setup: Setup) -> str:
    """How our rows are labelled, so that a table glued out of context still says when its
    numbers come from the synthetic corpus."""
    return f"ours (synthetic '{setup.limits.corpus}')" if setup.data_root is None else "ours"


def _ours_f1(row) -> str:
    if "GT" in row and row["GT"] == 0:
        return NO_MICRO
    return "nan" if pd.isna(row["F1"]) else f"{float(row['F1']):.4f}"


def table1(results: pd.DataFrame, datasets, ours: str | None = None) -> pd.DataFrame:
    """The paper's Table 1 (F1 per dataset, its digits) for the datasets run, our LOSO rows
    beneath, labelled ``ours`` (default: what :func:`evaluate` recorded, e.g. "ours
    (synthetic 'book')"). Cells are text: "not reported" where the paper prints "-",
    "no micro-expressions in the test set" where F1 would be meaningless."""
    datasets = list(datasets)
    ours = ours or results.attrs.get("ours", "ours")
    cols = [dataset_label(d) for d in datasets]
    rows = {
        f"paper: {method}": [published(values[d]) for d in datasets]
        for method, values in PAPER_TABLE1.items()
    }
    loso_rows = (
        results.xs("LOSO", level="protocol")
        if "LOSO" in results.index.get_level_values("protocol")
        else results.iloc[:0].droplevel("protocol")
    )
    for network in [BRANCH_NAMES[b] for b in ("dyn", "geo", "fusion")]:
        if network in loso_rows.index.get_level_values("network"):
            mine = loso_rows.xs(network, level="network")
            rows[f"{ours}: {network}"] = [
                _ours_f1(mine.loc[c]) if c in mine.index else "not run" for c in cols
            ]
    return pd.DataFrame(rows, index=cols).T


def table2(results: pd.DataFrame, setups, ours: str | None = None) -> pd.DataFrame:
    """Table 2 (TP, FP, FN, F1 per setup): the paper's two rows (its digits) and ours for
    each setup, ours labelled as in :func:`table1`."""
    ours = ours or results.attrs.get("ours", "ours")
    rows = []
    for cross in setups:
        test = dataset_label(CROSS_DATASET_SETUPS[cross]["test"])
        for method in ("VGG16 [20]", "DynGeoNet"):
            tp, fp, fn, f1 = PAPER_TABLE2[(method, cross)]
            rows.append(
                {
                    "setup": cross,
                    "source": "paper",
                    "method": method,
                    "test set": test,
                    "TP": tp,
                    "FP": fp,
                    "FN": fn,
                    "F1-score": published(f1),
                }
            )
        if cross in results.index.get_level_values("protocol"):
            for (dataset, network), r in results.xs(cross, level="protocol").iterrows():
                rows.append(
                    {
                        "setup": cross,
                        "source": ours,
                        "method": network,
                        "test set": dataset,
                        "TP": int(r["TP"]),
                        "FP": int(r["FP"]),
                        "FN": int(r["FN"]),
                        "F1-score": _ours_f1(r),
                    }
                )
    columns = ["setup", "source", "method", "test set", "TP", "FP", "FN", "F1-score"]
    return pd.DataFrame(rows, columns=columns).set_index(["setup", "source", "method"])
