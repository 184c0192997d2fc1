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
