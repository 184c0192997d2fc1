"""DynGeoNet (Tran et al. 2021, section 3.4): VGG-16 on the dynamic image + a two-layer MLP on the
67-d geometric vector, concatenated, then two FC layers to one ME / non-ME logit.

What follows the paper and what is our choice
---------------------------------------------
* Appearance branch: VGG-16 built from torchvision's own layer list (``make_layers``
  with config "D": 13 conv layers, 5 max-pools) + fc6/fc7 with ReLU and dropout as in
  VGG-16; the 1000-way fc8 is dropped, so the branch outputs the fc7 vector
  (``vgg_width``, 4096 as in VGG-16). At 224 px its fc7 output equals torchvision's
  ``vgg16`` given the same weights (checked by hand when this was written). Trained from scratch unless
  ``vgg_weights`` names a **local** torchvision VGG-16 state dict (nothing is
  downloaded); a missing file is a clear error.
* Small inputs. VGG-16 halves the resolution five times, so a 224 px input leaves 7x7
  maps and fc6 reads 512*7*7 values. For the CPU profiles (e.g. 64 px -> 2x2 maps) the
  maps are adaptively average-pooled to ``min(7, input_size // 32)`` squared and fc6
  is sized to match (512*2*2 = 2048 inputs at 64 px) instead of upsampling 2x2 maps to
  7x7 (torchvision's default, 25088 inputs). At 224 px this is exactly VGG-16, so
  ImageNet weights load whole; at other sizes fc6 is trained from scratch (its loaded
  weights do not fit) while the conv layers and fc7 load. Inputs under 32 px are refused.
  ``vgg_channels`` (default 1) divides every conv layer's width for the CPU profiles
  (8: 8..64 channels, same 13 convolutions and 5 poolings); ``vgg_width`` sets fc6/fc7.
  ``vgg_batch_norm=True`` (opt-in, default off) adds BatchNorm after every convolution
  (torchvision's VGG-16-BN layer list). It is a departure from the paper's VGG-16, for the
  CPU profiles: on the book corpus the plain branch trained from scratch with SGD stayed
  at loss 0.693 (chance) for 30-40 epochs, at lr 1e-3 and 1e-2.
  The branch expects images in [0, 1] (what :func:`melib.features.dynamic_image.region_composite`
  gives) and applies the ImageNet mean/std normalisation itself.
* Geometric branch: "a simple two-layers network": Linear(67, ``geo_hidden``) -> ReLU ->
  Linear(``geo_hidden``, ``geo_hidden``) -> ReLU (the paper gives no width; 128).
* Fusion: concatenation, then the paper's two FC layers: Linear(-, ``hidden``) -> ReLU ->
  Dropout(``dropout``) -> Linear(``hidden``, 1). The output is a logit: the sigmoid of
  eq. 3 is inside ``BCEWithLogitsLoss`` (``TrainConfig(loss="bce")``), which is the same
  loss, computed stably; :meth:`DynGeoNet.predict_proba` applies it for scores.
* Ablations (Table 1): ``branch="dyn"`` (DynNet) and ``branch="geo"`` (GeoNet) build only
  one branch and keep the same two-FC head, so they are DynGeoNet with a branch removed.

Inputs. ``forward(dynamic, geometry)`` always takes both (the unused one is ignored), so
one training loop serves the three branches. :func:`melib.training.fit` and
:func:`melib.training.predict` pass a single tensor per batch, so a batch can also be
**packed**: ``pack_inputs(dynamic, geometry)`` flattens each sample into one row
(3*S*S dynamic-image values, then ``geo_dim`` geometric values) and
``forward(packed)`` unpacks it. Grad-CAM needs image-shaped inputs:
:class:`DynamicView` fixes the geometry and takes the dynamic images alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "BRANCHES",
    "DynGeoNet",
    "VGGFrames",
    "VGGBranch",
    "DynamicView",
    "pack_inputs",
    "unpack_inputs",
    "fused_features",
    "gradcam_layer",
    "vgg_pool_size",
    "count_parameters",
]

BRANCHES = ("fusion", "dyn", "geo")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_pool_size(input_size: int) -> int:
    """Side of the pooled VGG-16 maps that fc6 reads: 7 at 224 px, ``input_size // 32`` below."""
    if input_size < 32:
        raise ValueError(f"input_size={input_size}: VGG-16 halves the image 5 times; use >= 32 px")
    return min(7, input_size // 32)


def _weights_file(path: str | Path) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"vgg_weights={str(path)!r}: no such file. Fix: pass the path of a "
            "local torchvision VGG-16 state dict (nothing is downloaded), or "
            "None to train from scratch."
        )
    return file


def _load_vgg_state(path: str | Path) -> dict:
    file = _weights_file(path)
    state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{file}: expected a state dict (parameter name -> tensor)")
    return state


class VGGBranch(nn.Module):
    """VGG-16 conv layers + fc6/fc7 (no fc8): (B, 3, S, S) in [0, 1] -> (B, width).

    ``channels`` divides every conv layer's width (1: VGG-16's 64..512; 8: 8..64), same
    13 convolutions and 5 poolings; for CPU profiles only (VGG-16 trains at ~5 images/s
    at 64 px on one CPU thread, channels / 8 at a few hundred).
    """

    def __init__(
        self,
        input_size: int = 224,
        weights: str | Path | None = None,
        width: int = 4096,
        dropout: float = 0.5,
        channels: int = 1,
        batch_norm: bool = False,
    ):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        pool = vgg_pool_size(input_size)
        if not isinstance(channels, int) or channels < 1 or 64 % channels:
            raise ValueError(
                f"vgg_channels={channels!r}: use a divisor of 64 (1 = VGG-16's 64..512 channels, 8 = 8..64)"
            )
        if weights is not None:
            _weights_file(weights)  # a missing file is the first thing to report
        if weights is not None and channels != 1:
            raise ValueError(
                f"vgg_weights={str(weights)!r} needs vgg_channels=1: VGG-16 weights only "
                f"fit the full-width network, not one with channels / {channels}"
            )
        if weights is not None and batch_norm:
            raise ValueError(
                f"vgg_weights={str(weights)!r} needs vgg_batch_norm=False: the weights are "
                "plain VGG-16's, whose layer list has no BatchNorm"
            )
        self.input_size, self.channels, self.batch_norm = input_size, channels, bool(batch_norm)
        # torchvision's own VGG-16 conv stack (config "D"), built without its 25088x4096
        # classifier, which vgg16() would allocate (~0.5 GB) only for us to drop it.
        config = [c if c == "M" else c // channels for c in cfgs["D"]]
        self.features = make_layers(config, batch_norm=bool(batch_norm))
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(
            nn.Linear(512 // channels * pool * pool, width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        _vgg_init_(self)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights is not None:
            self.load_vgg(weights)

    @property
    def last_conv(self) -> nn.Conv2d:
        return [m for m in self.features if isinstance(m, nn.Conv2d)][-1]

    def load_vgg(self, path: str | Path) -> list[str]:
        """Load a torchvision VGG-16 state dict (``features.*``, ``classifier.*``).

        All conv weights must be there; fc6 (``classifier.0``) and fc7 (``classifier.3``)
        load when their shapes fit this branch; fc8 (``classifier.6``) is never used.
        Returns the names of the layers that stay randomly initialised.
        """
        state = _load_vgg_state(path)
        feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        missing, unexpected = self.features.load_state_dict(feats, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{path}: not a torchvision VGG-16 state dict (conv layers missing "
                f"{missing[:3]}, unexpected {unexpected[:3]})"
            )
        kept_random = []
        for src, dst in (("classifier.0", self.head[0]), ("classifier.3", self.head[3])):
            w, b = state.get(src + ".weight"), state.get(src + ".bias")
            if w is not None and b is not None and w.shape == dst.weight.shape:
                with torch.no_grad():
                    dst.weight.copy_(w)
                    dst.bias.copy_(b)
            else:
                kept_random.append(src)
        return kept_random

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG branch: expected images (B, 3, S, S), got {tuple(x.shape)}")
        return self.features((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.maps(x)), 1))


def _vgg_init_(module: nn.Module) -> None:
    """torchvision's VGG initialisation: He-normal (fan-out) convs, N(0, 0.01) linears, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def pack_inputs(dynamic, geometry) -> np.ndarray:
    """One float32 row per sample: the (3, S, S) dynamic image flattened, then the
    ``geo_dim`` geometric values. For :func:`melib.training.fit` / ``predict``, which
    pass a single tensor per batch. Accepts NumPy arrays or tensors."""
    d = np.asarray(dynamic.detach().cpu() if isinstance(dynamic, torch.Tensor) else dynamic, np.float32)
    g = np.asarray(geometry.detach().cpu() if isinstance(geometry, torch.Tensor) else geometry, np.float32)
    if d.ndim != 4 or d.shape[1] != 3:
        raise ValueError(f"pack_inputs: dynamic must be (N, 3, S, S), got {d.shape}")
    if g.ndim != 2 or len(g) != len(d):
        raise ValueError(f"pack_inputs: geometry must be (N, geo_dim) with N = {len(d)}, got {g.shape}")
    return np.concatenate([d.reshape(len(d), -1), g], axis=1)


def unpack_inputs(packed: torch.Tensor, input_size: int, geo_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_inputs`: ``(dynamic (B, 3, S, S), geometry (B, geo_dim))``."""
    n_image = 3 * input_size * input_size
    if packed.ndim != 2 or packed.shape[1] != n_image + geo_dim:
        raise ValueError(
            f"packed input must be (B, {n_image + geo_dim}) = 3*{input_size}^2 image "
            f"values + {geo_dim} geometric values, got {tuple(packed.shape)}. Fix: build "
            "it with pack_inputs at this model's input_size and geo_dim."
        )
    return packed[:, :n_image].reshape(-1, 3, input_size, input_size), packed[:, n_image:]


class DynGeoNet(nn.Module):
    """``forward(dynamic (B,3,S,S), geometry (B,geo_dim))`` or ``forward(packed)`` -> (B,) logits."""

    def __init__(
        self,
        branch: str = "fusion",
        geo_dim: int = 67,
        input_size: int = 224,
        vgg_weights: str | Path | None = None,
        hidden: int = 256,
        dropout: float = 0.5,
        geo_hidden: int = 128,
        vgg_width: int = 4096,
        vgg_channels: int = 1,
        vgg_batch_norm: bool = False,
    ):
        super().__init__()
        if branch not in BRANCHES:
            raise ValueError(
                f"branch={branch!r}: use 'fusion' (DynGeoNet), 'dyn' (DynNet, VGG-16 "
                "alone) or 'geo' (GeoNet, MLP alone)"
            )
        self.branch, self.geo_dim, self.input_size = branch, geo_dim, input_size
        vgg_pool_size(input_size)  # validates the size even for GeoNet, whose packing uses it
        self.vgg = (
            VGGBranch(input_size, vgg_weights, vgg_width, dropout, vgg_channels, vgg_batch_norm)
            if branch != "geo"
            else None
        )
        self.mlp = (
            nn.Sequential(
                nn.Linear(geo_dim, geo_hidden),
                nn.ReLU(inplace=True),
                nn.Linear(geo_hidden, geo_hidden),
                nn.ReLU(inplace=True),
            )
            if branch != "dyn"
            else None
        )
        fused = (vgg_width if self.vgg is not None else 0) + (geo_hidden if self.mlp is not None else 0)
        self.fc1 = nn.Linear(fused, hidden)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 1)

    def _split(self, dynamic: torch.Tensor, geometry: torch.Tensor | None):
        if geometry is not None:
            return dynamic, geometry
        if dynamic.ndim == 4:  # images alone: enough for DynNet only
            if self.mlp is not None:
                raise ValueError(
                    f"branch={self.branch!r} reads the geometric vector: call "
                    "model(dynamic, geometry) or model(pack_inputs(dynamic, geometry))"
                )
            return dynamic, None
        return unpack_inputs(dynamic, self.input_size, self.geo_dim)

    def fuse(self, dynamic: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        """The concatenated branch features, before the two FC layers."""
        dynamic, geometry = self._split(dynamic, geometry)
        parts = []
        if self.vgg is not None:
            parts.append(self.vgg(dynamic))
        if self.mlp is not None:
            if geometry.ndim != 2 or geometry.shape[1] != self.geo_dim:
                raise ValueError(f"geometry must be (B, {self.geo_dim}), got {tuple(geometry.shape)}")
            parts.append(self.mlp(geometry.to(self.fc1.weight.dtype)))
        return torch.cat(parts, dim=1)

    def embed(self, dynamic: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        """The penultimate vector (after fc1 and ReLU, ``hidden`` values), for t-SNE;
        ``predict(model, packed, method="embed")`` works with packed inputs."""
        return self.act(self.fc1(self.fuse(dynamic, geometry)))

    def forward(self, dynamic: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc2(self.dropout(self.embed(dynamic, geometry))).squeeze(1)

    @torch.no_grad()
    def predict_proba(self, dynamic: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        """Sigmoid of the logits (eval mode is the caller's choice, as for ``forward``)."""
        return torch.sigmoid(self(dynamic, geometry))


class DynamicView(nn.Module):
    """A DynGeoNet seen from its dynamic images only: ``forward(dynamic)`` with
    ``geometry`` (B, geo_dim) fixed, so Grad-CAM tools get image-shaped inputs."""

    def __init__(self, model: DynGeoNet, geometry):
        super().__init__()
        self.model = model
        self.register_buffer("geometry", torch.as_tensor(np.asarray(geometry, np.float32)), persistent=False)

    def forward(self, dynamic: torch.Tensor) -> torch.Tensor:
        return self.model(dynamic, self.geometry[: len(dynamic)]).reshape(-1, 1)


class VGGFrames(nn.Module):
    """The paper's cross-database baseline ("VGG16" of Table 2, after [20, 26]): VGG-16 on
    one frame of the window (the apex, i.e. the middle frame) -> one logit.

    Same VGG-16 branch as DynGeoNet (fc6/fc7, small-input pooling, local weights), then
    fc8 with one output. ``forward(frames)`` takes (B, 3, S, S) images in [0, 1]; a
    second argument is accepted and ignored so the training loop matches DynGeoNet's.
    """

    def __init__(
        self,
        input_size: int = 224,
        vgg_weights: str | Path | None = None,
        dropout: float = 0.5,
        vgg_width: int = 4096,
        vgg_channels: int = 1,
        vgg_batch_norm: bool = False,
    ):
        super().__init__()
        self.input_size = input_size
        self.vgg = VGGBranch(input_size, vgg_weights, vgg_width, dropout, vgg_channels, vgg_batch_norm)
        self.out = nn.Linear(vgg_width, 1)

    def embed(self, frames: torch.Tensor, _unused=None) -> torch.Tensor:
        return self.vgg(frames)

    def forward(self, frames: torch.Tensor, _unused=None) -> torch.Tensor:
        return self.out(self.vgg(frames)).squeeze(1)

    @torch.no_grad()
    def predict_proba(self, frames: torch.Tensor, _unused=None) -> torch.Tensor:
        return torch.sigmoid(self(frames))


@torch.no_grad()
def fused_features(model: DynGeoNet, dynamic, geometry) -> np.ndarray:
    """Penultimate vectors (N, hidden) as NumPy, in eval mode (for t-SNE)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        d, g = (torch.as_tensor(a).float().to(device) for a in (dynamic, geometry))
        return model.embed(d, g).cpu().numpy()
    finally:
        model.train(was_training)


def gradcam_layer(model: nn.Module) -> nn.Conv2d:
    """The last convolution of the VGG-16 branch (conv5_3), the layer Grad-CAM hooks."""
    inner = model.model if isinstance(model, DynamicView) else model
    if getattr(inner, "vgg", None) is None:
        raise ValueError(
            "gradcam_layer: this model has no VGG-16 branch (branch='geo', GeoNet); "
            "Grad-CAM needs the appearance branch"
        )
    return inner.vgg.last_conv


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
