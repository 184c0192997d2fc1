"""SOFTNet's architecture and Table 3's backbones."""

from __future__ import annotations

import pytest
import torch

from melib.models.backbones import BACKBONES, PAPER_TABLE3, build_backbone, keras_style_count
from melib.models.softnet import SOFTNet, count_parameters


def test_softnet_has_the_papers_parameter_count():
    model = SOFTNet()
    assert count_parameters(model) == 314_817
    assert round(count_parameters(model) / 1e6, 4) == PAPER_TABLE3["softnet"][3]


def test_softnet_shapes_and_streams():
    model = SOFTNet()
    x = torch.rand(4, 3, 42, 42)
    assert model.stream_maps(x).shape == (4, 16, 14, 14)
    assert model.embed(x).shape == (4, 400)
    assert model(x).shape == (4,)
    assert [s[0].out_channels for s in model.streams] == [3, 5, 8]
    assert all(s[0].kernel_size == (5, 5) and s[0].in_channels == 1 for s in model.streams)


def test_each_stream_sees_only_its_own_channel():
    torch.manual_seed(0)
    model = SOFTNet().eval()
    x = torch.rand(1, 3, 42, 42)
    base = model.stream_maps(x)
    x2 = x.clone()
    x2[:, 2] = 0  # change the strain channel only
    changed = (model.stream_maps(x2) - base).abs().sum(dim=(0, 2, 3))
    assert torch.all(changed[:8] == 0) and changed[8:].sum() > 0


def test_keras_init_zeroes_biases():
    model = SOFTNet(init="keras")
    assert all(
        float(m.bias.detach().abs().sum()) == 0
        for m in model.modules()
        if hasattr(m, "bias") and m.bias is not None
    )
    with pytest.raises(ValueError):
        SOFTNet(init="he")


@pytest.mark.parametrize("name", BACKBONES)
def test_backbones_take_42x42_and_give_one_score(name):
    model = build_backbone(name).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 42, 42)).shape == (2,)


def test_keras_style_counts_match_table3_where_the_heads_agree():
    # MobileNetV2 and VGG-16 bodies are the same in Keras and torchvision, so the counts
    # (with BN running statistics, as Keras counts them) match the paper to 4 decimals.
    for name in ("mobilenet_v2", "vgg16"):
        assert round(keras_style_count(build_backbone(name)) / 1e6, 4) == PAPER_TABLE3[name][3]
