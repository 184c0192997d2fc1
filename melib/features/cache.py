"""Per-video feature files: stable cache keys, atomic memory-mapped writes, and a
process pool that fills missing files in parallel with a progress bar.

Features are stored one ``.npy`` per video so that training reads them through
``np.load(mmap_mode="r")`` and a dataset never has to fit in memory. A file exists
only once it is complete (it is written to a temporary sibling and renamed), so an
interrupted extraction resumes from the videos it had not finished.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from melib.runtime import cache_ok, checked_path, load_npy, stable_hash

__all__ = ["safe_name", "write_memmap", "load_features", "map_jobs"]


def video_stamp(dataset, video: str) -> str:
    """Identity of a video's frames (first path, count, size and mtime of the first and
    last file), so that a cache keyed by it is never reused for a regenerated corpus."""
    paths = dataset.frame_paths(video)
    st0, st1 = paths[0].stat(), paths[-1].stat()
    return stable_hash(
        str(paths[0].resolve()),
        len(paths),
        st0.st_size,
        st0.st_mtime_ns,
        st1.st_size,
        st1.st_mtime_ns,
        length=8,
    )


def safe_name(name: str) -> str:
    """A video or fold name usable as a file name (SAMM-LV and CAS names are already
    safe; this guards user datasets with slashes or spaces)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


@contextlib.contextmanager
def write_memmap(target: str | os.PathLike, shape: tuple[int, ...], dtype=np.float32) -> Iterator[np.ndarray]:
    """Yield a writable memory-mapped ``.npy`` that appears at ``target`` only when the
    block exits without an exception; rows are written to disk, not held in RAM. Its
    size and SHA-256 are recorded beside it (``melib.runtime.checked_path``)."""
    with checked_path(target) as tmp:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
        try:
            yield mm
            mm.flush()
        finally:
            del mm


def load_features(path: str | os.PathLike, recompute: Callable[[], object] | None = None) -> np.ndarray:
    """Read-only memory map of a cached feature file, verified first.

    A truncated or overwritten file is removed; with ``recompute`` (a function that
    writes the file again) it is recomputed, with one line on stderr naming it;
    without, :class:`melib.runtime.CacheError` names the file.
    """
    if recompute is not None and not cache_ok(path):
        recompute()
    return load_npy(path, mmap_mode="r")


def _init_worker() -> None:
    # Two processes on two cores: OpenCV's own thread pool would only oversubscribe.
    import cv2

    cv2.setNumThreads(1)


def map_jobs(
    fn: Callable,
    jobs: Sequence,
    workers: int = 2,
    desc: str = "features",
    progress: bool = True,
    total: int | None = None,
) -> list:
    """``[fn(job) for job in jobs]``, in a process pool when ``workers > 1``.

    ``fn`` must be a module-level function and ``jobs`` picklable (the pool uses the
    ``forkserver`` start method: forking a process that has already run PyTorch or
    OpenCV threads can deadlock). Results come back in job order. The bar advances as
    jobs finish and writes to stderr, so notebook sanitizers can drop it; with
    ``total`` larger than ``len(jobs)`` it starts at the difference (work already
    cached), so a cached rerun draws the same bar.
    """
    from tqdm import tqdm

    jobs = list(jobs)
    results: list = [None] * len(jobs)
    total = len(jobs) if total is None else total
    bar = tqdm(
        total=total,
        initial=total - len(jobs),
        desc=desc,
        file=sys.stderr,
        disable=not progress,
        mininterval=1.0,
        leave=True,
    )
    try:
        if workers <= 1 or len(jobs) <= 1:
            for i, job in enumerate(jobs):
                results[i] = fn(job)
                bar.update()
            return results
        import multiprocessing as mp
        from concurrent.futures.process import BrokenProcessPool

        ctx = mp.get_context("forkserver")
        try:
            with ProcessPoolExecutor(
                max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker
            ) as pool:
                futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update()
        except BrokenProcessPool as err:
            raise RuntimeError(
                f"{desc}: a worker process died. In a script, start the work under "
                "`if __name__ == '__main__':` (workers re-import the main module), or pass "
                "workers=1; out of memory is the other usual cause."
            ) from err
        return results
    finally:
        bar.close()
