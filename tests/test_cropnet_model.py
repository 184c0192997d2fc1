"""CropNet: shapes, the 9 position embeddings, options, local pretrained weights, training bits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from melib.models.cropnet import CropNet, CropNetConfig, CropView, build_extractor, count_parameters


def _model(**kw) -> CropNet:
    torch.manual_seed(0)
    cfg = dict(num_classes=5, backbone="tiny", input_size=64, crop_size=32)
    cfg.update(kw)
    return CropNet(CropNetConfig(**cfg)).eval()


def test_forward_shapes_and_crops():
    model = _model()
    x = torch.randn(2, 3, 64, 64)
    assert model.crops(x).shape == (2, 10, 3, 32, 32)
    z = model.crop_features(model.crops(x))
    assert z.shape == (2, 10, model.config.embed_dim)
    assert model.embed(x).shape == (2, 10 * model.config.embed_dim)
    assert model(x).shape == (2, 5)


def test_nine_position_embeddings_on_z1_to_z9_only():
    model = _model()
    assert model.position.shape == (9, model.config.embed_dim)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        z = model.crop_features(model.crops(x))
        saved = model.position.clone()
        model.position.zero_()
        z_plain = model.crop_features(model.crops(x))
        model.position.copy_(saved)
    torch.testing.assert_close(z[:, 0], z_plain[:, 0])  # z0 gets no embedding
    torch.testing.assert_close(z[:, 1:] - z_plain[:, 1:], saved[None], atol=1e-5, rtol=0)


def test_position_embedding_init_has_variance_0_2():
    torch.manual_seed(0)
    model = CropNet(
        CropNetConfig(num_classes=3, backbone="tiny", input_size=64, crop_size=32, embed_dim=4096)
    )
    values = model.position.detach().numpy().ravel()
    assert abs(values.mean()) < 0.02
    assert abs(values.var() - 0.2) < 0.01
    assert math.isclose(model.config.pos_std, math.sqrt(0.2))


@pytest.mark.parametrize("option, count", [("paper", 9), ("all", 10), ("none", 0)])
def test_position_embedding_options(option, count):
    model = _model(position_embedding=option)
    assert len(model.position) == count
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_without_cgpo_the_image_is_one_crop():
    model = _model(cgpo=False)
    x = torch.randn(2, 3, 64, 64)
    assert model.n_crops == 1 and len(model.position) == 0
    assert model.crops(x).shape == (2, 1, 3, 64, 64)
    assert model(x).shape == (2, 5)


def test_crop_view_makes_the_crops_the_batch():
    model = _model()
    x = torch.randn(1, 3, 64, 64)
    crops = model.crops(x)[0]
    with torch.no_grad():
        torch.testing.assert_close(CropView(model)(crops), model(x))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="backbone"):
        _model(backbone="resnet")
    with pytest.raises(ValueError, match="position_embedding"):
        _model(position_embedding="sinusoid")


def test_pretrained_weights_load_only_from_a_local_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        build_extractor("tiny", pretrained=str(tmp_path / "missing.pth"))
    torch.manual_seed(1)
    source = build_extractor("tiny")
    path = tmp_path / "tiny.pth"
    torch.save(source.state_dict(), path)
    torch.manual_seed(2)
    loaded = build_extractor("tiny", pretrained=str(path))
    for (name, a), (_, b) in zip(source.state_dict().items(), loaded.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_rexnet_backbones_are_rexnet_shaped():
    slim = build_extractor("slim")
    assert count_parameters(slim) < 1_000_000
    full = build_extractor("rexnet_100")
    assert 3_000_000 < count_parameters(full) < 4_000_000
    # MobileNetV2 inverted bottlenecks: expansion 1 in the first block, 6 after it,
    # and output channels that widen block by block (ReXNet)
    blocks = [b for b in full.features if hasattr(b, "conv_pwl")]
    assert getattr(blocks[0], "conv_exp", None) is None
    for block in blocks[1:]:
        assert block.conv_exp.conv.out_channels == 6 * block.in_channels
    widths = [b.out_channels for b in blocks]
    assert widths == sorted(widths) and widths[-1] > 4 * widths[0]


def test_adamp_and_label_smoothing_train_through_fit():
    from melib.training import TrainConfig, fit

    model = _model(num_classes=3)
    x = torch.randn(6, 3, 64, 64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    cfg = TrainConfig(epochs=2, batch_size=3, lr=1e-3, optimizer="adamp", loss="ce")
    history = fit(
        model,
        (x.numpy(), y.numpy()),
        cfg,
        progress=False,
        criterion=torch.nn.CrossEntropyLoss(label_smoothing=0.1),
    )
    assert len(history["epoch_loss"]) == 2 and all(np.isfinite(history["epoch_loss"]))


def test_augmentation_keeps_shape_and_dtype():
    from melib.pipelines.cropnet import augmentation

    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    out = augmentation()(image)
    assert out.shape == image.shape and out.dtype == torch.uint8
