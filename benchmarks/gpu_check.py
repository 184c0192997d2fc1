"""GPU check: each paper's ``full`` model, trained for a few steps on synthetic inputs of
the real size, and an estimate of the whole ``full`` reproduction on the real datasets.

For each paper (SOFTNet, LBCNN, DynGeoNet, CropNet, Bai) the script builds the model
the ``full`` profile builds (through the paper package's ``configure(profile="full")``),
feeds it random inputs of the real shape through :func:`melib.training.fit` (the loop
the notebooks use: the same optimiser, loss, batch size, mixed precision, pinned-memory
loader) and :func:`melib.training.predict`, and prints per paper:

* training and inference samples per second (after a warm-up step);
* peak GPU memory while training (on the CPU: the peak resident set of the process);
* the largest training batch that fits (binary search on CUDA; "n/a (CPU)" on the CPU);
* an estimate of the whole ``full`` reproduction on the real datasets, in GPU-hours:
  the training and inference sample counts of every run the notebook makes (main runs,
  ablations, cross-dataset setups; :data:`DATASETS` and each paper's ``_plan``) divided
  by the measured rates.

The estimate covers the networks only: feature extraction (TV-L1 flow, dlib landmarks,
dynamic images, residual sums) runs on the CPU and is not counted. It assumes the data
loader keeps up with the GPU.

Each paper runs in a fresh process (clean memory figures). Without a GPU everything runs
on the CPU with a small batch and a few steps, and every figure is labelled CPU.

    python benchmarks/gpu_check.py                    # every paper, writes book/generated/gpu_estimates.md
    python benchmarks/gpu_check.py --papers softnet,bai --steps 20 --no-write
    python benchmarks/gpu_check.py --device cuda:1
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("book") / "generated" / "gpu_estimates.md"
BUDGET_S = 3.0  # timed training per model, about (fast models run more steps)
MAX_STEPS = 200
PAPERS = ("softnet", "lbcnn", "dyngeonet", "cropnet", "bai")
LABELS = {
    "softnet": "SOFTNet",
    "lbcnn": "LBCNN",
    "dyngeonet": "DynGeoNet",
    "cropnet": "CropNet",
    "bai": "Bai",
}

# ----------------------------------------------------------------------- the real datasets
#
# Counts of the real releases (the project's dataset notes; no data is read here):
# CAS(ME)² "CAS(ME)^2code_final" release, SAMM Long Videos V2 release, SMIC-E-Long
# (SMIC-HS-E, as DynGeoNet counts it), CASME II "CASME2-coding-20140508", SAMM
# "SAMM_Micro_FACS_Codes_v2", SMIC-HS, and the MEGC2019 composite list.
# ``frames`` of the long videos: SAMM-LV's 434k is its total (the workbook's last
# annotated offsets alone add up to 432,746); CAS(ME)² and SMIC-E-Long are the video
# counts times the mean lengths melib's synthetic ``full`` corpus uses (2,600 and 400
# frames): approximate.
DATASETS = {
    "casme_sq": {"subjects": 22, "videos": 98, "fps": 30, "frames": 98 * 2600, "micro": 57, "macro": 300},
    "samm_lv": {"subjects": 32, "videos": 147, "fps": 200, "frames": 434_000, "micro": 159, "macro": 333},
    "smic_e_long": {"subjects": 16, "videos": 162, "fps": 100, "frames": 162 * 400, "micro": 166},
    "casme2": {"subjects": 26, "clips": 255, "clips_5class": 255 - 9},  # fear (2) and sadness (7) dropped
    "samm": {"subjects": 32, "clips": 159},
    "smic_hs": {"subjects": 16, "clips": 164},
    "megc2019": {"subjects": 68, "clips": 442},
}
# SOFTNet's k per (dataset, type) (the paper's values) and DynGeoNet's window length L.
SOFTNET_K = {
    ("casme_sq", "micro"): 6,
    ("casme_sq", "macro"): 18,
    ("samm_lv", "micro"): 37,
    ("samm_lv", "macro"): 174,
}
DYNGEONET_L = {"casme_sq": 11, "samm_lv": 65, "smic_e_long": 35}


@dataclasses.dataclass
class Part:
    """One network the notebook trains: how to build it and how much work it gets."""

    name: str
    build: object  # () -> nn.Module
    input_shape: tuple
    loss: str  # mse | bce | ce
    classes: int
    train: object  # melib.training.TrainConfig (optimiser, lr, batch size)
    train_samples: float  # forward + backward sample passes in the whole full run
    infer_samples: float  # forward-only sample passes
    counts: str  # how the two counts were made, in words
    conv: bool = True
    same_cost_as: str | None = None  # reuse another part's measured rates


# ----------------------------------------------------------------------------- the plans


def _loso_passes(per_subject_total: float, subjects: int) -> float:
    """Samples seen by one epoch of every LOSO fold: each fold trains on all the other
    subjects, so the folds together see the data (subjects - 1) times."""
    return per_subject_total * (subjects - 1)


def _softnet(device: str) -> list[Part]:
    from melib.models.backbones import BACKBONES, build_backbone
    from melib.models.softnet import SOFTNet
    from melib.pipelines import softnet

    setup = softnet.configure(profile="full", device=device)
    prof, epochs = setup.limits, setup.train.epochs
    main_train = main_infer = 0.0
    ablation = None
    for dataset in setup.datasets:
        d = DATASETS[dataset]
        for kind in setup.expressions:
            k = SOFTNET_K[(dataset, kind)]
            windows = d["frames"] - d["videos"] * k  # [i, i+k) for every i of every video
            positives = d[kind] * (3 * k - 1)  # windows touching an expression (mean length 2k - 1)
            copies = 3 if (kind == "micro" and setup.augment) else 0  # flip, blur, noise
            per_pass = setup.negative_keep * (windows - positives) + positives * (1 + copies)
            main_train += _loso_passes(per_pass, d["subjects"]) * epochs
            main_infer += windows
            if dataset == prof.ablation_dataset and kind == "macro":
                ablation = (per_pass, d["subjects"], windows)
    per_pass, subjects, windows = ablation
    # pseudo-labels (3 functions, unit step shared with the main run) + k (3 factors, 1.0 shared)
    extra_runs = (len(softnet.PSEUDO_LABELS) - 1) + (len(prof.k_factors) - 1)
    abl_train = extra_runs * _loso_passes(per_pass, subjects) * epochs
    parts = [
        Part(
            "SOFTNet",
            SOFTNet,
            (3, 42, 42),
            "mse",
            1,
            setup.train,
            main_train + abl_train,
            main_infer + extra_runs * windows,
            f"{len(setup.datasets)} datasets x {len(setup.expressions)} types, LOSO, {epochs} epochs, "
            f"half the negatives, micro positives x4; + {extra_runs} ablation runs (CAS(ME)² macro)",
            conv=False,
        )
    ]
    for name in prof.backbone_train:
        parts.append(
            Part(
                f"Table 3 {name}",
                lambda name=name: build_backbone(name),
                (3, 42, 42),
                "mse",
                1,
                setup.train,
                _loso_passes(per_pass, subjects) * epochs,
                windows,
                "CAS(ME)² macro, LOSO",
            )
        )
    assert set(prof.backbone_train) <= set(BACKBONES)
    return parts


def _lbcnn(device: str) -> list[Part]:
    from melib.pipelines import lbcnn

    setup = lbcnn.configure(profile="full", device=device)
    train = infer = 0.0
    for dataset in setup.datasets:
        d = DATASETS[dataset]
        frames = d["frames"] / setup.strides[dataset]
        # oversampling: every class drawn to the largest, the neutral frames (about all)
        train += _loso_passes(3 * frames, d["subjects"]) * setup.train.epochs
        infer += frames
    s = setup.input_size
    return [
        Part(
            "LBCNN",
            setup.make_model,
            (6, s, s),
            setup.train.loss,
            3,
            setup.train,
            train,
            infer,
            f"{len(setup.datasets)} datasets, LOSO, every frame, 3 classes oversampled to the "
            f"neutral frames, {setup.train.epochs} epochs",
        )
    ]


def _dyngeonet(device: str) -> list[Part]:
    from melib.features.geometry import GEO_DIM
    from melib.pipelines import dyngeonet
    from melib.pipelines.dyngeonet.run import model_factory

    setup = dyngeonet.configure(profile="full", device=device)
    epochs, s = setup.train.epochs, setup.input_size
    windows = {
        name: DATASETS[name]["frames"] - DATASETS[name]["videos"] * (DYNGEONET_L[name] - 1)
        for name in setup.datasets
    }
    loso = sum(_loso_passes(windows[n], DATASETS[n]["subjects"]) for n in setup.datasets) * epochs
    branches = (setup.branch,) + setup.ablations
    cnn_branches = [b for b in branches if b != "geo"]
    from melib.evaluation.protocols import CROSS_DATASET_SETUPS

    cross_train = sum(sum(windows[n] for n in CROSS_DATASET_SETUPS[c]["train"]) for c in setup.cross_setups)
    cross_infer = sum(windows[CROSS_DATASET_SETUPS[c]["test"]] for c in setup.cross_setups)
    packed = (3 * s * s + GEO_DIM,)
    return [
        Part(
            "DynGeoNet",
            model_factory(setup, setup.branch),
            packed,
            "bce",
            1,
            setup.train,
            loso * len(cnn_branches) + cross_train * epochs,
            sum(windows.values()) * len(cnn_branches) + cross_infer,
            f"{len(setup.datasets)} datasets, every window, LOSO, {epochs} epochs, branches "
            f"{', '.join(cnn_branches)} (GeoNet not counted); cross setups {', '.join(setup.cross_setups)}",
        ),
        Part(
            "VGG16 frames (Table 2)",
            model_factory(setup, "frames"),
            (3, s, s),
            "bce",
            1,
            setup.train,
            cross_train * epochs,
            cross_infer,
            "cross setups, the frames baseline",
            same_cost_as="DynGeoNet",
        ),
    ]


def _cropnet(device: str) -> list[Part]:
    from melib.models.cropnet import CropNet
    from melib.pipelines import cropnet

    setup = cropnet.configure(profile="full", device=device)
    prof = setup.limits
    casme2 = _loso_passes(DATASETS["casme2"]["clips_5class"], DATASETS["casme2"]["subjects"]) * setup.epochs
    megc = (
        _loso_passes(DATASETS["megc2019"]["clips"], DATASETS["megc2019"]["subjects"]) * setup.composite_epochs
    )
    table4 = len(cropnet.METHODS)  # ARS, RRS, Farneback, TV-L1 with CGPO + ARS without; ARS reused
    sweep = len(prof.nkey_sweep) - 1  # N_key = 5 reused from the main run
    s = setup.input_size
    return [
        Part(
            "CropNet",
            lambda: CropNet(setup.model_config(len(cropnet.CLASSES["casme2_5class"]))),
            (3, s, s),
            "ce",
            5,
            setup.train_config(),
            casme2 * (1 + table4) + megc * (1 + sweep),
            (DATASETS["casme2"]["clips_5class"] * (1 + table4) + DATASETS["megc2019"]["clips"] * (1 + sweep)),
            f"CASME II 5 classes x {1 + table4} runs (main, Table 4), composite x {1 + sweep} "
            f"(main, N_key sweep), LOSO, {setup.epochs} epochs",
        )
    ]


def _bai(device: str) -> list[Part]:
    from melib.models.bai import FrameClassifier
    from melib.pipelines import bai

    setup = bai.configure(profile="full", device=device)
    prof = setup.limits
    d = DATASETS[setup.dataset]
    frames = d["clips"] * (setup.frames_per_clip or setup.n_frames)
    runs = len(prof.experiments) + 1  # experiments I, II, III + the EVM ablation
    encode = d["subjects"] * d["clips"] * max(prof.n_sweep) * 2  # every fold encodes every clip, main + EVM
    s = setup.input_size
    return [
        Part(
            "Bai frame CNN (ResNet-50)",
            # experiment II with l_s = conv1 trains every stage: the costliest choice
            lambda: FrameClassifier("II", "conv1", 3, fc=setup.fc),
            (3, s, s),
            "ce",
            3,
            setup.frame_train_config(),
            _loso_passes(frames, d["subjects"]) * setup.epochs * runs,
            encode,
            f"SMIC-HS, {setup.n_frames} frames per clip, LOSO, {setup.epochs} epochs, "
            f"{runs} runs (experiments, EVM); encoding up to N = {max(prof.n_sweep)}; "
            "decoders on cached features not counted",
        )
    ]


PLANS = {"softnet": _softnet, "lbcnn": _lbcnn, "dyngeonet": _dyngeonet, "cropnet": _cropnet, "bai": _bai}


# --------------------------------------------------------------------------- measuring


class _Synthetic(Dataset):
    """``n`` random samples of ``shape`` drawn from a small pool (no host-memory blow-up)."""

    def __init__(self, n: int, shape: tuple, loss: str, classes: int, pool: int = 8):
        g = torch.Generator().manual_seed(0)
        self.n = n
        self.x = torch.rand((pool, *shape), generator=g) * (255.0 if shape[0] == 6 else 1.0)
        if loss == "ce":
            self.y = torch.randint(0, classes, (pool,), generator=g)
        else:
            self.y = torch.rand((pool,), generator=g).round()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return self.x[i % len(self.x)], self.y[i % len(self.y)]


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fits(part: Part, batch: int, device) -> bool:
    """One training step at ``batch`` on ``device`` (inputs made there): True if it fits."""
    from melib.training import _autocast, _loss_fn, _optimizer, resolve_amp

    model = opt = x = y = None
    try:
        model = part.build().to(device)
        if part.conv:
            model.to(memory_format=torch.channels_last)
        opt = _optimizer(model, part.train)
        x = torch.rand((batch, *part.input_shape), device=device)
        y = (
            torch.randint(0, part.classes, (batch,), device=device)
            if part.loss == "ce"
            else torch.rand((batch,), device=device)
        )
        with _autocast(resolve_amp("auto", device), device):
            out = model(x)
        out = out.float()
        loss = _loss_fn(part.loss)(out, y if part.loss == "ce" else y.reshape(out.shape))
        loss.backward()
        opt.step()
        _sync(device)
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        del model, opt, x, y
        torch.cuda.empty_cache()


def largest_batch(part: Part, device, cap: int = 8192) -> tuple[int, bool]:
    """The largest batch whose training step fits (doubling, then bisection), and whether
    the search stopped at ``cap`` without running out of memory."""
    low, high = 0, part.train.batch_size
    while high <= cap and _fits(part, high, device):
        low, high = high, high * 2
    if high > cap:
        return low, True
    while high - low > max(1, low // 16):  # within about 6 %
        mid = (low + high) // 2
        if _fits(part, mid, device):
            low = mid
        else:
            high = mid
    return low, False


def measure(part: Part, device, steps: int, batch: int) -> dict:
    """Training and inference rates of ``part`` at ``batch`` (after a warm-up step)."""
    from melib.training import fit, predict, resolve_amp

    torch.manual_seed(0)
    model = part.build()
    params = sum(p.numel() for p in model.parameters())
    cfg = dataclasses.replace(
        part.train,
        batch_size=batch,
        device=str(device),
        max_steps=None,
        epochs=1,
        num_workers="auto",
        threads=None,
        channels_last=part.conv,
        shuffle=False,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    fit(model, _Synthetic(batch, part.input_shape, part.loss, part.classes), cfg, progress=False)  # warm-up
    _sync(device)
    # at least ``steps`` timed steps, more for a fast model: about BUDGET_S seconds
    steps = int(min(MAX_STEPS, max(steps, BUDGET_S / max(time.perf_counter() - start, 1e-3))))
    data = _Synthetic(batch * steps, part.input_shape, part.loss, part.classes)
    start = time.perf_counter()
    fit(model, data, cfg, progress=False)
    _sync(device)
    train_rate = batch * steps / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    x = torch.stack([data[i][0] for i in range(min(len(data), 8))])
    x = x.repeat((math.ceil(batch * steps / len(x)),) + (1,) * (x.ndim - 1))[: batch * steps]
    infer_batch = batch * 2
    predict(model, x[:infer_batch], batch_size=infer_batch, device=str(device), threads=None)  # warm-up
    _sync(device)
    start = time.perf_counter()
    predict(model, x, batch_size=infer_batch, device=str(device), threads=None)
    _sync(device)
    infer_rate = len(x) / (time.perf_counter() - start)
    return {
        "params": params,
        "train_rate": train_rate,
        "infer_rate": infer_rate,
        "peak_gib": peak,
        "amp": resolve_amp("auto", device) or "float32",
        "steps": steps,
    }


def worker(paper: str, device_name: str, steps: int, cpu_batch: int, probe: bool) -> dict:
    """Measure one paper in this process; return its figures (JSON-able)."""
    from melib import runtime

    device = runtime.resolve_device(device_name)
    parts = PLANS[paper](device_name)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    measured, rows = {}, []
    for part in parts:
        if part.same_cost_as is not None:
            rates = measured[part.same_cost_as]
        else:
            batch = part.train.batch_size if device.type == "cuda" else min(cpu_batch, part.train.batch_size)
            rates = {**measure(part, device, steps, batch), "batch": batch}
            if device.type == "cuda" and probe:
                rates["largest_batch"], rates["at_cap"] = largest_batch(part, device)
            measured[part.name] = rates
        hours = (part.train_samples / rates["train_rate"] + part.infer_samples / rates["infer_rate"]) / 3600
        rows.append(
            {
                "part": part.name,
                "input": "x".join(map(str, part.input_shape)),
                "paper_batch": part.train.batch_size,
                "train_samples": part.train_samples,
                "infer_samples": part.infer_samples,
                "counts": part.counts,
                "hours": hours,
                **rates,
            }
        )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"paper": paper, "rows": rows, "peak_rss_gib": peak_rss}


# ---------------------------------------------------------------------------- reporting


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _hours(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f}"


def markdown(results: list[dict], meta: dict) -> str:
    cpu = meta["device_type"] != "cuda"
    unit = "CPU" if cpu else "GPU"
    lines = [
        "<!-- written by benchmarks/gpu_check.py; do not edit by hand -->",
        "",
        f"Measured {meta['date']} on {meta['device']} ({'CPU, no GPU' if cpu else 'CUDA'}), "
        f"PyTorch {meta['torch']}, melib {meta['melib']}: at least {meta['steps']} timed training "
        f"steps per model (about {BUDGET_S:g} s) after a warm-up step, "
        "synthetic inputs of the `full` size, mixed precision "
        f"{meta['amp']}.",
        "",
    ]
    if cpu:
        lines += [
            f"**Every figure below is a CPU figure** (batch capped at {meta['cpu_batch']}, load average "
            f"{meta['load']:.1f} when the run started): it shows that the `full` models build and train, not how fast a GPU runs them. "
            "Run `python benchmarks/gpu_check.py` on a GPU for GPU figures.",
            "",
        ]
    memory = "peak RSS (CPU, process)" if cpu else "peak GPU memory"
    lines += [
        f"| Paper | `full` model | parameters | input | batch | training samples/s ({unit}) | "
        f"inference samples/s ({unit}) | {memory} | largest batch | `full` reproduction ({unit}-hours) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        first = res["rows"][0]
        total = sum(r["hours"] for r in res["rows"])
        peak = f"{res['peak_rss_gib']:.1f} GiB" if cpu else f"{first['peak_gib']:.1f} GiB"
        if cpu:
            largest = "n/a (CPU)"
        else:
            largest = f"{'>= ' if first.get('at_cap') else ''}{first.get('largest_batch', 'not probed')}"
        batch = f"{first['batch']}" + (
            "" if first["batch"] == first["paper_batch"] else f" (paper run: {first['paper_batch']})"
        )
        lines.append(
            f"| {LABELS[res['paper']]} | {first['part']} | {first['params'] / 1e6:.2f} M | "
            f"{first['input']} | "
            f"{batch} | {_rate(first['train_rate'])} | {_rate(first['infer_rate'])} | {peak} | {largest} | "
            f"{_hours(total)} |"
        )
    lines += [
        "",
        f"What each estimate counts (training = forward and backward passes of one sample; "
        f"{unit}-hours = training / training rate + inference / inference rate):",
        "",
        f"| Paper | network | training samples | inference samples | {unit}-hours | counted |",
        "|---|---|---|---|---|---|",
    ]
    for res in results:
        for r in res["rows"]:
            lines.append(
                f"| {LABELS[res['paper']]} | {r['part']} | {_count(r['train_samples'])} | "
                f"{_count(r['infer_samples'])} | {_hours(r['hours'])} | {r['counts']} |"
            )
    lines += [
        "",
        "Sample counts come from the real datasets' sizes (subjects, videos, clips, frames; "
        "CAS(ME)² and SMIC-E-Long frame totals are approximate) and the `full` profiles' epochs, "
        "folds and ablation runs. Feature extraction (TV-L1 flow, landmarks, dynamic images) "
        "runs on the CPU and is not included.",
        "",
    ]
    return "\n".join(lines)


def _device_meta(device_name: str) -> dict:
    import melib
    from melib import runtime

    device = runtime.resolve_device(device_name)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        import platform

        name = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        with open("/proc/cpuinfo") as fh:
            models = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        if models:
            name = f"{models[0]}, {os.cpu_count()} cores"
    return {
        "device": name,
        "device_type": device.type,
        "torch": torch.__version__,
        "melib": melib.__version__,
        "date": datetime.date.today().isoformat(),
        "load": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--papers", default=",".join(PAPERS), help="comma-separated subset")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 CUDA, 2 CPU)")
    parser.add_argument("--cpu-batch", type=int, default=4, help="batch cap on the CPU (default 4)")
    parser.add_argument("--no-probe", action="store_true", help="skip the largest-batch search")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="markdown table (relative to the project)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    papers = [p.strip() for p in args.papers.split(",") if p.strip()]
    unknown = [p for p in papers if p not in PAPERS]
    if unknown:
        parser.error(f"--papers: {', '.join(unknown)} unknown; use {', '.join(PAPERS)}")
    meta = _device_meta(args.device)
    cuda = meta["device_type"] == "cuda"
    steps = args.steps or (20 if cuda else 2)
    if args.worker:
        print(json.dumps(worker(args.worker, args.device, steps, args.cpu_batch, not args.no_probe)))
        return 0
    results = []
    for paper in papers:
        print(f"{LABELS[paper]}: measuring on {meta['device']} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        cmd = [sys.executable, __file__, "--worker", paper, "--device", args.device, "--steps", str(steps)]
        cmd += ["--cpu-batch", str(args.cpu_batch)] + (["--no-probe"] if args.no_probe else [])
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            print(f"{LABELS[paper]}: the measurement failed (above)", file=sys.stderr)
            return 1
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{LABELS[paper]}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    meta.update(steps=steps, cpu_batch=args.cpu_batch, amp=results[0]["rows"][0]["amp"] if results else "-")
    text = markdown(results, meta)
    print(text)
    if not args.no_write:
        out = ROOT / args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"written: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
