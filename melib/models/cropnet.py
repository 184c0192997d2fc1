"""CropNet (Zhao, Chen & Luo 2021, section 3.2): CGPO crops → shared ReXNet extractor → per-crop
head → position embeddings → concatenation → classifier.

What follows the paper and what is our choice
---------------------------------------------
* Extractor: ReXNet (Han et al. 2020): MobileNetV2 inverted bottlenecks with expansion
  6 whose output channels grow linearly block by block. We use timm's implementation.
  ``backbone="rexnet_100"`` (4.8 M parameters) is the ``full`` default; the paper's
  "approximately 7.6M" parameters match ReXNet-1.3x (``rexnet_130``, 7.56 M) better, so
  that is offered too. ``slim`` (width 0.5, depth 1/3: 7 blocks) and ``tiny`` (width
  0.25) are the same ReXNet recipe scaled down for CPU profiles. Pretrained weights (the
  paper uses ImageNet) load only from a local file: ``pretrained="/path/to/file"``;
  by default every model trains from scratch.
* One extractor and one head are shared by all crops (the paper does not say whether
  they are shared; sharing keeps the parameter count near the paper's 7.6 M).
* Head, per crop, in the paper's order: Conv (1x1) → BN → adaptive average pool → FC,
  giving z_i (``embed_dim`` values; the paper gives no sizes). No activation is named
  between them, so none is used (the extractor ends in an activation already).
* Position embeddings, eq. 8: the paper has 10 crops z0..z9 but 9 embeddings p1..p9
  for z1..z9 ("0 < i < 10"); z0, the coarse whole-face crop (see
  :mod:`melib.features.cgpo`), gets none. ``position_embedding="paper"`` does exactly
  that; ``"all"`` gives every crop one, ``"none"`` drops them. The operator of eq. 8 is
  not legible in the paper's text; we add, as position embeddings usually are.
  Initialisation: normal with mean 0 and **variance** 0.2 (std ≈ 0.447), as the paper
  writes; ``pos_std`` can change it.
* Fusion: the 10 vectors are concatenated ("splicing") and one FC layer classifies.
* Without CGPO (ablation), the whole input image is one "crop": extractor → head →
  classifier, with no position embedding.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from melib.features.cgpo import CGPOLayout, cgpo_crops_torch

__all__ = ["BACKBONES", "CropNetConfig", "CropNet", "CropView", "build_extractor", "count_parameters"]

# timm names, or RexNet(...) keyword arguments for the scaled-down variants.
BACKBONES = {
    "rexnet_100": "rexnet_100",
    "rexnet_130": "rexnet_130",
    "slim": {"width_mult": 0.5, "depth_mult": 1 / 3},
    "tiny": {"width_mult": 0.25, "depth_mult": 1 / 3},
}
PAPER_PARAMETERS_M = 7.6


@dataclass(frozen=True)
class CropNetConfig:
    num_classes: int = 5
    backbone: str = "rexnet_100"
    input_size: int = 320
    crop_size: int = 160
    alpha: float = 0.3
    cgpo: bool = True
    head_channels: int = 256
    embed_dim: int = 128
    position_embedding: str = "paper"  # paper (p1..p9 on z1..z9) | all | none
    pos_std: float = math.sqrt(0.2)
    dropout: float = 0.2
    pretrained: str | None = None

    def layout(self) -> CGPOLayout:
        return CGPOLayout(input_size=self.input_size, crop_size=self.crop_size, alpha=self.alpha)


def build_extractor(backbone: str, pretrained: str | None = None) -> nn.Module:
    """A timm ReXNet without pooling and classifier (``forward_features`` gives maps)."""
    with warnings.catch_warnings():
        # timm pulls in huggingface_hub's download bars, whose "IProgress not found"
        # warning (with a site-packages path) would leak into notebook outputs; nothing
        # here downloads anything.
        warnings.filterwarnings("ignore", message="IProgress not found")
        import timm
        from timm.models.rexnet import RexNet

    if backbone not in BACKBONES:
        raise ValueError(f"CropNet backbone={backbone!r}: use one of {', '.join(BACKBONES)}")
    spec = BACKBONES[backbone]
    if isinstance(spec, str):
        model = timm.create_model(spec, pretrained=False, num_classes=0, global_pool="")
    else:
        model = RexNet(num_classes=0, global_pool="", **spec)
    if pretrained:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained={pretrained!r}: no such file. Fix: pass the path "
                f"of a local {backbone} state dict (nothing is downloaded), "
                "or None to train from scratch."
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        # The ImageNet classifier is dropped: CropNet has its own head.
        state = {k: v for k, v in state.items() if not k.startswith(("head.", "fc."))}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if not k.startswith("head")]:
            raise ValueError(
                f"{path} does not fit backbone {backbone!r}: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}"
            )
    return model


class CropNet(nn.Module):
    """``forward(x)``: (B, 3, S, S) normalised images → (B, num_classes) logits."""

    def __init__(self, config: CropNetConfig = CropNetConfig()):
        super().__init__()
        self.config = config
        self.layout = config.layout() if config.cgpo else None
        self.n_crops = self.layout.n_crops if config.cgpo else 1
        self.extractor = build_extractor(config.backbone, config.pretrained)
        channels = self.extractor.num_features
        self.head_conv = nn.Conv2d(channels, config.head_channels, 1, bias=False)
        self.head_bn = nn.BatchNorm2d(config.head_channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(config.head_channels, config.embed_dim)
        n_pos = {"paper": self.n_crops - 1, "all": self.n_crops, "none": 0}.get(config.position_embedding)
        if n_pos is None:
            raise ValueError(f"position_embedding={config.position_embedding!r}: use paper, all or none")
        if not config.cgpo:
            n_pos = 0
        self.first_embedded = self.n_crops - n_pos
        self.position = nn.Parameter(torch.empty(n_pos, config.embed_dim))
        nn.init.normal_(self.position, mean=0.0, std=config.pos_std)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(self.n_crops * config.embed_dim, config.num_classes)

    def crops(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → (B, n_crops, 3, c, c); without CGPO the image itself."""
        return cgpo_crops_torch(x, self.layout) if self.layout is not None else x[:, None]

    def crop_features(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, c, c) → z, (B, N, embed_dim), position embeddings included."""
        b, n = crops.shape[:2]
        maps = self.extractor.forward_features(crops.flatten(0, 1))
        z = self.fc(self.pool(self.head_bn(self.head_conv(maps))).flatten(1)).view(b, n, -1)
        if len(self.position):
            z = torch.cat([z[:, : self.first_embedded], z[:, self.first_embedded :] + self.position], dim=1)
        return z

    def forward_crops(self, crops: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.crop_features(crops).flatten(1)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The fused (concatenated) feature vector, for t-SNE."""
        return self.crop_features(self.crops(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_crops(self.crops(x))


class CropView(nn.Module):
    """CropNet seen from one sample's crops: input (n_crops, 3, c, c), output (1, K).

    Grad-CAM libraries map one input batch to one output batch; this view makes the
    crops the batch, so the hooked per-crop activations and their gradients give one
    map per crop at the crop's own resolution.
    """

    def __init__(self, model: CropNet):
        super().__init__()
        self.model = model

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.model.forward_crops(crops[None])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
