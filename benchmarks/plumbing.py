"""Plumbing runs of the ``full`` profile: every paper notebook executed as a user would,

    melib reproduce --profile full --limit-steps N --only NN --no-book --out DIR

each from a cold cache that holds only the tiny synthetic corpus, so the wall time
includes every feature and every (step-capped) training. Prints one line per notebook
and the total, so that the suite can keep in CI only the runs that fit its budget
(``tests/conftest.py``: ``PLUMBING_IN_CI``) and this script covers the rest.

    python benchmarks/plumbing.py                 # all five, N = 2
    python benchmarks/plumbing.py --only 04 06 --steps 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAPERS = ("03_softnet", "04_lbcnn", "05_dyngeonet", "06_cropnet", "07_bai")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=None, help="notebook names or prefixes")
    parser.add_argument("--steps", type=int, default=2, help="optimiser steps per training")
    args = parser.parse_args(argv)
    chosen = [p for p in PAPERS if not args.only or any(p.startswith(o) or o in p for o in args.only)]
    sys.path.insert(0, str(ROOT))
    from melib.data.synth import ensure_corpus

    tiny = ensure_corpus("tiny", 0, progress=False)
    rows, failed = [], 0
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix="melib-plumbing-") as scratch:
            cache = Path(scratch) / "cache"
            (cache / "synth").mkdir(parents=True)
            os.symlink(tiny, cache / "synth" / tiny.name)
            env = {**os.environ, "MELIB_CACHE": str(cache)}
            command = [
                sys.executable,
                "-m",
                "melib",
                "reproduce",
                "--profile",
                "full",
                "--limit-steps",
                str(args.steps),
                "--only",
                name,
                "--no-book",
                "--out",
                str(Path(scratch) / "out"),
            ]
            start = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file() and not f.is_symlink())
            status = "ok" if done.returncode == 0 else "FAILED"
            failed += done.returncode != 0
            rows.append((name, status, seconds, size / 2**20))
            print(
                f"{name:<14} {status:<6} {seconds:7.0f} s   cache written {size / 2**20:7.0f} MiB", flush=True
            )
            if done.returncode:
                print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
            shutil.rmtree(cache, ignore_errors=True)
    total = sum(r[2] for r in rows)
    print(f"{'total':<14} {'':<6} {total:7.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
