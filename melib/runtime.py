"""Process-wide plumbing: seeds, devices, cache folders and atomic writes.

This is the bottom layer: it imports nothing else from melib.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

PROFILES = ("smoke", "book", "full")


def project_root() -> Path:
    """The checkout that holds notebooks/ and book/ (melib is installed editable)."""
    return Path(__file__).resolve().parent.parent


def cache_dir(*parts: str) -> Path:
    """Where melib keeps generated corpora, features and checkpoints.

    ``MELIB_CACHE`` overrides the default ``<project>/.cache`` so that a cluster user
    can point every job at scratch space.
    """
    base = Path(os.environ.get("MELIB_CACHE", project_root() / ".cache"))
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not one of {', '.join(PROFILES)}")
    return profile


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and PyTorch; make CPU runs bit-reproducible for nbval."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.manual_seed(seed)
    if deterministic:
        # Kernel choice depends on the thread count, so pin it for identical floats.
        torch.set_num_threads(min(2, os.cpu_count() or 1))
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def resolve_device(device: str = "auto"):
    """``auto`` picks CUDA when present, else CPU; anything else is passed to torch."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but CUDA is not available; "
            "use device='auto' or 'cpu'"
        )
    return dev


# --------------------------------------------------------------------------- atomic IO


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``target`` only on success.

    Readers never see a half-written file, and an interrupted job leaves no
    corrupt cache entry behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last: some writers (papermill, np.save) act on the extension.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Like :func:`atomic_path` for a whole folder (a generated corpus, say)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_npy(target: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def save_npz(target: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def save_json(target: str | os.PathLike, obj) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))


def save_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def save_torch(target: str | os.PathLike, obj) -> None:
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


# --------------------------------------------------------------------------- dlib model


def dlib_landmark_model_path() -> Path:
    """Path of dlib's 68-point shape predictor shipped in ``face-recognition-models``.

    The package's ``__init__`` imports ``pkg_resources`` (gone from new setuptools), so
    locate its folder with ``find_spec`` instead of importing it.
    """
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "dlib's 68-landmark model was not found: the 'face-recognition-models' package "
            "is not installed. Fix: pip install face-recognition-models==0.3.0"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the face-recognition-models package; reinstall it: "
            "pip install --force-reinstall face-recognition-models==0.3.0"
        )
    return path
