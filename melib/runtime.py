"""Process-wide plumbing: seeds, devices, cache folders and atomic writes.

This is the bottom layer: it imports nothing else from melib.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import sys
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


# mkstemp / mkdtemp draw 8 characters from this alphabet for the random part of a name.
_TEMP_RANDOM = r"[a-z0-9_]{8}"


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that :func:`atomic_path` / :func:`atomic_dir` left for ``target``.

    A hard kill (SIGKILL, power loss) skips their clean-up and leaves
    ``.<stem>.<random>.tmp<suffix>`` files or ``.<name>.<random>.tmp`` folders beside
    ``target``. Only those exact names are removed, never anything else. Call it only
    while holding the lock that guards ``target`` (no live writer can own them then).
    Returns what was removed.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    as_file = re.compile(rf"\.{re.escape(target.stem)}\.{_TEMP_RANDOM}\.tmp{re.escape(target.suffix)}")
    as_dir = re.compile(rf"\.{re.escape(target.name)}\.{_TEMP_RANDOM}\.tmp")
    removed = []
    for entry in target.parent.iterdir():
        if entry.is_dir() and not entry.is_symlink() and as_dir.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
        elif (entry.is_file() or entry.is_symlink()) and as_file.fullmatch(entry.name):
            entry.unlink(missing_ok=True)
        else:
            continue
        removed.append(entry)
    return removed


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, waiting: str | None = None,
              remove: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    A second process entering the block waits for the first; ``waiting`` (if given) is
    printed once on stderr when it has to, with the holder's process id. The lock dies
    with its holder, so a killed run never blocks the next one. ``remove=True`` deletes
    the lock file on exit, leaving nothing behind (a waiter then notices and retries).
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        handle = open(path, "a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if waiting and not told:
                    handle.seek(0)
                    holder = handle.read().strip()
                    print(waiting + (f" (process {holder})" if holder.isdigit() else ""),
                          file=sys.stderr, flush=True)
                    told = True
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:  # the holder we waited for may have removed the file: lock the new one
                current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                current = False
        except BaseException:
            handle.close()
            raise
        if current:
            break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        if remove:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        handle.close()


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
