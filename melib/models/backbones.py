"""Table 3's comparison backbones, adapted to SOFTNet's 42x42x3 input and one score.

The paper's parameter counts (MobileNetV2 2.2631 M, ResNet-50 23.5960 M, VGG-16
14.7152 M) are Keras ``include_top=False`` bodies followed by Flatten and a one-unit
Dense layer on the final feature map, and Keras counts BatchNorm's moving mean and
variance as (non-trainable) parameters. ``head="flatten"`` reproduces that head;
:func:`keras_style_count` adds the BatchNorm running statistics so that the counts
can be compared like for like. The bodies are torchvision's (``weights=None``: the
comparison trains from scratch, as every model here does).
"""

from __future__ import annotations

import time
from typing import Literal

import torch
from torch import nn

__all__ = ["BACKBONES", "PAPER_TABLE3", "build_backbone", "keras_style_count", "inference_time"]

BACKBONES = ("mobilenet_v2", "resnet18", "resnet50", "vgg16")

# The paper's Table 3 (CAS(ME)² macro-expressions): F1, AP@[.5:.95], inference time in
# seconds (for their whole test set on their GPU), parameters in millions.
PAPER_TABLE3 = {
    "softnet": (0.2410, 0.0168, 2.7826, 0.3148),
    "mobilenet_v2": (0.2152, 0.0160, 10.1651, 2.2631),
    "resnet18": (0.2147, 0.0150, 9.3175, 11.2877),
    "resnet50": (0.1155, 0.0039, 22.2178, 23.5960),
    "vgg16": (0.1724, 0.0095, 8.2692, 14.7152),
}


class _Regressor(nn.Module):
    def __init__(self, body: nn.Module, channels: int, side: int, head: str):
        super().__init__()
        self.body = body
        if head == "flatten":
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, 1))
        elif head == "gap":
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1))
        else:
            raise ValueError(f"head={head!r}: use 'flatten' (Keras-like, the paper's) or 'gap'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


def _body(name: str) -> nn.Module:
    import torchvision.models as tvm

    if name == "mobilenet_v2":
        return tvm.mobilenet_v2(weights=None).features
    if name in ("resnet18", "resnet50"):
        net = getattr(tvm, name)(weights=None)
        return nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
        )
    if name == "vgg16":
        # Only the convolutional part: tvm.vgg16() would first build (and initialise) its
        # 124 M-parameter classifier just for us to throw it away.
        from torchvision.models.vgg import cfgs, make_layers

        return make_layers(cfgs["D"], batch_norm=False)
    raise ValueError(f"backbone {name!r} is not one of {', '.join(BACKBONES)}")


def build_backbone(name: str, input_size: int = 42, head: Literal["flatten", "gap"] = "flatten") -> nn.Module:
    """A torchvision body with a one-output regression head for (N, 3, size, size)."""
    body = _body(name)
    with torch.no_grad():
        shape = body.eval()(torch.zeros(1, 3, input_size, input_size)).shape
    return _Regressor(body, shape[1], shape[2], head)


def keras_style_count(model: nn.Module) -> int:
    """Parameters plus BatchNorm running mean/variance, as Keras's ``count_params``."""
    extra = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    )
    return sum(p.numel() for p in model.parameters()) + extra


@torch.no_grad()
def inference_time(
    model: nn.Module,
    n_frames: int = 1000,
    batch_size: int = 256,
    input_size: int = 42,
    device: str | torch.device = "cpu",
    repeats: int = 1,
) -> float:
    """Seconds to score ``n_frames`` random inputs (best of ``repeats``), after a warm-up."""
    model = model.to(device).eval()
    x = torch.rand(batch_size, 3, input_size, input_size, device=device)
    model(x[:2])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        done = 0
        while done < n_frames:
            n = min(batch_size, n_frames - done)
            model(x[:n])
            done += n
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best
