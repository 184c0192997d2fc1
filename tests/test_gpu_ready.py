"""GPU readiness: the CUDA paths of melib.training (run only where CUDA is present) and
the pieces of ``benchmarks/gpu_check.py`` that need no GPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from melib.runtime import resolve_device
from melib.training import TrainConfig, fit, predict

ROOT = Path(__file__).resolve().parent.parent
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.body(x).flatten(1)).squeeze(1)


def _images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, 16, 16)).astype(np.float32)
    return x, x.mean(axis=(1, 2, 3)).astype(np.float32)


# ------------------------------------------------------------------------------ on CUDA


@cuda
@pytest.mark.parametrize("amp", ["auto", "bf16", "fp16", None])
def test_cuda_training_with_each_precision_and_channels_last(amp):
    torch.manual_seed(0)
    model = Conv()
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, optimizer="adam", device="cuda", amp=amp)
    cfg = TrainConfig(**{**cfg.__dict__, "channels_last": True, "num_workers": "auto"})
    hist = fit(model, _images(), cfg, progress=False)
    assert np.isfinite(hist["epoch_loss"]).all() and hist["epoch_loss"][-1] < hist["epoch_loss"][0]
    assert next(model.parameters()).dtype == torch.float32
    out = predict(model, _images()[0], device="cuda", amp=amp)
    assert out.dtype == np.float32 and out.shape == (64,)


@cuda
def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu_and_back(tmp_path):
    torch.manual_seed(1)
    base = TrainConfig(epochs=1, batch_size=16, lr=0.01, optimizer="adam", amp=None)
    ckpt = tmp_path / "partial.pt"
    model = Conv()
    fit(model, _images(), TrainConfig(**{**base.__dict__, "device": "cuda"}), progress=False, checkpoint=ckpt)
    on_cpu = Conv()
    two = TrainConfig(**{**base.__dict__, "epochs": 2, "device": "cpu"})
    hist = fit(on_cpu, _images(), two, progress=False, checkpoint=ckpt)
    assert len(hist["epoch_loss"]) == 2 and next(on_cpu.parameters()).device.type == "cpu"
    back = Conv()
    three = TrainConfig(**{**base.__dict__, "epochs": 3, "device": "cuda"})
    hist = fit(back, _images(), three, progress=False, checkpoint=ckpt)
    assert len(hist["epoch_loss"]) == 3 and next(back.parameters()).device.type == "cuda"


@cuda
def test_every_cuda_index_present_resolves_and_the_next_is_refused():
    n = torch.cuda.device_count()
    assert resolve_device(f"cuda:{n - 1}") == torch.device(f"cuda:{n - 1}")
    with pytest.raises(ValueError, match=f"has {n} CUDA device"):
        resolve_device(f"cuda:{n}")


# ------------------------------------------------------------------- gpu_check, anywhere


def test_every_paper_has_a_full_plan_with_real_counts():
    check = _gpu_check()
    for paper in check.PAPERS:
        parts = check.PLANS[paper]("cpu")
        assert parts and parts[0].train_samples > 1e5, paper
        for part in parts:
            assert part.train_samples > 0 and part.infer_samples > 0 and part.counts
            assert part.same_cost_as in (None, *(p.name for p in parts))


def test_the_cpu_table_labels_every_figure_and_names_no_path():
    check = _gpu_check()
    row = {
        "part": "SOFTNet",
        "input": "3x42x42",
        "paper_batch": 12,
        "batch": 4,
        "train_samples": 3e8,
        "infer_samples": 2e6,
        "counts": "every window",
        "hours": 12.5,
        "params": 314817,
        "train_rate": 900.0,
        "infer_rate": 5000.0,
        "peak_gib": None,
        "amp": "float32",
    }
    meta = {"device": "Some CPU, 2 cores", "device_type": "cpu", "torch": "2.x", "melib": "0.1.0"}
    text = check.markdown(
        [{"paper": "softnet", "rows": [row], "peak_rss_gib": 1.2}],
        {**meta, "date": "2026-01-01", "steps": 2, "cpu_batch": 4, "amp": "float32", "load": 0.5},
    )
    assert "Every figure below is a CPU figure" in text and "n/a (CPU)" in text
    assert "load average 0.5 when the run started" in text
    assert "(CPU-hours)" in text and "training samples/s (CPU)" in text and "GPU-hours" not in text
    assert str(ROOT) not in text and "/work" not in text
