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
from melib.visualization.image_rows import plot_image_rows
from melib.visualization.panels import plot_loss_grid, plot_loss_panels, plot_tsne_panels
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


def test_image_rows_and_loss_panels():
    maps = {"frame": np.zeros((8, 8)), "u": np.linspace(-1, 2, 64).reshape(8, 8), "input": np.ones((4, 4))}
    fig = plot_image_rows(
        {"micro": maps, "macro": maps},
        ["frame", "u", "input"],
        cmaps={"frame": "gray"},
        signed=("u",),
        points={"micro": np.array([[1, 2], [3, 4]])},
        points_on="frame",
        suptitle="two rows",
    )
    assert len(fig.axes) == 6 and fig.axes[1].images[0].get_clim() == (-2.0, 2.0)
    assert fig.axes[0].get_title() == "frame" and fig.axes[3].get_ylabel() == "macro"
    history = {"epoch_loss": [1.0, 0.5], "batch_loss": list(np.linspace(1, 0, 40))}
    fig = plot_loss_panels(
        {"CAS(ME)² micro": {"s1": history}, "CAS(ME)² macro": {"s1": history, "s2": history}},
        key="batch_loss",
        points_per_epoch=10,
        title="{name}, {epochs} epoch(s)",
    )
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["CAS(ME)² micro, 2 epoch(s)", "CAS(ME)² macro, 2 epoch(s)"]
    assert not np.allclose(fig.axes[0].lines[0].get_ydata(), history["batch_loss"])  # smoothed
    fig = plot_loss_grid({("CAS(ME)²", "DynNet"): {"s1": history}, ("SAMM-LV", "GeoNet"): {"s1": history}})
    assert [ax.get_visible() for ax in fig.axes] == [True, False, False, True]


def test_tsne_panels_skip_tiny_sets_and_keep_present_labels():
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(30, 4)), np.array(["a", "b", "c"] * 10)
    fig = plot_tsne_panels(
        {"big": (x, labels), "tiny": (x[:3], labels[:3])},
        min_points=5,
        unit="clips",
        title="{name} ({n} {unit})",
        panel=(3.0, 3.0),
    )
    assert fig.axes[0].get_title() == "big (30 clips)"
    assert "too few" in fig.axes[1].texts[0].get_text()


def test_grad_cam_reaches_a_frozen_layer():
    from melib.visualization.cams import grad_cam

    torch.manual_seed(0)
    frozen = torch.nn.Conv2d(1, 4, 3, padding=1)
    model = torch.nn.Sequential(
        frozen, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 1)
    )
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)  # transfer learning freezes early stages
    maps = grad_cam(model, np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32), frozen)
    assert maps.shape == (2, 8, 8) and np.isfinite(maps).all()
