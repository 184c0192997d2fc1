#!/usr/bin/env bash
# One-command install: a virtual environment in .venv with melib and every dependency.
# Re-running it is safe and fast (pip skips what is already installed).
set -euo pipefail
cd "$(dirname "$0")"

# MELIB_VENV=0 installs into the Python already active (a conda env made from
# environment.yml, a cluster module) instead of creating .venv.
PYTHON=${PYTHON:-python3}
if [ "${MELIB_VENV:-1}" = "0" ]; then
  VPY=$(command -v "$PYTHON")
else
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  VPY=.venv/bin/python
fi

"$VPY" -m pip install --quiet --upgrade pip
"$VPY" -m pip install --quiet -e .

# grad-cam depends on opencv-python-headless, and both it and the contrib build that
# carries TV-L1 (cv2.optflow) unpack into the same cv2/ folder: whichever pip installed
# last wins. Remove the plain builds and reinstall the contrib one so the result never
# depends on install order.
contrib_pin=$(grep -o 'opencv-contrib-python-headless==[0-9.]*' pyproject.toml)
"$VPY" -m pip uninstall --quiet -y opencv-python-headless opencv-python opencv-contrib-python 2>/dev/null || true
"$VPY" -m pip install --quiet --force-reinstall --no-deps "$contrib_pin"

# The book check (melib book --check, tests/test_book.py) opens every page in headless
# Chromium. Debian's packages need root; elsewhere, install chromium + chromedriver yourself.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "note: chromium and chromedriver not found; the browser check of the book will be skipped" >&2
  fi
fi

"$VPY" - <<'PY'
import cv2
cv2.optflow.DualTVL1OpticalFlow_create
from melib.runtime import dlib_landmark_model_path
dlib_landmark_model_path()
print(f"melib environment ready: OpenCV {cv2.__version__} with TV-L1, dlib landmark model found")
PY
