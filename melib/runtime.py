"""Process-wide plumbing: seeds, devices, cache folders and atomic writes.

This is the bottom layer: it imports nothing else from melib.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

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


class DeviceError(RuntimeError, ValueError):
    """A device that this machine does not have; the message names the ones it has."""


def cuda_devices() -> list[str]:
    """The CUDA devices PyTorch sees, as ``"cuda:0 (NVIDIA H200)"`` (empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]


def resolve_device(device: str = "auto"):
    """``auto`` picks CUDA when present, else CPU; anything else is passed to torch.

    ``"cuda:N"`` is checked against the devices present: an index past the last one
    raises :class:`DeviceError` naming the devices this machine has.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(
            f"device={device!r} is not a device name; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={device!r} was requested but CUDA is not available; use device='auto' or 'cpu'"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(
                f"device={device!r}: this machine has {count} CUDA device(s), "
                f"{', '.join(cuda_devices())}; use one of those, 'cuda' (the first) or 'auto'"
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
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


class BusyError(ValueError):
    """Another process holds the lock; the message names it and what to do."""


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike, *, waiting: str | None = None, remove: bool = False, busy: str | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    A second process entering the block waits for the first; ``waiting`` (if given) is
    printed once on stderr when it has to, with the holder's process id. The lock dies
    with its holder, so a killed run never blocks the next one. ``remove=True`` deletes
    the lock file on exit, leaving nothing behind (a waiter then notices and retries).
    With ``busy``, a second process does not wait: it raises :class:`BusyError` with
    that message and the holder's process id.
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
                if busy is not None:
                    handle.seek(0)
                    holder = handle.read().strip()
                    raise BusyError(busy.format(holder=holder if holder.isdigit() else "unknown")) from None
                if waiting and not told:
                    handle.seek(0)
                    holder = handle.read().strip()
                    print(
                        waiting + (f" (process {holder})" if holder.isdigit() else ""),
                        file=sys.stderr,
                        flush=True,
                    )
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
    """Write ``array`` atomically, with its checksum record (see :func:`verify_cache`)."""
    with checked_path(target) as tmp:
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


# ------------------------------------------------------------------ verified caches
#
# Every cache file is checked before it is used, so that a truncated or overwritten
# entry is recomputed (or named in an error), never read as garbage:
# - ``.npy``: the header's shape and dtype give the exact file size, and a sidecar
#   ``<name>.npy.check`` (JSON: size and SHA-256, written by ``save_npy`` and
#   ``melib.features.cache.write_memmap``) the content;
# - ``.npz`` and ``.pt`` are zip archives that store a CRC-32 and size per member
#   (PyTorch's format since 1.6): every member is read back and checked;
# - ``.json``: it must parse.
# A file passes once per process (the result is remembered by size, mtime and inode).

CHECK_SUFFIX = ".check"
_verified: dict[str, tuple] = {}


class CacheError(ValueError):
    """A cache file is damaged; the message names it (the file has been removed)."""


def check_record_path(target: str | os.PathLike) -> Path:
    target = Path(target)
    return target.with_name(target.name + CHECK_SUFFIX)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def write_check_record(target: str | os.PathLike) -> None:
    """Record ``target``'s size and SHA-256 beside it (``<name>.check``)."""
    target = Path(target)
    with atomic_path(check_record_path(target)) as tmp:
        tmp.write_text(json.dumps(_record(target), sort_keys=True))


@contextlib.contextmanager
def checked_path(target: str | os.PathLike) -> Iterator[Path]:
    """:func:`atomic_path` that also records the file's size and SHA-256 beside it.

    The old record goes before the new file lands and the new record is written after,
    so an interruption leaves at worst a file without a record (checked by its
    structure, then recorded), never a record that vouches for the wrong content.
    """
    target = Path(target)
    record = check_record_path(target)
    with atomic_path(target) as tmp:
        yield tmp
        record.unlink(missing_ok=True)
    write_check_record(target)
    _verified.pop(str(target), None)


def _structure_problem(path: Path) -> str | None:
    """What is wrong with the file's own structure (None if nothing)."""
    suffix = path.suffix.lower()
    size = path.stat().st_size
    try:
        if suffix == ".npy":
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:  # 3.0 (utf-8 field names): numpy has no public reader
                    shape, _, dtype = np.lib.format._read_array_header(fh, version)
                header_end = fh.tell()
            if dtype.hasobject:
                return None  # pickled objects: no fixed size
            expected = header_end + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if size != expected:
                return f"{size} bytes where its header needs {expected}"
        elif suffix in (".npz", ".pt", ".pth"):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                return f"member {bad} fails its CRC check"
        elif suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        if isinstance(exc, PermissionError):
            raise
        return f"unreadable: {type(exc).__name__}: {exc}"
    return None


def cache_problem(path: str | os.PathLike) -> str | None:
    """Why the cache file ``path`` must not be used, or None when it is sound.

    Raises FileNotFoundError when it does not exist.
    """
    path = Path(path)
    stat = path.stat()
    stamp = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if _verified.get(str(path)) == stamp:
        return None
    problem = _structure_problem(path)
    record_path = check_record_path(path)
    if problem is None and record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
            size, digest = int(record["size"]), str(record["sha256"])
        except (ValueError, KeyError, TypeError, OSError):
            size, digest = None, None  # a damaged record: re-recorded below
        if size is not None and size != stat.st_size:
            problem = f"{stat.st_size} bytes where {size} were written"
        elif digest is not None and digest != _sha256(path):
            problem = "its content differs from the checksum recorded when it was written"
        elif size is None:
            with contextlib.suppress(OSError):
                write_check_record(path)
    elif problem is None and path.suffix.lower() == ".npy":
        with contextlib.suppress(OSError):  # written by an older melib: record it now
            write_check_record(path)
    if problem is None:
        _verified[str(path)] = stamp
    return problem


def discard_cache(path: str | os.PathLike) -> None:
    """Remove a cache file and its checksum record (only melib's own cache entries)."""
    path = Path(path)
    _verified.pop(str(path), None)
    path.unlink(missing_ok=True)
    check_record_path(path).unlink(missing_ok=True)


def cache_ok(path: str | os.PathLike) -> bool:
    """True when the cache file exists and is sound: use it instead of ``is_file()``.

    A damaged file is removed with one line on stderr naming it, and False is returned,
    so the caller recomputes it.
    """
    path = Path(path)
    if not path.is_file():
        if not path.exists():
            check_record_path(path).unlink(missing_ok=True)  # an orphaned record
        return False
    problem = cache_problem(path)
    if problem is None:
        return True
    discard_cache(path)
    print(f"melib: cache file {path} is damaged ({problem}); recomputing it", file=sys.stderr, flush=True)
    return False


def verified(path: str | os.PathLike) -> Path:
    """``path`` if it is a sound cache file; else remove it and raise :class:`CacheError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cache file {path} does not exist; run again to compute it")
    problem = cache_problem(path)
    if problem is not None:
        discard_cache(path)
        raise CacheError(
            f"cache file {path} is damaged ({problem}); it was removed: run again to recompute it"
        )
    return path


def load_npy(path: str | os.PathLike, mmap_mode: str | None = None) -> np.ndarray:
    """``np.load`` of a verified ``.npy`` cache file."""
    return np.load(verified(path), mmap_mode=mmap_mode, allow_pickle=False)


def load_npz(path: str | os.PathLike) -> dict:
    """Every array of a verified ``.npz`` cache file, read into memory."""
    with np.load(verified(path), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def load_torch(path: str | os.PathLike, map_location="cpu", weights_only: bool = False):
    """``torch.load`` of a verified checkpoint (``.pt``)."""
    import torch

    return torch.load(verified(path), map_location=map_location, weights_only=weights_only)


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


def stable_hash(*objs, length: int = 10) -> str:
    """Short hash of dataclasses / dicts / scalars that is the same in every process.

    Built on sorted-key JSON, not ``hash()``, which Python salts per process.
    """

    def plain(o):
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {
                "__class__": type(o).__name__,
                **{f.name: plain(getattr(o, f.name)) for f in dataclasses.fields(o)},
            }
        if isinstance(o, dict):
            return {str(k): plain(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [plain(v) for v in o]
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, Path):
            return str(o)
        return o

    blob = json.dumps([plain(o) for o in objs], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:length]
