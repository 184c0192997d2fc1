"""ruff's lint and format checks pass on the whole project (configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import PROJECT_ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff") or str(PROJECT_ROOT / ".venv" / "bin" / "ruff")
    return subprocess.run([exe, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [("check", "."), ("format", "--check", ".")], ids=["lint", "format"])
def test_ruff(command):
    result = _ruff(*command)
    assert result.returncode == 0, f"`ruff {' '.join(command)}` failed:\n{result.stdout}{result.stderr}"


def test_pre_commit_strips_notebook_sources():
    text = (PROJECT_ROOT / ".pre-commit-config.yaml").read_text()
    assert "nbstripout" in text and "^notebooks/" in text
