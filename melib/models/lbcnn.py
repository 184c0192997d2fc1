"""LBCNN: a local bilinear CNN over the global face and the local regions (Pan, Xie &
Wang, MEGC 2020), classifying one frame as neutral, micro or macro.

Input: one (N, 6, S, S) tensor of raw 0..255 values. Channels 0-2 are the RGB face crop
(the global branch), channels 3-5 the RGB mosaic of the four regions of interest (left
eyebrow, right eyebrow / nose, mouth; the local branch); see
:mod:`melib.features.lbcnn`. A single tensor keeps the generic training loop, batched
prediction and Grad-CAM unchanged.

Each branch is a bilinear CNN (Lin et al., ICCV 2015): a convolutional trunk gives a
(C, H, W) map; the outer product of the feature vectors with themselves (or, with
``streams=2``, with those of a second trunk) is averaged over the H*W locations, then
signed square root and L2 normalisation. The two branch vectors are concatenated (the
paper's fusion of global and local features) and classified.

Trunks
------
``alexnet_like`` (default, the paper's): "a shallower ... AlexNet ... three convolutional
layers and two downsampling layers and two fully connected layers". Our reading: the
first three AlexNet convolutions (11x11/4, 5x5, 3x3, each with ReLU) with a 3x3/2
max-pool after the first two; the conv3 map is what the bilinear pooling sees (Lin et
al. drop the fully connected layers to keep a spatial map). The paper's two fully
connected layers become the head after fusion: ``fc1`` (``hidden`` units, ReLU, dropout)
and ``fc2`` to the 3 classes. ``hidden=0`` gives the single linear classifier of Lin et
al. and of the authors' code. Below 160 px the first convolution uses stride 2 instead
of 4, so that small CPU inputs still leave a conv3 map of at least 5x5. By default a
BatchNorm follows each convolution (``batch_norm``; our addition, see
:class:`AlexNetLikeTrunk`).

``resnet18`` (the authors' code): torchvision's ResNet-18 up to ``layer4`` (512 maps),
from scratch unless ``weights`` names a local state-dict file (nothing is downloaded).
The code divides the outer product by 28²; for its 28x28 map that is the mean over
locations, which is what we compute for any map size.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "TRUNKS",
    "CLASS_NAMES",
    "bilinear_pool",
    "signed_sqrt",
    "AlexNetLikeTrunk",
    "resnet18_trunk",
    "BilinearBranch",
    "LBCNN",
    "count_parameters",
]

TRUNKS = ("alexnet_like", "resnet18")
CLASS_NAMES = ("neutral", "micro", "macro")
# ImageNet statistics: harmless from scratch, and needed if ImageNet weights are loaded.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def bilinear_pool(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """(N, Ca, H, W) x (N, Cb, H, W) -> (N, Ca*Cb): the outer product of the feature
    vectors at each location, averaged over the H*W locations (``b=None``: ``b = a``)."""
    b = a if b is None else b
    if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
        raise ValueError(
            f"bilinear_pool: maps must share batch and spatial size, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    n, ca, h, w = a.shape
    x = a.reshape(n, ca, h * w)
    y = b.reshape(n, b.shape[1], h * w)
    return (torch.bmm(x, y.transpose(1, 2)) / (h * w)).reshape(n, -1)


def signed_sqrt(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """sign(x) * sqrt(|x|). Clamping |x| at ``eps`` bounds the gradient near 0, where
    the exact derivative is infinite (ReLU maps give many exact zeros)."""
    return torch.sign(x) * torch.sqrt(torch.clamp(x.abs(), min=eps))


class AlexNetLikeTrunk(nn.Module):
    """conv 11x11 -> pool -> conv 5x5 -> pool -> conv 3x3, ReLU after each conv.

    ``batch_norm`` puts a BatchNorm after each convolution (not in the paper). From
    scratch, the plain trunk's ReLU maps are dense and alike for every face, so the
    bilinear vectors of all frames point almost the same way and training stayed at
    chance level in our CPU runs; normalised, sparser maps let it learn.
    """

    def __init__(
        self, channels: tuple[int, int, int] = (64, 192, 256), input_size: int = 224, batch_norm: bool = True
    ):
        super().__init__()
        c1, c2, c3 = channels
        stride = 4 if input_size >= 160 else 2

        def block(cin, cout, kernel, **kw):
            conv = nn.Conv2d(cin, cout, kernel, **kw)
            # No in-place ReLU: Grad-CAM keeps the output that the ReLU would overwrite.
            return [conv, nn.BatchNorm2d(cout), nn.ReLU()] if batch_norm else [conv, nn.ReLU()]

        layers = (
            block(3, c1, 11, stride=stride, padding=2 if stride == 4 else 5)
            + [nn.MaxPool2d(3, 2)]
            + block(c1, c2, 5, padding=2)
            + [nn.MaxPool2d(3, 2)]
            + block(c2, c3, 3, padding=1)
        )
        self.features = nn.Sequential(*layers)
        self.out_channels = c3

    @property
    def last_conv(self) -> nn.Module:
        """The layer just before the last ReLU (the last BatchNorm, or conv3)."""
        return self.features[-2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _ResNetBody(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.body = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
        )
        self.out_channels = 512

    @property
    def last_conv(self) -> nn.Module:
        return self.body[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def resnet18_trunk(weights: str | Path | None = None) -> nn.Module:
    """ResNet-18 body (conv1..layer4). ``weights``: a local ImageNet state dict, or None."""
    import torchvision.models as tvm

    net = tvm.resnet18(weights=None)
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"resnet18 weights {path} not found. Fix: pass the path of a "
                "torchvision resnet18 state dict, or weights=None (from scratch)"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=False)
    return _ResNetBody(net)


class BilinearBranch(nn.Module):
    """One B-CNN: trunk(s), bilinear pooling, signed sqrt, L2 normalisation."""

    def __init__(
        self,
        trunk: str = "alexnet_like",
        streams: int = 1,
        channels: tuple[int, int, int] = (64, 192, 256),
        input_size: int = 224,
        weights: str | Path | None = None,
        batch_norm: bool = True,
    ):
        super().__init__()
        if trunk not in TRUNKS:
            raise ValueError(f"trunk={trunk!r}: use one of {', '.join(TRUNKS)}")
        if streams not in (1, 2):
            raise ValueError(f"streams={streams}: use 1 (symmetric B-CNN) or 2 (two trunks)")

        def make():
            if trunk == "alexnet_like":
                return AlexNetLikeTrunk(channels, input_size, batch_norm)
            return resnet18_trunk(weights)

        self.trunk_a = make()
        # Symmetric B-CNN [D,D] shares one trunk; two streams follow Lin et al.'s
        # general two-network form at twice the cost.
        self.trunk_b = make() if streams == 2 else None
        other = self.trunk_b if self.trunk_b is not None else self.trunk_a
        self.dim = self.trunk_a.out_channels * other.out_channels

    @property
    def last_conv(self) -> nn.Module:
        return self.trunk_a.last_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.trunk_a(x)
        b = self.trunk_b(x) if self.trunk_b is not None else None
        return F.normalize(signed_sqrt(bilinear_pool(a, b)), dim=1)


class LBCNN(nn.Module):
    """Global face branch + local ROI branch, fused by concatenation, 3-class head.

    ``forward`` returns class logits (cross-entropy) or class scores (MSE on one-hot
    targets, the authors' code); ``embed`` the fused bilinear feature (for t-SNE).
    """

    def __init__(
        self,
        trunk: str = "alexnet_like",
        input_size: int = 224,
        streams: int = 1,
        channels: tuple[int, int, int] = (64, 192, 256),
        hidden: int = 256,
        dropout: float = 0.5,
        n_classes: int = len(CLASS_NAMES),
        weights: str | Path | None = None,
        branches: tuple[str, ...] = ("global", "local"),
        batch_norm: bool = True,
    ):
        super().__init__()
        unknown = set(branches) - {"global", "local"}
        if unknown or not branches:
            raise ValueError(f"branches={branches!r}: use 'global', 'local' or both")
        self.branches = tuple(branches)
        self.input_size = input_size
        self.global_branch = (
            BilinearBranch(trunk, streams, channels, input_size, weights, batch_norm)
            if "global" in branches
            else None
        )
        self.local_branch = (
            BilinearBranch(trunk, streams, channels, input_size, weights, batch_norm)
            if "local" in branches
            else None
        )
        self.feature_dim = sum(b.dim for b in (self.global_branch, self.local_branch) if b is not None)
        if hidden > 0:
            self.head = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(self.feature_dim, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, n_classes),
            )
        else:
            self.head = nn.Linear(self.feature_dim, n_classes)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1) * 255.0, persistent=False)

    def cam_layers(self) -> dict[str, nn.Module]:
        """The last convolution of each branch, for Grad-CAM."""
        out = {}
        if self.global_branch is not None:
            out["global"] = self.global_branch.last_conv
        if self.local_branch is not None:
            out["local"] = self.local_branch.last_conv
        return out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 6:
            raise ValueError(
                f"LBCNN expects (N, 6, S, S) inputs (face RGB + ROI mosaic RGB), got {tuple(x.shape)}"
            )
        parts = []
        if self.global_branch is not None:
            parts.append(self.global_branch((x[:, :3] - self.mean) / self.std))
        if self.local_branch is not None:
            parts.append(self.local_branch((x[:, 3:] - self.mean) / self.std))
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
