"""The executed notebooks cannot drift from their sources, and sources stay clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT


def _notebooks(folder):
    # Hidden names are papermill's scratch copies of a batch still running.
    return sorted(p for p in (PROJECT_ROOT / folder).glob("*.ipynb") if not p.name.startswith("."))


SOURCES = _notebooks("notebooks")
EXECUTED = _notebooks("book") + _notebooks("tests/notebooks")
REQUIRED_PARAMETERS = ("seed", "profile", "data_root", "device")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _code_cells(nb: dict) -> list[str]:
    """Code cell sources, leaving out the cell papermill injects."""
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in nb["cells"]
        if c["cell_type"] == "code" and "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]


def test_there_are_notebooks():
    assert SOURCES, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_is_stripped(source):
    nb = _load(source)
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{source.name}: cells {dirty} carry outputs; commit sources stripped"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_has_one_parameters_cell_with_the_shared_knobs(source):
    nb = _load(source)
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{source.name}: expected exactly one cell tagged 'parameters'"
    text = "".join(tagged[0]["source"])
    for name in REQUIRED_PARAMETERS:
        assert any(line.split("=")[0].strip() == name for line in text.splitlines()), (
            f"{source.name}: the parameters cell does not define {name!r}"
        )


@pytest.mark.parametrize("executed", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_executed_copy_matches_its_source(executed):
    source = PROJECT_ROOT / "notebooks" / executed.name
    assert source.is_file(), f"{executed} has no source in notebooks/"
    got, want = _code_cells(_load(executed)), _code_cells(_load(source))
    assert len(got) == len(want), (
        f"{executed} has {len(got)} code cells, its source {len(want)}: rerun "
        f"`melib reproduce --only {source.stem}`"
    )
    for index, (a, b) in enumerate(zip(got, want)):
        assert a == b, (
            f"{executed}: code cell {index} differs from notebooks/{source.name}; edit the "
            f"source and rerun `melib reproduce --only {source.stem}`"
        )


@pytest.mark.parametrize("executed", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_executed_copy_has_no_errors_and_records_its_provenance(executed):
    nb = _load(executed)
    errors = [
        o.get("ename")
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{executed} contains errors: {errors}"
    meta = nb["metadata"].get("melib")
    assert meta and meta["source"] == executed.name, f"{executed}: not written by melib reproduce"
    expected_profile = "smoke" if executed.parent.name == "notebooks" else None
    if expected_profile:
        assert meta["parameters"]["profile"] == expected_profile


def test_every_book_notebook_is_in_the_table_of_contents():
    import yaml

    toc = (PROJECT_ROOT / "_toc.yml").read_text()
    files = {str(v) for v in _walk(yaml.safe_load(toc))}
    for executed in _notebooks("book"):
        assert f"book/{executed.stem}" in files, f"{executed.name} is not in _toc.yml"


def _walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                yield value
            else:
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


PAPER_NOTEBOOKS = {
    "03_softnet": "softnet",
    "04_lbcnn": "lbcnn",
    "05_dyngeonet": "dyngeonet",
    "06_cropnet": "cropnet",
    "07_bai": "bai",
}


def _parameter_names(source: Path) -> list[str]:
    import ast

    cell = next(c for c in _load(source)["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return [
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    ]


@pytest.mark.parametrize("stem", sorted(PAPER_NOTEBOOKS))
def test_parameters_cell_names_equal_configure_signature(stem):
    import importlib
    import inspect

    module = importlib.import_module(f"melib.pipelines.{PAPER_NOTEBOOKS[stem]}")
    signature = inspect.signature(module.configure)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values()), (
        f"{module.__name__}.configure must be keyword-only"
    )
    names = _parameter_names(PROJECT_ROOT / "notebooks" / f"{stem}.ipynb")
    assert len(names) == len(set(names)), f"{stem}: a parameter is assigned twice"
    assert set(names) == set(signature.parameters), (
        f"{stem}: parameters cell and configure() differ: only in the notebook "
        f"{sorted(set(names) - set(signature.parameters))}, only in configure "
        f"{sorted(set(signature.parameters) - set(names))}"
    )
