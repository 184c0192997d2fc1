"""Grad-CAM on SOFTNet's streams, t-SNE and the timeline figure (smoke-level checks)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch

from melib.models.softnet import SOFTNet
from melib.visualization import image_grid
from melib.visualization.cams import ScalarTarget, layer_cams, plot_cams
from melib.visualization.embedding import plot_embedding, subsample, tsne
from melib.visualization.training import plot_loss_curves, plot_score_timeline


def test_grad_cam_per_stream_for_a_regressor():
    torch.manual_seed(0)
    model = SOFTNet()
    x = torch.rand(3, 3, 42, 42)
    x[:, :, 21:, 10:30] += 2.0  # strong "mouth" motion
    cams = layer_cams(model, x, {f"stream {i}": s[0] for i, s in enumerate(model.streams)})
    assert set(cams) == {"stream 0", "stream 1", "stream 2"}
    for cam in cams.values():
        assert cam.shape == (3, 42, 42) and cam.min() >= 0 and cam.max() <= 1 + 1e-6
    assert model.training  # restored
    fig = plot_cams(x.permute(0, 2, 3, 1).numpy(), cams, row_titles=["a", "b", "c"])
    assert len(fig.axes) == 12
    assert float(ScalarTarget(-1)(torch.tensor([2.0]))) == -2.0


def test_tsne_is_deterministic_and_subsampling_keeps_rare_labels():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(300, int), np.ones(20, int)]
    idx = subsample(labels, 100, seed=0)
    assert len(idx) <= 100 and labels[idx].sum() == 20
    feats = rng.normal(size=(60, 400)) + labels[:60, None]
    a, b = tsne(feats, seed=1), tsne(feats, seed=1)
    assert a.shape == (60, 2) and np.allclose(a, b)
    plot_embedding(a, labels[:60])


def test_figures_build():
    plot_loss_curves({"s1": {"epoch_loss": [1.0, 0.5]}, "s2": {"epoch_loss": [0.9, 0.4]}})
    scores = np.sin(np.linspace(0, 6, 200))
    plot_score_timeline(scores, scores, 0.5, truth=[(10, 30)], spotted=[(12, 28)], peaks=[20], fps=30)
    image_grid({"u": np.zeros((8, 8)), "v": np.ones((8, 8))}, share_range=True)


def test_grad_cam_reaches_a_frozen_layer():
    from melib.visualization.cams import grad_cam

    torch.manual_seed(0)
    frozen = torch.nn.Conv2d(1, 4, 3, padding=1)
    model = torch.nn.Sequential(frozen, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 1))
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)  # transfer learning freezes early stages
    maps = grad_cam(model, np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32), frozen)
    assert maps.shape == (2, 8, 8) and np.isfinite(maps).all()
