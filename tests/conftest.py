"""Shared test fixtures and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = PROJECT_ROOT.parent / "shared"
SHARED_REFERENCE = SHARED / "reference"


@pytest.fixture
def shared_reference() -> Path:
    """The real annotation workbooks; tests using them skip when ../shared is absent."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("../shared/reference is not beside the project")
    return SHARED_REFERENCE


def pytest_ignore_collect(collection_path, config):
    """Keep nbval to the committed executions: never a hidden notebook (a run's scratch
    copy ``.NN_name.running.<pid>.ipynb`` or an atomic write's temporary file) and never
    the partial copies of failed runs that ``melib reproduce`` keeps in ``<out>/failed/``.
    Returning None leaves every other path to pytest's own rules."""
    path = Path(collection_path)
    if path.suffix == ".ipynb" and path.name.startswith("."):
        return True
    if path.name == "failed" and path.parent.name == "notebooks" and path.is_dir():
        return True
    return None
