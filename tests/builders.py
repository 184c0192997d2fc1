"""Pieces of the release workbooks and of a cached corpus that several test modules build.

The headers are the release's (the synthetic corpus writes the same ones, see
``melib/data/synth.py``); the tests spell them once here.
"""

from __future__ import annotations

import json
from pathlib import Path

# SAMM's legend block above the header row, shortened (the SAMM tests take its first five rows).
SAMM_LEGEND = [[cell] for cell in ("SAMM Long Videos Dataset - FACS Codes", None, "Symbol Key:", '"/" = or')]
SAMM_LEGEND += [[cell] for cell in (None, "AU Help:", "L2", "A2", None)]
_SAMM_LV_COLUMNS = "Subject,Filename,Inducement Code,Onset,Apex,Offset,Duration,Type,Action Units,Notes"
SAMM_LV_HEADER = _SAMM_LV_COLUMNS.split(",")
# SAMM (micro): the frame columns are "... Frame" and two emotion columns follow the notes.
SAMM_HEADER = [
    *SAMM_LV_HEADER[:3],
    *(f"{name} Frame" for name in SAMM_LV_HEADER[3:6]),
    *SAMM_LV_HEADER[6:],
    "Estimated Emotion",
    "Objective Classes",
]
CASME2_HEADER = (
    "Subject,Filename,Unnamed,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion".split(",")
)


def fake_corpus_record(out) -> Path:
    """The ``synth_corpus.json`` a finished ``synth.generate`` leaves in ``out`` (and
    nothing else): a stand-in for ``generate`` in the cache tests."""
    from melib.data import synth

    record = {
        "generator": f"melib.data.synth v{synth.GENERATOR_VERSION}",
        "datasets": list(synth.DATASET_KEYS),
    }
    (Path(out) / "synth_corpus.json").write_text(json.dumps(record))
    return Path(out)


def error_outputs(nb) -> list:
    """The error outputs of an executed notebook's code cells."""
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def printed_by(nb, marker: str, text=lambda out: out.get("text", "")) -> str:
    """What the code cells whose source has ``marker`` printed (``text`` picks it from an output)."""
    return "".join(
        text(out)
        for cell in nb.cells
        if cell.cell_type == "code" and marker in cell.source
        for out in cell.get("outputs", [])
    )


def write_notebook(path, parameters: str, body: str = "print('ran')") -> None:
    """A two-cell notebook at ``path``: the ``parameters``-tagged cell, then ``body``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
