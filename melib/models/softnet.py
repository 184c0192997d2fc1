"""SOFTNet: the shallow optical-flow three-stream CNN of Liong, See & Wong (ICASSP 2021).

Input (N, 3, 42, 42) with channels (|u|, |v|, strain). Each channel feeds its own
stream: one 5x5 convolution ("same" padding, ReLU) with 3, 5 and 8 filters, then
max-pooling 3x3 / stride 3 (42 -> 14). The 16 maps are concatenated, pooled 2x2
(14 -> 7), flattened (784), passed through a 400-unit ReLU layer and a single linear
output: the frame's spotting score. 314,817 parameters (the paper's 0.3148 M).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SOFTNet", "count_parameters", "keras_init_"]

STREAM_FILTERS = (3, 5, 8)


class SOFTNet(nn.Module):
    def __init__(
        self,
        filters: tuple[int, int, int] = STREAM_FILTERS,
        kernel: int = 5,
        hidden: int = 400,
        input_size: int = 42,
        init: str = "keras",
    ):
        super().__init__()
        self.streams = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(1, f, kernel, padding=kernel // 2),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=3),
            )
            for f in filters
        )
        self.pool = nn.MaxPool2d(2)
        side = (input_size // 3) // 2
        self.fc = nn.Linear(sum(filters) * side * side, hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, 1)
        if init == "keras":
            keras_init_(self)
        elif init != "torch":
            raise ValueError(f"SOFTNet init={init!r}: use 'keras' (the authors') or 'torch'")

    def stream_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated stream outputs (N, 16, 14, 14), before the shared pooling."""
        if x.shape[1] != len(self.streams):
            raise ValueError(f"SOFTNet expects {len(self.streams)} input channels, got {x.shape[1]}")
        return torch.cat([s(x[:, i : i + 1]) for i, s in enumerate(self.streams)], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 400-d penultimate features (after ReLU), for t-SNE."""
        return self.act(self.fc(torch.flatten(self.pool(self.stream_maps(x)), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(x)).squeeze(1)


def keras_init_(model: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases, Keras's defaults (the authors' framework).

    PyTorch's default (Kaiming-uniform with a=sqrt(5)) gives smaller dense weights; with
    plain SGD at lr 5e-4 for 10 epochs the start point matters, so mirror Keras.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
