"""DynGeoNet / DynNet / GeoNet and the VGG16-on-frames baseline: shapes, which branch
learns, packed inputs for melib.training, local VGG-16 weights, Grad-CAM layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from melib.models.dyngeonet import (
    BRANCHES,
    DynamicView,
    DynGeoNet,
    VGGBranch,
    VGGFrames,
    fused_features,
    gradcam_layer,
    pack_inputs,
    unpack_inputs,
    vgg_pool_size,
)

torch.set_num_threads(1)
SIZE = 32  # the smallest input VGG-16 accepts: keeps the tests fast
SMALL = dict(input_size=SIZE, vgg_width=16, hidden=8, geo_hidden=8, vgg_channels=8)


def _model(branch: str = "fusion", **kw) -> DynGeoNet:
    torch.manual_seed(0)
    return DynGeoNet(branch, **{**SMALL, **kw}).eval()


def _inputs(n: int = 2):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, SIZE, SIZE, generator=g), torch.rand(n, 67, generator=g)


@pytest.fixture(scope="module")
def models():
    return {b: _model(b) for b in BRANCHES}


def test_shapes_for_each_branch(models):
    x, g = _inputs(3)
    for branch, model in models.items():
        assert model(x, g).shape == (3,), branch
        assert model.embed(x, g).shape == (3, 8)
        assert fused_features(model, x.numpy(), g.numpy()).shape == (3, 8)
        p = model.predict_proba(x, g)
        assert torch.all((p > 0) & (p < 1))
    assert models["geo"].vgg is None and models["dyn"].mlp is None
    assert models["fusion"].fuse(x, g).shape == (3, 16 + 8)
    assert models["dyn"].fuse(x, g).shape == (3, 16)
    assert models["geo"].fuse(x, g).shape == (3, 8)


def test_gradient_reaches_only_the_used_inputs(models):
    for branch, model in models.items():
        x, g = _inputs()
        x.requires_grad_(True)
        g.requires_grad_(True)
        model(x, g).sum().backward()
        x_used = x.grad is not None and x.grad.abs().sum() > 0
        g_used = g.grad is not None and g.grad.abs().sum() > 0
        assert (x_used, g_used) == {"fusion": (True, True), "dyn": (True, False), "geo": (False, True)}[
            branch
        ], branch
        model.zero_grad()


def test_the_unused_input_is_ignored(models):
    x, g = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(models["dyn"](x), models["dyn"](x, g))  # DynNet: images alone
        with pytest.raises(ValueError, match="reads the geometric vector"):
            models["fusion"](x)
        torch.testing.assert_close(models["dyn"](x, g), models["dyn"](x, torch.zeros_like(g)))
        torch.testing.assert_close(models["geo"](x, g), models["geo"](torch.zeros_like(x), g))
        assert not torch.allclose(models["fusion"](x, g), models["fusion"](x, torch.zeros_like(g)))


def test_packed_inputs_train_with_melib_fit():
    from melib.training import TrainConfig, fit, predict

    x, g = _inputs(4)
    packed = pack_inputs(x, g)
    assert packed.shape == (4, 3 * SIZE * SIZE + 67) and packed.dtype == np.float32
    d, geo = unpack_inputs(torch.from_numpy(packed), SIZE, 67)
    torch.testing.assert_close(d, x)
    torch.testing.assert_close(geo, g)
    model = _model("fusion", dropout=0.0)
    with torch.no_grad():
        torch.testing.assert_close(model(torch.from_numpy(packed)), model(x, g))
    mlp_before = model.mlp[0].weight.detach().clone()
    conv_before = gradcam_layer(model).weight.detach().clone()
    y = np.array([1, 0, 1, 0], np.float32)
    history = fit(model, (packed, y), TrainConfig(epochs=1, batch_size=2, lr=0.1, loss="bce"), progress=False)
    assert len(history["batch_loss"]) == 2 and np.isfinite(history["epoch_loss"][0])
    assert not torch.equal(model.mlp[0].weight, mlp_before)
    assert not torch.equal(gradcam_layer(model).weight, conv_before)
    assert predict(model, packed).shape == (4,)
    assert predict(model, packed, method="embed").shape == (4, 8)
    with pytest.raises(ValueError, match="pack_inputs"):
        model(torch.zeros(2, 100))


def test_local_vgg_weights(tmp_path):
    torch.manual_seed(5)
    source = VGGBranch(SIZE, width=16)
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    state["classifier.3.weight"] = source.head[3].weight.detach().clone()
    state["classifier.3.bias"] = source.head[3].bias.detach().clone()
    state["classifier.0.weight"] = torch.zeros(16, 999)  # fc6 of another input size
    state["classifier.0.bias"] = torch.zeros(16)
    path = tmp_path / "vgg16.pt"
    torch.save(state, path)
    model = _model("dyn", vgg_weights=str(path), vgg_channels=1)
    for name, tensor in source.features.state_dict().items():
        torch.testing.assert_close(model.vgg.features.state_dict()[name], tensor)
    torch.testing.assert_close(model.vgg.head[3].weight, source.head[3].weight)
    assert not torch.equal(model.vgg.head[0].weight[:, :1], torch.zeros(16, 1))
    torch.manual_seed(0)
    assert VGGBranch(SIZE, width=16).load_vgg(path) == ["classifier.0"]
    frames = VGGFrames(SIZE, vgg_weights=path, vgg_width=16)
    with pytest.raises(ValueError, match="needs vgg_channels=1"):
        VGGFrames(SIZE, vgg_weights=path, vgg_width=16, vgg_channels=8)
    torch.testing.assert_close(frames.vgg.features[0].weight, source.features[0].weight)


def test_weight_errors(tmp_path):
    missing = tmp_path / "nowhere" / "vgg16.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.*local torchvision VGG-16"):
        DynGeoNet("fusion", vgg_weights=str(missing), **SMALL)
    wrong = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="not a torchvision VGG-16"):
        DynGeoNet("dyn", vgg_weights=str(wrong), **{**SMALL, "vgg_channels": 1})


def test_channel_divisor_keeps_the_vgg16_topology():
    from torchvision.models.vgg import cfgs

    for divisor in (1, 8):
        branch = VGGBranch(64, width=16, channels=divisor)
        convs = [m for m in branch.features if isinstance(m, nn.Conv2d)]
        pools = [m for m in branch.features if isinstance(m, nn.MaxPool2d)]
        assert [c.out_channels for c in convs] == [c // divisor for c in cfgs["D"] if c != "M"]
        assert len(convs) == 13 and len(pools) == 5
        assert branch.head[0].in_features == 512 // divisor * 2 * 2  # 64 px -> 2x2 maps
        assert branch(torch.rand(1, 3, 64, 64)).shape == (1, 16)
    with pytest.raises(ValueError, match="divisor of 64"):
        VGGBranch(64, channels=3)


def test_batch_norm_is_opt_in_and_refuses_plain_vgg_weights(tmp_path):
    plain = VGGBranch(64, width=16, channels=8)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.features)
    bn = VGGBranch(64, width=16, channels=8, batch_norm=True)
    norms = [m for m in bn.features if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in bn.features if isinstance(m, nn.Conv2d)]
    assert len(norms) == len(convs) == 13
    assert [n.num_features for n in norms] == [c.out_channels for c in convs]
    assert bn.last_conv is convs[-1]
    model = DynGeoNet("dyn", input_size=64, vgg_width=16, vgg_channels=8, vgg_batch_norm=True)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model(torch.rand(2, 3, 64, 64), torch.zeros(2, 67)).shape == (2,)
    weights = tmp_path / "vgg.pt"
    torch.save({}, weights)
    with pytest.raises(ValueError, match="vgg_batch_norm=False"):
        DynGeoNet("dyn", input_size=224, vgg_weights=str(weights), vgg_batch_norm=True)


def test_bad_configuration():
    with pytest.raises(ValueError, match="branch"):
        DynGeoNet("both", **SMALL)
    with pytest.raises(ValueError, match=">= 32"):
        DynGeoNet("geo", input_size=16)
    assert [vgg_pool_size(s) for s in (32, 64, 112, 224, 448)] == [1, 2, 3, 7, 7]
    with pytest.raises(ValueError, match="geometry must be"):
        _model("geo")(_inputs()[0], torch.zeros(2, 5))
    with pytest.raises(ValueError, match="pack_inputs: geometry"):
        pack_inputs(np.zeros((2, 3, SIZE, SIZE)), np.zeros((3, 67)))


def test_vgg_frames_and_gradcam(models):
    from melib.visualization.cams import grad_cam

    torch.manual_seed(0)
    baseline = VGGFrames(SIZE, vgg_width=16).eval()
    x, g = _inputs()
    assert baseline(x).shape == (2,) and baseline(x, g).shape == (2,)
    model = models["fusion"]
    layer = gradcam_layer(model)
    assert isinstance(layer, nn.Conv2d) and layer.out_channels == 512 // 8
    assert layer is [m for m in model.vgg.features if isinstance(m, nn.Conv2d)][-1]
    assert gradcam_layer(DynamicView(model, g)) is layer
    with pytest.raises(ValueError, match="no VGG-16 branch"):
        gradcam_layer(models["geo"])
    cams = grad_cam(DynamicView(model, g), x, layer)
    assert cams.shape == (2, SIZE, SIZE) and np.all((cams >= 0) & (cams <= 1))
