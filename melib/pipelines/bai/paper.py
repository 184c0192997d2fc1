"""What the proposal gives in numbers, what it reports and plans, and what it leaves open
(Bai 2020, sections 3 and 4); labelled as the paper's wherever it is printed."""

from __future__ import annotations

import pandas as pd

__all__ = [
    "PAPER_RESULTS",
    "PAPER_SILENT",
    "STATUS",
    "paper_silent",
    "paper_table",
]

# Everything the proposal gives in numbers (SMIC only; "accuracy" is the only metric).
PAPER_RESULTS = {
    "frames": {
        "what": "VGGFace2 ResNet-50 retrained on frames (section 3.1, experiments of figure 2)",
        "accuracy": 0.326,
    },
    "sequence": {
        "what": "VGGFace2 + LSTM over N = 11..17 frames (section 3.2; uni- or bidirectional not stated)",
        "accuracy": 0.6006,
    },
}
STATUS = {
    "lstm": "reported (3.2)",
    "bilstm": "reported (3.2)",
    "gru": "planned (4)",
    "tcn": "planned (4.1)",
    "attention": "planned (4.2)",
    "magnify": "planned (4.3)",
}
PAPER_SILENT = {
    "which experiment (I/II/III) gave 32.6 %": "not stated; experiment II is the default here",
    "which N and which LSTM direction gave 60.06 %": "not stated; N = 11 and the uni-directional LSTM here",
    "l_s criterion": "'closest to the facial features': made quantitative as LAYER_CRITERION",
    "fc1-fc3 widths, dropout": "fc1 512, fc2 256, fc3 = classes; dropout 0.5 (melib.models.bai)",
    "optimiser, learning rate, epochs, batch": "Adam; lr 1e-3 from scratch, 1e-4 with weights; profile epochs",
    "frames used at frame level": "the profile's number of frames of each clip's N-frame sequence",
    "input size and normalisation": "square frames resized to input_size; ImageNet mean/std",
    "what the decoder reads": "fc2's 256-d frame vector (with attention: the last stage's maps), "
    "standardised with the training subjects' mean and deviation",
    "LSTM hidden size": "128 per direction",
    "EVM parameters": "linear EVM, alpha 10, 2-12 Hz ideal band, 4 levels (melib.features.magnification)",
    "CASME II / SAMM classes": "MEGC2019's negative / positive / surprise (classes='all': every emotion)",
    "VGGFace2 weights": "not downloadable here: from scratch unless weights_path names a local file",
}


def paper_table() -> pd.DataFrame:
    """The proposal's only numbers (SMIC accuracy), labelled as the paper's."""
    rows = [
        {"level": level, "what (paper)": r["what"], "paper accuracy (SMIC)": r["accuracy"]}
        for level, r in PAPER_RESULTS.items()
    ]
    return pd.DataFrame(rows).set_index("level")


def paper_silent() -> pd.DataFrame:
    """What the proposal does not say, and what this reproduction chose."""
    out = pd.DataFrame({"our choice": list(PAPER_SILENT.values())}, index=list(PAPER_SILENT))
    out.index.name = "not in the proposal"
    return out


def paper_frames_cell(dataset: str) -> str:
    """The paper's frame-level accuracy, as printed beside a frame-level row."""
    paper = PAPER_RESULTS["frames"]["accuracy"]
    if dataset != "smic_hs":
        return "SMIC only in the proposal"
    return f"{paper:.1%} (one figure for section 3.1)"


def paper_sequence_cell(decoder: str, attention: bool, dataset: str) -> str:
    """What the proposal says about a decoder row: its accuracy, or that it is planned."""
    if attention:
        return "planned (4.2): no result"
    if decoder in ("lstm", "bilstm"):
        acc = PAPER_RESULTS["sequence"]["accuracy"]
        return (
            f"{acc:.2%} (VGGFace2 + LSTM; direction not stated)"
            if dataset == "smic_hs"
            else "SMIC only in the proposal"
        )
    return "planned (4): no result"
