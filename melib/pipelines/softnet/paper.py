"""The numbers SOFTNet's paper publishes (Liong, See & Wong 2021), printed beside ours."""

from __future__ import annotations

from melib.models.backbones import PAPER_TABLE3

__all__ = ["PAPER_K", "PAPER_TABLE1", "PAPER_TABLE2", "PAPER_TABLE3", "PAPER_PSEUDO_LABELS", "TABLE2_ROWS"]

# k per dataset and type (section 2.1): int((N+1)/2), N the mean expression length.
PAPER_K = {"casme_sq": {"micro": 6, "macro": 18}, "samm_lv": {"micro": 37, "macro": 174}}

# Table 2 (with SOFTNet): counts, precision, recall, F1, AP@[.5:.95].
PAPER_TABLE2 = {
    "casme_sq": {
        "macro": (300, 90, 357, 210, 0.2013, 0.3000, 0.2410, 0.0168),
        "micro": (57, 20, 264, 37, 0.0704, 0.3509, 0.1173, 0.0112),
        "overall": (357, 110, 621, 247, 0.1505, 0.3081, 0.2022, 0.0140),
    },
    "samm_lv": {
        "macro": (333, 68, 226, 265, 0.2313, 0.2042, 0.2169, 0.0117),
        "micro": (159, 38, 303, 121, 0.1114, 0.2390, 0.1520, 0.0103),
        "overall": (492, 106, 529, 386, 0.1669, 0.2154, 0.1881, 0.0110),
    },
}
TABLE2_ROWS = ("Total", "TP", "FP", "FN", "Precision", "Recall", "F1-Score", "AP@[.5:.95]")

# Table 1: F1 of the control ("W/o SOFTNet", threshold p = 0.5) and of SOFTNet (p = 0.55).
PAPER_TABLE1 = {
    ("casme_sq", "without"): {"macro": 0.1615, "micro": 0.1379, "overall": 0.1551},
    ("casme_sq", "with"): {"macro": 0.2410, "micro": 0.1173, "overall": 0.2022},
    ("samm_lv", "without"): {"macro": 0.1463, "micro": 0.1063, "overall": 0.1293},
    ("samm_lv", "with"): {"macro": 0.2169, "micro": 0.1520, "overall": 0.1881},
}

# Pseudo-label ablation (CAS(ME)² macro F1, section 3.2).
PAPER_PSEUDO_LABELS = {"unit_step": 0.2410, "linear": 0.2269, "step": 0.2092}
