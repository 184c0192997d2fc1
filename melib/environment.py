"""What this machine offers melib: versions, device, dlib model, TV-L1 and caches."""

from __future__ import annotations

import importlib.metadata as md
import json
import platform

from melib import __version__
from melib.runtime import cache_dir, dlib_landmark_model_path

PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "opencv-contrib-python-headless",
    "dlib-bin",
    "face-recognition-models",
    "grad-cam",
    "scikit-learn",
    "numpy",
    "papermill",
    "jupyter-book",
    "nbval",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_report() -> dict[str, str]:
    import torch

    if torch.cuda.is_available():
        return {"device": "cuda", "name": torch.cuda.get_device_name(0), "cuda": str(torch.version.cuda)}
    return {"device": "cpu", "name": platform.processor() or platform.machine(), "cuda": "not available"}


def capability_report() -> dict[str, str]:
    """Checks each capability the notebooks need and says how to fix a missing one."""
    checks = {}
    try:
        checks["dlib 68-landmark model"] = f"found ({dlib_landmark_model_path().name})"
    except FileNotFoundError as exc:
        checks["dlib 68-landmark model"] = f"MISSING: {exc}"
    try:
        import cv2

        cv2.optflow.DualTVL1OpticalFlow_create()
        checks["TV-L1 optical flow (cv2.optflow)"] = f"available (OpenCV {cv2.__version__})"
    except (ImportError, AttributeError):
        checks["TV-L1 optical flow (cv2.optflow)"] = (
            "MISSING: the plain OpenCV build shadows the contrib one; rerun setup.sh"
        )
    return checks


def storage_report() -> dict[str, str]:
    return {
        "cache (MELIB_CACHE)": str(cache_dir()),
        "synthetic corpora": str(cache_dir("synth")),
        "features": str(cache_dir("features")),
        "checkpoints": str(cache_dir("checkpoints")),
    }


def report() -> dict[str, dict[str, str]]:
    return {
        "melib": {"version": __version__, "python": platform.python_version()},
        "packages": package_versions(),
        "device": device_report(),
        "capabilities": capability_report(),
        "storage": storage_report(),
    }


def cli_env(args) -> int:
    rep = report()
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        for section, rows in rep.items():
            print(f"[{section}]")
            width = max(len(k) for k in rows)
            for key, value in rows.items():
                print(f"  {key:<{width}}  {value}")
    missing = [k for k, v in rep["capabilities"].items() if v.startswith("MISSING")]
    return 1 if missing else 0


def pipeline_check(shift_px: float = 1.5, device: str = "auto") -> dict[str, object]:
    """Run each stage once on a known input: face → landmarks → TV-L1 flow → a CNN step.

    The portrait is scikit-image's public-domain astronaut photo, shifted right by
    ``shift_px`` pixels, so the flow inside the face box must come out near that shift.
    """
    import cv2
    import dlib
    import numpy as np
    import torch
    from skimage.data import astronaut

    from melib.runtime import resolve_device

    gray = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2GRAY)
    faces = dlib.get_frontal_face_detector()(gray, 1)
    if not faces:
        raise RuntimeError("dlib found no face in the astronaut portrait")
    box = faces[0]
    shape = dlib.shape_predictor(str(dlib_landmark_model_path()))(gray, box)
    top, bottom = max(box.top(), 0), min(box.bottom(), gray.shape[0])
    left, right = max(box.left(), 0), min(box.right(), gray.shape[1])
    shifted = cv2.warpAffine(
        gray,
        np.float32([[1, 0, shift_px], [0, 1, 0]]),
        (gray.shape[1], gray.shape[0]),
        borderMode=cv2.BORDER_REFLECT,
    )
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    flow = tvl1.calc(gray[top:bottom, left:right], shifted[top:bottom, left:right], None)
    interior = flow[8:-8, 8:-8]  # borders see reflected pixels, not the shift
    dev = resolve_device(device)
    conv = torch.nn.Conv2d(1, 4, 3).to(dev)
    out = conv(torch.zeros(1, 1, 42, 42, device=dev))
    return {
        "faces found": len(faces),
        "face box (w x h)": f"{box.width()} x {box.height()}",
        "landmarks": shape.num_parts,
        "true shift (px)": shift_px,
        "TV-L1 mean u (px)": round(float(interior[..., 0].mean()), 2) + 0.0,
        "TV-L1 mean v (px)": round(float(interior[..., 1].mean()), 2) + 0.0,
        "CNN forward on": dev.type,
        "CNN output shape": tuple(out.shape),
    }
