"""Property tests of the annotation parsers: any workbook row loads or names its row."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from builders import CASME2_HEADER, SAMM_HEADER, SAMM_LEGEND, SAMM_LV_HEADER  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_datasets import write_sheets  # noqa: E402

from melib.data import datasets as D  # noqa: E402

PROPERTY = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

# What a cell may hold: the release's kinds of values and the usual mistakes.
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8)
JUNK = st.one_of(
    st.none(),
    TEXT,
    st.integers(-(10**12), 10**12),
    st.floats(-1e15, 1e15, allow_nan=False),
    st.sampled_from(
        [
            "/",
            "-1",
            "-",
            "",
            " ",
            "nan",
            "inf",
            "-inf",
            "1e400",
            "1,5",
            "12.5.3",
            "Micro",
            "macro",
            "Micro - 1/2",
            "Macro",
            "micro-expression",
            "0",
            "1e20",
        ]
    ),
)


def frame(plausible):
    return st.one_of(plausible, JUNK)


NUMBER = st.integers(0, 400)
FRACTION = st.floats(0, 400, allow_nan=False).map(lambda v: round(v, 1))


def outcome(name: str, path: Path, row: int):
    """Load; return the table, or check that the error names the fuzzed row."""
    try:
        return D.load_annotations(name, path)
    except D.DatasetError as exc:
        text = str(exc)
        assert re.search(rf"\brow {row}\b", text) or re.search(rf"\brows\b.*\b{row}\b", text), text
        assert "\n" not in text
        return None


def check_table(table, n_rows_max: int):
    if table is None:
        return
    assert len(table) <= n_rows_max
    for c in ("onset", "apex", "offset"):
        assert table[c].dtype.kind == "i"
    assert (table["onset"] <= table["offset"]).all()
    assert set(table["type"]) <= {"micro", "macro"}


def check_workbook(name: str, filename: str, sheets: dict, row: int):
    """Write ``sheets`` as the workbook ``filename``, load it as ``name`` and check the
    result (at most the two data rows, or an error naming ``row``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        write_sheets(path, sheets)
        check_table(outcome(name, path, row), 2)


@PROPERTY
@given(
    st.tuples(
        frame(st.sampled_from(["006", 6, "7", 7])),
        frame(st.just("006_1_9")),
        frame(NUMBER),
        frame(NUMBER),
        frame(NUMBER),
        frame(FRACTION),
        frame(FRACTION),
        frame(st.sampled_from(["Micro - 1/2", "Macro"])),
        JUNK,
        JUNK,
    )
)
def test_samm_lv_row(cells):
    subject, filename, inducement, onset, apex, offset, duration, kind, aus, notes = cells
    row = [subject, filename, inducement, onset, apex, offset, duration, kind, aus, notes]
    good = ["006", "006_1_1", 1, 10, 20, 40, 30, "Macro", "4+7", None]
    sheets = {"FACS_Movement_Only": SAMM_LEGEND + [SAMM_LV_HEADER, good, row]}
    check_workbook("samm_lv", "SAMM_LongVideos_V2_Release.xlsx", sheets, len(SAMM_LEGEND) + 3)


@PROPERTY
@given(
    st.tuples(
        frame(st.sampled_from([1, 2])),
        frame(st.sampled_from(["anger1_2", "happy1_1"])),
        frame(NUMBER),
        frame(NUMBER),
        frame(NUMBER),
        JUNK,
        JUNK,
        frame(st.sampled_from(["macro-expression", "micro-expression"])),
        JUNK,
    )
)
def test_casme_sq_row(cells):
    good = [1, "anger1_1", 5, 8, 12, "4+10", "negative", "macro-expression", "anger"]
    sheets = {
        "CASFEcode_final": [good, list(cells)],
        "naming rule1": [[15, "s15", 1], [16, "s16", 2]],
        "naming rule2": [[401, "anger1"], [502, "happy1"]],
    }
    check_workbook("casme_sq", "CAS(ME)^2code_final.xlsx", sheets, 2)


@PROPERTY
@given(
    st.tuples(
        frame(st.sampled_from([1, "s02", 3])),
        frame(st.just("s02_po_01")),
        frame(NUMBER),
        frame(NUMBER),
        frame(st.sampled_from(["ne", "positive"])),
        frame(NUMBER),
    )
)
def test_smic_e_row(cells):
    header = ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion", "FirstF"]
    good = [1, "s01_ne_01", 1010, 1020, "negative", 1000]
    check_workbook("smic_e_long", "SMIC-HS-E_annotation.xlsx", {"Sheet1": [header, good, list(cells)]}, 3)


@PROPERTY
@given(
    st.tuples(
        frame(st.sampled_from([1, "02", "sub03"])),
        frame(st.just("EP02_01f")),
        JUNK,
        frame(NUMBER),
        frame(st.one_of(NUMBER, st.just("/"))),
        frame(NUMBER),
        JUNK,
        frame(st.sampled_from(["happiness", "disgust"])),
    )
)
def test_casme2_row(cells):
    good = [1, "EP03_02", None, 100, 110, 120, "4", "disgust"]
    check_workbook("casme2", "CASME2-coding-20140508.xlsx", {"Sheet1": [CASME2_HEADER, good, list(cells)]}, 3)


@PROPERTY
@given(
    st.tuples(
        frame(st.sampled_from([6, "007"])),
        frame(st.just("006_1_2")),
        JUNK,
        frame(NUMBER),
        frame(st.one_of(NUMBER, st.just(-1))),
        frame(NUMBER),
        JUNK,
        JUNK,
        JUNK,
        JUNK,
        frame(st.sampled_from(["Anger", "Happiness"])),
        JUNK,
    )
)
def test_samm_row(cells):
    good = [7, "007_3_1", 3, 200, -1, 230, 31, "Micro - 1/2", "12", None, "Happiness", 2]
    sheets = {"Sheet1": SAMM_LEGEND[:5] + [SAMM_HEADER, good, list(cells)]}
    check_workbook("samm", "SAMM_Micro_FACS_Codes_v2.xlsx", sheets, 8)
