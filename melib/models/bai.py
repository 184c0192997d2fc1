"""Bai (2020): a ResNet-50 frame encoder fine-tuned from a Grad-CAM-chosen layer,
then recurrent / temporal-convolutional decoders over frame sequences.

What follows the proposal and what is our choice
------------------------------------------------
* Backbone: torchvision ``resnet50`` (the proposal uses VGGFace2's ResNet-50). Its
  stages, in order, are :data:`STAGES`: ``conv1`` (the stem: conv1, bn1, ReLU and the
  max-pool), ``layer1`` ... ``layer4``. The "specific layer" l_s is one of them.
  VGGFace2 weights load only from a local file (:func:`resnet50_encoder`); by default
  the network trains from scratch. For CPU profiles ``width`` divides the channels of
  every bottleneck (same 3-4-6-3 topology, same stage names; the 64-channel stem is
  kept); weights load only at ``width=1``, the paper's network.
* Frame classifier (section 3.1, figure 2), :class:`FrameClassifier`:

  - ``"I"``: the whole CNN is frozen; only the FC head trains.
  - ``"II"``: the stages strictly *before* l_s are frozen ("layers {l_0..l_{s-1}} are
    frozen", "the transfer learning work would be carried out on layers after l_s");
    l_s and every later stage are fine-tuned.
  - ``"III"``: the stages after l_s are removed; the stages before l_s are frozen and
    l_s is fine-tuned, as in II (the proposal states the freezing rule once for
    section 3.1; we apply it to III as well).

  Frozen stages also keep their BatchNorm layers in eval mode (running statistics are
  not updated), so a frozen stage computes exactly the same function while training.
  The CNN output is global-average-pooled (or attention-pooled, see below) and fed to
  ``fc1 -> fc2 -> fc3`` ("to decrease the feature vector size"). The proposal gives no
  sizes: ``fc=(512, 256)`` are fc1 and fc2's widths, fc3 outputs the classes; ReLU and
  dropout (0.5, our choice) between them.
* Sequence level (section 3.2, figure 3): every frame is encoded by the frame
  classifier's CNN + fc1 + fc2 (the D-dimensional vector the proposal feeds to the
  LSTM, D = ``fc[-1]``), and a decoder classifies the sequence:
  ``"lstm"`` and ``"bilstm"`` (reported), ``"gru"`` and ``"tcn"`` (planned). The
  sequence embedding is the last hidden state (both directions' final states for
  ``bilstm``) or, for the TCN, its output at the last time step.
* TCN: the proposal cites Lea et al. (2017), an encoder-decoder TCN with pooling and
  upsampling made for frame-wise segmentation; to classify a whole sequence we use
  instead Bai, Kolter & Koltun (2018): residual blocks of two dilated causal
  1-D convolutions (weight norm, ReLU, dropout), dilation doubling per block, enough
  blocks for the receptive field to cover ``n_frames``.
* Spatial attention (section 4.2, planned): :class:`SpatialAttention` replaces global
  average pooling of the CNN's last feature maps by a learned weighting of positions.
"""

from __future__ import annotations

import pickle
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "STAGES",
    "EXPERIMENTS",
    "DECODERS",
    "WeightsReport",
    "load_resnet50_weights",
    "resnet50_encoder",
    "stage_channels",
    "SpatialAttention",
    "FrameClassifier",
    "TemporalConvNet",
    "SequenceDecoder",
    "SequenceClassifier",
]

STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")
EXPERIMENTS = ("I", "II", "III")
DECODERS = ("lstm", "bilstm", "gru", "tcn")
_CHANNELS = {"conv1": 64, "layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048}


def stage_channels(stage: str, width: int = 1) -> int:
    """Output channels of a ResNet-50 stage (channels divided by ``width`` but the stem's)."""
    _check_stage(stage)
    return _CHANNELS[stage] if stage == "conv1" else _CHANNELS[stage] // width


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ValueError(f"specific_layer={stage!r}: use one of {', '.join(STAGES)}")


@dataclass
class WeightsReport:
    """What :func:`load_resnet50_weights` did: the file, the backbone keys it did not
    provide (left at their initialisation), the keys it had that the backbone does not
    use, and the keys skipped because their shape differs (e.g. an 8631-way ``fc``)."""

    path: str
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".pkl":
        # VGGFace2 ResNet-50 weights converted from Caffe are often shared as a pickle of
        # numpy arrays keyed like torchvision's state dict.
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(
            f"{path}: expected a state dict (name -> tensor), found {type(obj).__name__}; save the "
            "model with torch.save(model.state_dict(), path)"
        )
    state = {}
    for name, value in obj.items():
        for prefix in ("module.", "backbone.", "model.", "encoder."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        state[name] = torch.as_tensor(value)
    return state


def load_resnet50_weights(model: nn.Module, weights_path: str | Path) -> WeightsReport:
    """Load a local ResNet-50 state dict (e.g. VGGFace2) into torchvision's ``resnet50``.

    Accepts ``torch.save`` files (a state dict, or a dict holding one under
    ``state_dict`` / ``model_state_dict`` / ``model``) and ``.pkl`` pickles of numpy
    arrays; ``module.`` (DataParallel), ``backbone.``, ``model.`` and ``encoder.``
    prefixes are stripped. Tensors whose shape differs (the ``fc`` of another number of
    classes) are skipped. A :class:`WeightsReport` is returned, and a warning lists
    missing backbone keys (``fc`` keys are not counted: the head is replaced anyway).
    """
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights_path={str(weights_path)!r}: no such file. Give the path of a local "
            "ResNet-50 state dict (e.g. VGGFace2 resnet50), or None to train from scratch"
        )
    state = _read_state_dict(path)
    own = model.state_dict()
    report = WeightsReport(path=str(path))
    usable = {}
    for name, value in state.items():
        if name not in own:
            report.unexpected.append(name)
        elif own[name].shape != value.shape:
            report.skipped.append(name)
        else:
            usable[name] = value.to(own[name].dtype)
    report.missing = [
        n
        for n in own
        if n not in usable and not n.startswith("fc.") and not n.endswith("num_batches_tracked")
    ]
    if not usable:
        raise ValueError(
            f"{path}: none of its {len(state)} tensors matches a torchvision ResNet-50 key "
            f"(first keys: {list(state)[:3]}); is it a ResNet-50 state dict?"
        )
    model.load_state_dict(usable, strict=False)
    if report.missing:
        warnings.warn(
            f"{path}: {len(report.missing)} ResNet-50 tensors were not in the file and keep their "
            f"random initialisation (first: {report.missing[:3]})",
            stacklevel=2,
        )
    return report


def _resnet50(width: int) -> nn.Module:
    """torchvision's ResNet-50 (``resnet50(weights=None)`` for ``width=1``) with every
    bottleneck's channels divided by ``width``."""
    from torchvision.models.resnet import Bottleneck, ResNet

    class SlimResNet(ResNet):
        def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
            return super()._make_layer(block, planes // width, blocks, stride, dilate)

    if int(width) != width or width < 1 or 64 % width:
        raise ValueError(f"width={width!r}: use a divisor of 64 (1 = the paper's ResNet-50)")
    return SlimResNet(Bottleneck, [3, 4, 6, 3])


def resnet50_encoder(weights_path: str | Path | None = None, width: int = 1) -> nn.Sequential:
    """torchvision's ResNet-50 without pooling and ``fc``, as named stages.

    Returns ``nn.Sequential(conv1=stem, layer1, layer2, layer3, layer4)`` mapping
    (B, 3, H, W) to (B, 2048 // width, H/32, W/32). From scratch (torchvision's
    initialisation) unless ``weights_path`` names a local state dict (see
    :func:`load_resnet50_weights`); the load report is kept as the returned module's
    ``weights_report`` attribute (None when training from scratch). ``width`` > 1 (CPU
    profiles) divides the bottleneck channels; it cannot be combined with weights.
    """
    if weights_path is not None and width != 1:
        raise ValueError(f"width={width}: pretrained ResNet-50 weights need width=1 (the full network)")
    net = _resnet50(width)
    report = load_resnet50_weights(net, weights_path) if weights_path is not None else None
    encoder = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)),
                ("layer1", net.layer1),
                ("layer2", net.layer2),
                ("layer3", net.layer3),
                ("layer4", net.layer4),
            ]
        )
    )
    encoder.weights_report = report
    return encoder


class SpatialAttention(nn.Module):
    """Attention pooling of feature maps (B, C, h, w) -> (B, C).

    A 1x1 convolution scores every position (one score per position), a softmax over the
    h*w positions turns the scores into weights summing to 1, and the output is the
    weighted sum of the feature vectors. With equal scores it is global average pooling;
    :attr:`last_weights` (B, h, w) keeps the latest map for display. The score
    convolution starts at zero weights, so training starts from average pooling.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.score = nn.Conv2d(channels, 1, kernel_size=1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.last_weights = None

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        b, c, h, w = maps.shape
        weights = torch.softmax(self.score(maps).reshape(b, h * w), dim=1)
        self.last_weights = weights.detach().reshape(b, h, w)
        return torch.bmm(maps.reshape(b, c, h * w), weights.unsqueeze(2)).squeeze(2)


class FrameClassifier(nn.Module):
    """ResNet-50 stages -> pooling -> fc1 -> fc2 -> fc3, for one experiment (I, II, III).

    ``experiment``/``specific_layer``: which stages are frozen or removed (module
    docstring). ``fc``: widths of fc1 and fc2 (fc3 outputs ``n_classes``).
    ``weights_path``: local ResNet-50 weights (None: from scratch). ``attention``: pool
    the last kept stage with :class:`SpatialAttention` instead of averaging. ``width``:
    channel divisor for CPU profiles (see :func:`resnet50_encoder`).
    Input (B, 3, H, W) normalised images; output (B, n_classes) logits.
    """

    def __init__(
        self,
        experiment: str,
        specific_layer: str,
        n_classes: int,
        fc: tuple = (512, 256),
        weights_path: str | Path | None = None,
        dropout: float = 0.5,
        attention: bool = False,
        width: int = 1,
    ):
        super().__init__()
        if experiment not in EXPERIMENTS:
            raise ValueError(f"experiment={experiment!r}: use one of {', '.join(EXPERIMENTS)}")
        _check_stage(specific_layer)
        if len(fc) < 1 or any(int(w) < 1 for w in fc):
            raise ValueError(f"fc={fc!r}: give the positive widths of fc1, fc2 (fc3 outputs the classes)")
        self.experiment = experiment
        self.specific_layer = specific_layer
        encoder = resnet50_encoder(weights_path, width)
        self.weights_report = encoder.weights_report
        s = STAGES.index(specific_layer)
        kept = STAGES[: s + 1] if experiment == "III" else STAGES
        frozen = STAGES if experiment == "I" else STAGES[:s]
        self.cnn = nn.Sequential(OrderedDict((name, getattr(encoder, name)) for name in kept))
        self.frozen_stages = tuple(name for name in kept if name in frozen)
        for name in self.frozen_stages:
            for p in getattr(self.cnn, name).parameters():
                p.requires_grad_(False)
        self.cnn_channels = stage_channels(kept[-1], width)
        self.pool = SpatialAttention(self.cnn_channels) if attention else _AveragePool()
        widths = [self.cnn_channels] + [int(w) for w in fc]
        layers = []
        for i in range(len(fc)):
            layers += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.head = nn.Sequential(*layers)
        self.classifier = nn.Linear(widths[-1], n_classes)

    @property
    def feature_dim(self) -> int:
        """Width of :meth:`features` (fc2's output)."""
        return self.classifier.in_features

    @property
    def attention(self) -> bool:
        return isinstance(self.pool, SpatialAttention)

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self.frozen_stages:  # frozen BatchNorm statistics stay fixed
            getattr(self.cnn, name).eval()
        return self

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The last kept stage's maps (B, C, h, w)."""
        return self.cnn(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding before the last FC layer (B, ``feature_dim``)."""
        return self.head(self.pool(self.cnn(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def stage_modules(self) -> dict:
        """``{stage name: module}`` of the kept stages, in order (Grad-CAM targets).

        Frozen stages have no parameter that requires grad, so their outputs carry a
        gradient only if the input does: pass Grad-CAM a tensor made with
        ``requires_grad=True`` (otherwise pytorch-grad-cam finds no gradient there).
        """
        return OrderedDict((name, module) for name, module in self.cnn.named_children())

    def trainable_stages(self) -> tuple:
        """Names of the CNN stages that train."""
        return tuple(name for name in self.stage_modules() if name not in self.frozen_stages)


class _AveragePool(nn.Module):
    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.mean(dim=(2, 3))


class _CausalConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int):
        super().__init__()
        self.left = (kernel - 1) * dilation
        self.conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(c_in, c_out, kernel, dilation=dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, 0)))  # pad the past only: causal


class _TemporalBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            _CausalConv(c_in, c_out, kernel, dilation),
            nn.ReLU(),
            nn.Dropout(dropout),
            _CausalConv(c_out, c_out, kernel, dilation),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.net(x) + self.skip(x))


class TemporalConvNet(nn.Module):
    """Bai, Kolter & Koltun (2018) TCN: (B, D, N) -> (B, hidden, N), causal.

    Block ``i`` has dilation ``2**i``; ``n_blocks`` defaults to the fewest blocks whose
    receptive field ``1 + 2 * (kernel - 1) * (2**n_blocks - 1)`` covers ``n_frames``.
    """

    def __init__(
        self,
        input_dim: int,
        hidden: int,
        n_frames: int = 17,
        kernel: int = 3,
        n_blocks: int | None = None,
        dropout: float = 0.2,
    ):
        super().__init__()
        if n_blocks is None:
            n_blocks = 1
            while self.receptive_field(kernel, n_blocks) < n_frames:
                n_blocks += 1
        self.blocks = nn.Sequential(
            *[
                _TemporalBlock(input_dim if i == 0 else hidden, hidden, kernel, 2**i, dropout)
                for i in range(n_blocks)
            ]
        )

    @staticmethod
    def receptive_field(kernel: int, n_blocks: int) -> int:
        return 1 + 2 * (kernel - 1) * (2**n_blocks - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class SequenceDecoder(nn.Module):
    """Classifies a sequence of per-frame features.

    Input (B, N, ``input_dim``) frame vectors, or with ``attention=True`` the CNN maps
    (B, N, ``input_dim``, h, w) (``input_dim`` = channels), attention-pooled per frame
    first, so the pipeline can cache frame features once and train decoders cheaply.
    ``decoder``: ``lstm`` | ``bilstm`` | ``gru`` | ``tcn``; ``hidden``: the recurrent
    state width (per direction) or TCN channels; ``n_frames``: sizes the TCN's
    receptive field. :meth:`embedding` is the sequence embedding (t-SNE), the final
    linear layer maps it to ``n_classes`` logits.
    """

    def __init__(
        self,
        input_dim: int,
        decoder: str = "lstm",
        hidden: int = 128,
        n_classes: int = 3,
        attention: bool = False,
        n_frames: int = 17,
        n_layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder={decoder!r}: use one of {', '.join(DECODERS)}")
        self.decoder = decoder
        self.attention = SpatialAttention(input_dim) if attention else None
        if decoder == "tcn":
            self.temporal = TemporalConvNet(input_dim, hidden, n_frames=n_frames, dropout=dropout)
            self.embedding_dim = hidden
        else:
            rnn = nn.GRU if decoder == "gru" else nn.LSTM
            self.temporal = rnn(
                input_dim,
                hidden,
                num_layers=n_layers,
                batch_first=True,
                bidirectional=decoder == "bilstm",
                dropout=dropout if n_layers > 1 else 0.0,
            )
            self.embedding_dim = hidden * (2 if decoder == "bilstm" else 1)
        self.classifier = nn.Linear(self.embedding_dim, n_classes)

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        if self.attention is None:
            if x.dim() != 3:
                raise ValueError(f"input of shape {tuple(x.shape)}: expected (B, N, D) frame features")
            return x
        if x.dim() != 5:
            raise ValueError(
                f"input of shape {tuple(x.shape)}: with attention, expected (B, N, C, h, w) maps"
            )
        b, n = x.shape[:2]
        return self.attention(x.flatten(0, 1)).reshape(b, n, -1)

    def sequence_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Per-time-step outputs (B, N, E) (for the TCN: causal in time)."""
        x = self._pooled(x)
        if self.decoder == "tcn":
            return self.temporal(x.transpose(1, 2)).transpose(1, 2)
        return self.temporal(x)[0]

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ``embedding_dim``) sequence embedding."""
        if self.decoder == "tcn":
            return self.sequence_outputs(x)[:, -1]
        _, state = self.temporal(self._pooled(x))
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        if self.decoder == "bilstm":
            return torch.cat([h[-2], h[-1]], dim=1)  # last layer, forward and backward
        return h[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(x))


class SequenceClassifier(nn.Module):
    """Frame encoder + :class:`SequenceDecoder`: (B, N, 3, H, W) -> (B, n_classes).

    ``encoder``: a :class:`FrameClassifier` (its :meth:`~FrameClassifier.features`
    encode each frame, and its frozen stages stay frozen), or any module mapping
    (B, 3, H, W) to (B, D), with ``feature_dim`` giving D when the module has no
    ``feature_dim`` attribute. ``attention=True`` needs a FrameClassifier: its pooling
    becomes :class:`SpatialAttention` (if it was not already), before fc1/fc2.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: str = "lstm",
        attention: bool = False,
        hidden: int = 128,
        n_classes: int = 3,
        n_frames: int = 17,
        feature_dim: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if attention:
            if not isinstance(encoder, FrameClassifier):
                raise ValueError("attention=True needs a FrameClassifier encoder (it pools the CNN's maps)")
            if not encoder.attention:
                encoder.pool = SpatialAttention(encoder.cnn_channels)
        dim = feature_dim if feature_dim is not None else getattr(encoder, "feature_dim", None)
        if dim is None:
            raise ValueError("the encoder has no feature_dim attribute: pass feature_dim (its output width)")
        self.encoder = encoder
        self.decoder = SequenceDecoder(
            int(dim), decoder, hidden, n_classes, n_frames=n_frames, dropout=dropout
        )

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) -> (B, N, D) per-frame encoder features."""
        if x.dim() != 5:
            raise ValueError(f"input of shape {tuple(x.shape)}: expected (B, N, 3, H, W) sequences")
        b, n = x.shape[:2]
        encode = self.encoder.features if isinstance(self.encoder, FrameClassifier) else self.encoder
        return encode(x.flatten(0, 1)).reshape(b, n, -1)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, E) sequence embedding (t-SNE)."""
        return self.decoder.embedding(self.frame_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.frame_features(x))
