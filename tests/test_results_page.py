"""The results page pastes only what the executed notebooks glued; run times are generated."""

from __future__ import annotations

import json
import re

import pytest
from conftest import PROJECT_ROOT

from melib import book

RESULTS = PROJECT_ROOT / "book" / "results.md"
ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+\.ipynb)::([\w]+)(?::[^`]*)?`")
DIRECTIVE = re.compile(r"```\{glue(?::\w+)?\}\s+(\w+)\n:doc:\s+(\S+)")


def glued_names(notebook) -> set[str]:
    names = set()
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook:
                names.add(scrapbook["name"])
    return names


def pasted_references() -> list[tuple[str, str]]:
    text = RESULTS.read_text()
    refs = [(doc, key) for doc, key in ROLE.findall(text)]
    refs += [(doc, key) for key, doc in DIRECTIVE.findall(text)]
    return refs


def test_results_page_pastes_something():
    assert len(pasted_references()) >= 10


@pytest.mark.parametrize("doc,key", pasted_references())
def test_every_pasted_number_was_glued_by_an_executed_notebook(doc, key):
    notebook = RESULTS.parent / doc
    assert notebook.is_file(), f"{RESULTS.name} pastes from {doc}, which is not in book/"
    assert key in glued_names(notebook), (
        f"{doc} glues no '{key}': rerun `melib reproduce --only {notebook.stem}` or fix {RESULTS.name}"
    )


def test_no_decimal_of_ours_is_typed_on_the_results_page():
    # Paper numbers live in the "Paper" column of the at-a-glance table; every other
    # decimal on the page must come from a glue reference.
    for line in RESULTS.read_text().splitlines():
        if line.startswith("| ") and "{glue:text}" in line:
            ours = line.rsplit("|", 2)[-2]
            assert "{glue:text}" in ours and not re.search(r"\d\.\d", ours.split("`")[0]), line


def _fake_execution(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "cells": [],
                "metadata": {"papermill": {"duration": seconds}},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )


def test_run_times_table_reads_papermill_durations(tmp_path):
    _fake_execution(tmp_path / "book" / "03_softnet.ipynb", 345.2)
    _fake_execution(tmp_path / "tests" / "notebooks" / "03_softnet.ipynb", 21.4)
    _fake_execution(tmp_path / "tests" / "notebooks" / "05_dyngeonet.ipynb", 60.0)
    table = book.run_times_markdown(tmp_path)
    assert "| `03_softnet` | 21 s | 5.8 min |" in table
    assert "| `05_dyngeonet` | 60 s | not executed |" in table
    page = book.write_run_times_page(tmp_path)
    assert page.read_text() == table


def test_stored_run_times_page_is_current():
    stored = PROJECT_ROOT / book.RUN_TIMES_PAGE
    assert stored.is_file(), "run `melib book` to write book/generated/run_times.md"
    assert stored.read_text() == book.run_times_markdown(PROJECT_ROOT), (
        "book/generated/run_times.md is stale: `melib book` rewrites it from the executions"
    )


def test_glue_results_lists_what_it_glued():
    import pandas as pd

    listing = book.glue_results(
        "demo", tables={"t": pd.DataFrame({"a": [0.123456]})}, numbers={"f1": 0.987654321}
    )
    assert listing.loc["demo_f1", "what"] == "0.9877"
    assert listing.loc["demo_t", "what"].startswith("table, 1 rows")
