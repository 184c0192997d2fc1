"""What Zhao, Chen & Luo 2021 state in numbers, what they leave open, and the one
published MEGC2019 composite result we lay beside ours (a compared method's)."""

from __future__ import annotations

import pandas as pd

from melib.models.cropnet import PAPER_PARAMETERS_M

__all__ = [
    "NOT_GIVEN",
    "NOT_TRANSCRIBED",
    "PAPER_GIVEN",
    "PAPER_SILENT",
    "REFERENCE_COMPOSITE",
    "paper_numbers",
    "reference_table",
]

NOT_GIVEN = "not given in the paper"
# The paper prints its scores (Tables 1-4, figures 4-6) as images; none is copied here.
NOT_TRANSCRIBED = "an image in the paper, not transcribed"

# Settings the paper states in words (section 3 and 4).
PAPER_GIVEN = {
    "key frames N_key": "5 (eq. 3-4; figure 5 picks it)",
    "clip end": "min(onset+10, offset) if apex-onset < 10, else min(apex, offset) (eq. 2)",
    "RRS range": "g_min 0, g_max 255 (eq. 7)",
    "CGPO": "320x320 input + 160x160 down-sample, 160x160 crops, α = 0.3, 10 sub-images",
    "position embeddings": "p1..p9 for z1..z9, N(0, variance 0.2) (eq. 8)",
    "parameters": f"about {PAPER_PARAMETERS_M} M",
    "augmentation": "brightness/contrast/saturation 20-180 %, hue ±0.5, grayscale p 0.2, "
    "horizontal flip p 0.5, rotation ±15°",
    "loss / optimiser": "label-smoothing cross-entropy / AdamP",
    "composite": "SMIC-HS + CASME II + SAMM, negative / positive / surprise, LOSO",
    "hardware": "PyTorch 1.6, one Titan RTX (24 GB)",
}
# What the paper does not give; our choice is in the second column.
PAPER_SILENT = {
    "Tables 1-4, figures 4-6 (all scores)": "images in the paper: their numbers are not transcribed here",
    "epochs, batch size, learning rate": "profile values (full: 60 epochs, batch 32, lr 1e-3)",
    "epochs per protocol": "CPU profiles: CASME II twice the composite's (half the clips per epoch)",
    "label-smoothing factor": "0.1",
    "z_i size, head conv width": "128, 256",
    "extractor shared across crops": "yes (one extractor and head for all 10 crops)",
    "how α places the crops": "α is the least overlap; crops spread evenly (3x3 on 320 px)",
    "which crop is z0": "the 160 px level (whole face); z1..z9 the 320 px 3x3 grid",
    "flow image encoding": "HSV colour code (hue direction, value magnitude)",
    "ImageNet pretraining": "not available offline: from scratch unless a local file is given",
}
# A compared method's published composite result (MEGC2019), not CropNet's.
REFERENCE_COMPOSITE = {"method": "STSTNet (Liong et al. 2019)", "UF1": 0.7353, "UAR": 0.7605}


def paper_numbers() -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the paper gives in numbers, and what it leaves out (with our choice)."""
    given = pd.DataFrame({"in the paper": list(PAPER_GIVEN.values())}, index=list(PAPER_GIVEN))
    given.index.name = "setting"
    silent = pd.DataFrame({"our choice": list(PAPER_SILENT.values())}, index=list(PAPER_SILENT))
    silent.index.name = "not in the paper"
    return given, silent


def reference_table() -> pd.DataFrame:
    """The MEGC2019 reference numbers we do have (a compared method, not CropNet)."""
    r = REFERENCE_COMPOSITE
    return pd.DataFrame(
        [
            {
                "method": r["method"],
                "UF1": r["UF1"],
                "UAR": r["UAR"],
                "source": "published MEGC2019 composite result, not CropNet",
            }
        ]
    ).set_index("method")
