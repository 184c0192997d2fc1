"""SOFTNet feature extraction of one synthetic long video, two ways, in one run.

* **melib**: ``melib.features.softnet_input.run_feature_job``: the face box and
  landmarks come from the first frame with a face, one TV-L1 solver is reused for every
  pair, only the last k+1 face crops are held, rows go straight to a memory-mapped file.
* **authors' way** (as the SOFTNet code is organised): every frame is read into memory
  first, the face detector runs on every frame, a new TV-L1 solver is created for every
  pair, and all inputs are stacked in memory at the end.

Both use the same crop size, TV-L1 settings and post-processing (strain, head motion,
eye mask, 42x42 blocks), so the difference is the organisation alone. Each way runs in
a fresh process with an empty cache folder, so neither benefits from the other's cache.
Prints frames per second, peak memory (resident set above the process's baseline after
imports and dlib's models, which both ways load) and the ratios melib / authors.

    python benchmarks/softnet_features.py                  # tiny corpus, CAS(ME)², 'fast' TV-L1
    python benchmarks/softnet_features.py --preset book --dataset samm_lv   # a 2000-frame video
    python benchmarks/softnet_features.py --frames 120 --tvl1 default
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _limited(iterable, n):
    for i, item in enumerate(iterable):
        if i >= n:
            return
        yield item


def run_melib(args, ds, video, n, spec, out: Path) -> None:
    from melib.features.softnet_input import FeatureJob, run_feature_job
    from melib.features.video import DatasetVideo

    source = DatasetVideo(ds.name, str(ds.root), video, args.crop)

    def limited_source():
        _, landmarks, crops = source()
        return n, landmarks, _limited(crops, n)

    run_feature_job(FeatureJob(limited_source, spec, out / "melib.npy"))


def run_authors(args, ds, video, n, spec, out: Path) -> None:
    import numpy as np

    from melib import face
    from melib.features.flow import make_flow
    from melib.features.softnet_input import softnet_input, softnet_regions

    frames = [ds.read_frame(video, i) for i in range(n)]  # the whole video in memory
    boxes = [face.detect_face(f) for f in frames]  # detector on every frame
    box = next(b for b in boxes if b is not None)  # ... but the first box is the one used
    ref = next(i for i, b in enumerate(boxes) if b is not None)
    landmarks = face.points_to_crop(face.landmarks(frames[ref], box), box, args.crop)
    crops = [face.crop(f, box, args.crop, gray=True) for f in frames]
    geometry = softnet_regions(landmarks, (args.crop, args.crop), spec.geometry)
    inputs = []
    for i in range(n - spec.k):
        flow = make_flow(spec.flow)(crops[i], crops[i + spec.k])  # a new solver per pair
        inputs.append(softnet_input(flow, landmarks, spec.geometry, geometry))
    np.save(out / "authors.npy", np.stack(inputs))


def child(args) -> None:
    """One way, in this (fresh) process; prints a JSON line with its measurements."""
    import cv2

    from melib.features.flow import FlowSettings, TVL1Settings
    from melib.features.softnet_input import SoftnetFeatureSpec, SoftnetInputSettings
    from melib.features.video import open_dataset

    cv2.setNumThreads(1)
    ds = open_dataset(args.dataset, str(Path(args.root) / args.dataset))
    video = args.video or str(ds.videos.sort_values("n_frames")["video"].iloc[-1])
    n = min(args.frames or ds.n_frames(video), ds.n_frames(video))
    if not args.k:  # SOFTNet's k for micro-expressions (macro when the video set has none)
        ann = ds.annotations
        rows = ann[ann["type"] == "micro"] if (ann["type"] == "micro").any() else ann
        args.k = int(((rows["offset"] - rows["onset"]).mean() + 1) / 2)
    k = args.k
    spec = SoftnetFeatureSpec(
        k=k,
        flow=FlowSettings(tvl1=TVL1Settings.preset(args.tvl1)),
        geometry=SoftnetInputSettings(crop_size=args.crop),
    )
    from melib import face

    face._detector(), face._predictor()  # both ways load dlib's models: keep them out of the peak
    base = _rss_mb()
    start = time.perf_counter()
    out = Path(os.environ["MELIB_CACHE"])
    (run_melib if args.way == "melib" else run_authors)(args, ds, video, n, spec, out)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "way": args.way,
                "video": video,
                "frames": n,
                "k": k,
                "seconds": seconds,
                "fps": n / seconds,
                "peak_mb": _peak_mb() - base,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="corpus root (default: the cached synthetic corpus)")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "book"], help="synthetic corpus preset")
    parser.add_argument("--dataset", default="casme_sq", choices=["casme_sq", "samm_lv"])
    parser.add_argument("--video", default=None, help="default: the dataset's longest video")
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("--k", type=int, default=None, help="default: the dataset's micro k")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--tvl1", default="fast", choices=["default", "light", "fast"])
    parser.add_argument("--way", choices=["melib", "authors"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:
        child(args)
        return
    if args.root is None:
        from melib.data.synth import ensure_corpus

        args.root = str(ensure_corpus(args.preset, 0, progress=False))
    results = {}
    for way in ("melib", "authors"):
        with tempfile.TemporaryDirectory(prefix=f"bench-{way}-") as tmp:
            cmd = [sys.executable, __file__, "--way", way] + [
                a
                for key, value in vars(args).items()
                if key not in ("way", "preset") and value is not None
                for a in (f"--{key}", str(value))
            ]
            done = subprocess.run(
                cmd, env={**os.environ, "MELIB_CACHE": tmp}, check=True, capture_output=True, text=True
            )
            results[way] = json.loads(done.stdout.strip().splitlines()[-1])
    m, a = results["melib"], results["authors"]
    print(
        f"video {m['video']} ({args.dataset}), {m['frames']} frames, k={m['k']}, "
        f"{args.crop}px crop, TV-L1 '{args.tvl1}'"
    )
    for r in (m, a):
        print(
            f"  {r['way']:8s} {r['fps']:7.2f} frames/s  {r['seconds']:7.1f} s  peak memory +{r['peak_mb']:.1f} MB"
        )
    print(
        f"ratio melib / authors: speed x{m['fps'] / a['fps']:.2f}, "
        f"peak memory x{m['peak_mb'] / max(a['peak_mb'], 1e-9):.2f}"
    )


if __name__ == "__main__":
    main()
