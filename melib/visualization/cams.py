"""Grad-CAM for any PyTorch model with ``pytorch-grad-cam``, including regressors.

``pytorch-grad-cam`` explains one output per image through a "target": a callable
mapping the model's output for that image to the scalar to differentiate. For a
classifier that is a class logit; for a one-output regressor (SOFTNet's spotting
score) :class:`ScalarTarget` returns the output itself, so the map shows what raises
the score (``sign=-1`` shows what lowers it).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["ScalarTarget", "grad_cam", "layer_cams", "plot_cams"]


class ScalarTarget:
    def __init__(self, sign: float = 1.0):
        self.sign = sign

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return self.sign * output.reshape(-1)[0]


def grad_cam(
    model: torch.nn.Module, inputs, layer: torch.nn.Module, targets=None, method: str = "gradcam"
) -> np.ndarray:
    """(N, H, W) maps in [0, 1] at the input's resolution for ``layer``.

    ``targets``: one target per image, default :class:`ScalarTarget` (regression).
    ``method``: ``gradcam`` or ``gradcam++``.
    """
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

    x = inputs if isinstance(inputs, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(inputs))
    # The input requires grad so that a frozen layer (requires_grad=False on its weights,
    # as in transfer learning) still receives gradients for the CAM.
    x = x.float().detach().requires_grad_(True)
    targets = targets or [ScalarTarget() for _ in range(len(x))]
    cls = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}[method]
    was_training = model.training
    model.eval()
    try:
        with cls(model=model, target_layers=[layer]) as cam:
            return np.asarray(cam(input_tensor=x, targets=targets), dtype=np.float32)
    finally:
        model.train(was_training)


def layer_cams(model: torch.nn.Module, inputs, layers: dict, **kwargs) -> dict:
    """``{name: grad_cam(model, inputs, layer)}`` for several layers (e.g. each stream)."""
    return {name: grad_cam(model, inputs, layer, **kwargs) for name, layer in layers.items()}


def plot_cams(
    images: np.ndarray,
    cams: dict,
    row_titles=None,
    alpha: float = 0.5,
    size: float = 2.0,
    image_title: str = "input",
):
    """Rows = images, columns = the image then one overlay per CAM.

    ``images``: (N, H, W) or (N, H, W, C) displayed in gray (the mean over channels
    when C > 1; pass the channel that a stream saw to show exactly its input).
    ``cams``: ``{column title: (N, H, W)}``; a 3-D ``images`` entry per column can be
    given as ``{title: (cam, background)}`` to overlay each CAM on its own channel.
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images, dtype=np.float32)
    gray = images.mean(axis=-1) if images.ndim == 4 else images
    n = len(gray)
    cols = [image_title] + list(cams)
    fig, axes = plt.subplots(n, len(cols), figsize=(size * len(cols), size * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(gray[i], cmap="gray")
        for j, name in enumerate(cams, start=1):
            entry = cams[name]
            cam, back = entry if isinstance(entry, tuple) else (entry, gray)
            axes[i, j].imshow(back[i], cmap="gray")
            axes[i, j].imshow(cam[i], cmap="jet", alpha=alpha, vmin=0, vmax=1)
        if row_titles is not None:
            axes[i, 0].set_ylabel(str(row_titles[i]), fontsize=8)
    for j, name in enumerate(cols):
        axes[0, j].set_title(str(name), fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
