"""The install is deterministic and the two environment descriptions agree."""

from __future__ import annotations

import re

import tomllib
import yaml
from conftest import PROJECT_ROOT


def test_tvl1_comes_from_the_contrib_build():
    import cv2

    assert hasattr(cv2, "optflow"), "cv2 is the plain build: rerun setup.sh"
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    assert tvl1 is not None


def test_plain_opencv_builds_are_not_installed():
    import importlib.metadata as md

    installed = {d.metadata["Name"].lower() for d in md.distributions()}
    assert "opencv-contrib-python-headless" in installed
    assert not installed & {"opencv-python", "opencv-python-headless", "opencv-contrib-python"}


def test_dlib_landmark_model_is_found_without_pkg_resources():
    from melib.runtime import dlib_landmark_model_path

    path = dlib_landmark_model_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat"
    assert path.stat().st_size > 90_000_000


def _requirement_names(requirements):
    return {
        re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].strip().lower(): r.replace(" ", "") for r in requirements
    }


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    declared = _requirement_names(pyproject["project"]["dependencies"])
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = _requirement_names(pip_section)
    assert conda == declared, "environment.yml and pyproject.toml disagree"
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python, "environment.yml must pin a Python"


def test_pipeline_check_recovers_a_known_shift():
    from melib.environment import pipeline_check

    result = pipeline_check(shift_px=1.5, device="cpu")
    assert result["faces found"] == 1
    assert result["landmarks"] == 68
    assert abs(result["TV-L1 mean u (px)"] - 1.5) < 0.2
    assert abs(result["TV-L1 mean v (px)"]) < 0.2
