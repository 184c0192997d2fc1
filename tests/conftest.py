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


# The plumbing runs (the full profile with limit_steps=2, one paper notebook each) that
# fit CI's budget; benchmarks/plumbing.py times all five from a cold cache. The others
# run here with MELIB_PLUMBING=all.
PLUMBING_IN_CI = {"lbcnn", "cropnet"}


def pytest_collection_modifyitems(config, items):
    import os

    if os.environ.get("MELIB_PLUMBING") == "all":
        return
    for item in items:
        if item.get_closest_marker("plumbing") is None:
            continue
        paper = Path(str(item.fspath)).stem.removeprefix("test_plumbing_")
        if paper not in PLUMBING_IN_CI:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"the {paper} plumbing run exceeds CI's budget: `python benchmarks/plumbing.py "
                    f"--only {paper}` runs it (or MELIB_PLUMBING=all here)"
                )
            )
