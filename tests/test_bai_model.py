"""Bai (2020) models: frame classifier experiments, sequence decoders, weight loading."""

import pickle

import numpy as np
import pytest
import torch

from melib.models.bai import (
    DECODERS,
    STAGES,
    FrameClassifier,
    SequenceClassifier,
    SequenceDecoder,
    SpatialAttention,
    TemporalConvNet,
    load_resnet50_weights,
    resnet50_encoder,
    stage_channels,
)

torch.set_num_threads(1)
SIZE = 32  # pixels: ResNet-50 needs >= 32 for a 1x1 layer4 map


def _trainable_prefixes(model):
    return {
        name.split(".")[0] + ("." + name.split(".")[1] if name.startswith("cnn.") else "")
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def test_stages_follow_torchvision_resnet50():
    import torchvision

    encoder = resnet50_encoder()
    assert tuple(name for name, _ in encoder.named_children()) == STAGES
    x = torch.randn(1, 3, 64, 64)
    net = torchvision.models.resnet50(weights=None)
    ours = {
        k.replace("conv1.0.", "conv1.").replace("conv1.1.", "bn1."): v.shape
        for k, v in encoder.state_dict().items()
    }
    theirs = {k: v.shape for k, v in net.state_dict().items() if not k.startswith("fc.")}
    assert ours == theirs
    assert encoder.eval()(x).shape == (1, 2048, 2, 2)
    assert [stage_channels(s) for s in STAGES] == [64, 256, 512, 1024, 2048]


def test_width_divides_bottleneck_channels():
    encoder = resnet50_encoder(width=8)
    assert encoder.eval()(torch.randn(1, 3, SIZE, SIZE)).shape == (1, 256, 1, 1)
    assert stage_channels("layer2", 8) == 64 and stage_channels("conv1", 8) == 64
    model = FrameClassifier("III", "layer2", 3, width=8)
    assert model.cnn_channels == 64 and model(torch.randn(2, 3, SIZE, SIZE)).shape == (2, 3)
    with pytest.raises(ValueError, match="width"):
        resnet50_encoder(width=3)


@pytest.mark.parametrize(
    "experiment, layer, kept, trainable",
    [
        ("I", "layer2", STAGES, ()),
        ("II", "layer2", STAGES, ("layer2", "layer3", "layer4")),
        ("II", "conv1", STAGES, STAGES),
        ("III", "layer3", STAGES[:4], ("layer3",)),
        ("III", "conv1", STAGES[:1], ("conv1",)),
    ],
)
def test_experiments_freeze_and_drop_the_documented_stages(experiment, layer, kept, trainable):
    model = FrameClassifier(experiment, layer, n_classes=3, fc=(16, 8), width=16)
    assert tuple(model.stage_modules()) == kept
    assert model.trainable_stages() == trainable
    for name, stage in model.stage_modules().items():
        flags = {p.requires_grad for p in stage.parameters()}
        assert flags == {name in trainable}, name
    head = [p.requires_grad for p in list(model.head.parameters()) + list(model.classifier.parameters())]
    assert all(head)
    x = torch.randn(2, 3, SIZE, SIZE)
    assert model(x).shape == (2, 3) and model.features(x).shape == (2, 8) and model.feature_dim == 8


def test_frozen_stages_do_not_change_during_training():
    torch.manual_seed(0)
    model = FrameClassifier("II", "layer3", n_classes=3, fc=(16, 8), width=16).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.randn(4, 3, SIZE, SIZE), torch.tensor([0, 1, 2, 0])
    for _ in range(2):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    after = model.state_dict()
    for key in before:  # weights and BatchNorm running statistics alike
        changed = not torch.equal(before[key], after[key])
        frozen = key.startswith(("cnn.conv1.", "cnn.layer1.", "cnn.layer2."))
        if frozen:
            assert not changed, key
    assert not torch.equal(before["cnn.layer3.0.conv1.weight"], after["cnn.layer3.0.conv1.weight"])
    assert not torch.equal(before["cnn.layer4.0.bn1.running_mean"], after["cnn.layer4.0.bn1.running_mean"])


def test_bad_experiment_or_layer_raise():
    with pytest.raises(ValueError, match="experiment"):
        FrameClassifier("IV", "layer2", 3)
    with pytest.raises(ValueError, match="specific_layer"):
        FrameClassifier("II", "layer5", 3)


def test_spatial_attention_starts_as_average_pooling_and_weights_sum_to_one():
    maps = torch.randn(3, 8, 4, 5)
    attention = SpatialAttention(8)
    torch.testing.assert_close(attention(maps), maps.mean(dim=(2, 3)))
    torch.nn.init.normal_(attention.score.weight)
    pooled = attention(maps)
    weights = attention.last_weights
    assert weights.shape == (3, 4, 5)
    torch.testing.assert_close(weights.sum(dim=(1, 2)), torch.ones(3))
    torch.testing.assert_close(pooled, (maps * weights.unsqueeze(1)).sum(dim=(2, 3)))


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("attention", [False, True])
def test_sequence_classifier_shapes(decoder, attention):
    torch.manual_seed(0)
    encoder = FrameClassifier("III", "layer2", n_classes=3, fc=(16, 8), width=16)
    model = SequenceClassifier(
        encoder, decoder, attention=attention, hidden=6, n_classes=3, n_frames=5
    ).eval()
    assert encoder.attention == attention
    x = torch.randn(2, 5, 3, SIZE, SIZE)
    logits = model(x)
    assert logits.shape == (2, 3)
    width = 12 if decoder == "bilstm" else 6
    embedding = model.embedding(x)
    assert embedding.shape == (2, width)
    torch.testing.assert_close(model.decoder.classifier(embedding), logits)
    torch.testing.assert_close(model.decoder(model.frame_features(x)), logits)


@pytest.mark.parametrize("decoder", DECODERS)
def test_decoder_on_cached_features_and_maps(decoder):
    torch.manual_seed(0)
    features = torch.randn(3, 7, 10)
    plain = SequenceDecoder(10, decoder, hidden=4, n_classes=5, n_frames=7)
    assert plain(features).shape == (3, 5)
    maps = torch.randn(3, 7, 10, 2, 2)
    pooled = SequenceDecoder(10, decoder, hidden=4, n_classes=5, n_frames=7, attention=True)
    assert pooled(maps).shape == (3, 5)
    assert pooled.embedding(maps).shape == (3, pooled.embedding_dim)
    with pytest.raises(ValueError, match=r"\(B, N, D\)"):
        plain(maps)
    with pytest.raises(ValueError, match=r"\(B, N, C, h, w\)"):
        pooled(features)


def test_generic_encoder_needs_feature_dim():
    flatten = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 6))
    with pytest.raises(ValueError, match="feature_dim"):
        SequenceClassifier(flatten, "gru")
    with pytest.raises(ValueError, match="FrameClassifier"):
        SequenceClassifier(flatten, "gru", attention=True, feature_dim=6)
    model = SequenceClassifier(flatten, "gru", feature_dim=6, hidden=4, n_classes=2)
    assert model(torch.randn(2, 3, 3, 8, 8)).shape == (2, 2)


def test_bilstm_embedding_holds_both_directions():
    torch.manual_seed(0)
    decoder = SequenceDecoder(4, "bilstm", hidden=3, n_classes=2)
    x = torch.randn(2, 6, 4)
    outputs = decoder.sequence_outputs(x)  # (B, N, 2 * hidden)
    embedding = decoder.embedding(x)
    torch.testing.assert_close(embedding[:, :3], outputs[:, -1, :3])  # forward: last step
    torch.testing.assert_close(embedding[:, 3:], outputs[:, 0, 3:])  # backward: first step


def test_tcn_is_causal_and_covers_the_sequence():
    torch.manual_seed(0)
    decoder = SequenceDecoder(5, "tcn", hidden=4, n_classes=2, n_frames=17).eval()
    blocks = len(decoder.temporal.blocks)
    assert TemporalConvNet.receptive_field(3, blocks) >= 17 > TemporalConvNet.receptive_field(3, blocks - 1)
    x = torch.randn(1, 17, 5)
    base = decoder.sequence_outputs(x)
    for t in (0, 6, 16):
        changed = x.clone()
        changed[:, t:] += torch.randn_like(changed[:, t:])
        out = decoder.sequence_outputs(changed)
        torch.testing.assert_close(out[:, :t], base[:, :t], rtol=0, atol=0)  # the past ignores the future
        assert not torch.allclose(out[:, t:], base[:, t:])
    first = x.clone()
    first[:, 0] += 5
    assert not torch.allclose(decoder.embedding(first), decoder.embedding(x))  # last step sees frame 0


def test_weights_load_from_local_file_with_common_layouts(tmp_path):
    import torchvision

    torch.manual_seed(1)
    source = torchvision.models.resnet50(weights=None, num_classes=8631)  # VGGFace2 identities
    state = source.state_dict()
    wrapped = tmp_path / "vggface2_dataparallel.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, wrapped)
    encoder = resnet50_encoder(str(wrapped))
    report = encoder.weights_report
    assert report.missing == [] and report.skipped == ["fc.weight", "fc.bias"] and report.unexpected == []
    torch.testing.assert_close(encoder.conv1[0].weight, state["conv1.weight"])
    torch.testing.assert_close(encoder.layer4[2].bn3.running_var, state["layer4.2.bn3.running_var"])
    model = FrameClassifier("II", "layer3", 7, weights_path=wrapped)
    torch.testing.assert_close(model.cnn.layer3[0].conv2.weight, state["layer3.0.conv2.weight"])
    assert model.weights_report.skipped == ["fc.weight", "fc.bias"]

    pickled = tmp_path / "resnet50_ft_weight.pkl"  # Caffe conversions: numpy arrays in a pickle
    with open(pickled, "wb") as f:
        pickle.dump({k: v.numpy() for k, v in state.items() if not k.startswith("layer4.")}, f)
    target = torchvision.models.resnet50(weights=None)
    with pytest.warns(UserWarning, match="random initialisation"):
        report = load_resnet50_weights(target, pickled)
    assert report.missing and all(k.startswith("layer4.") for k in report.missing)
    torch.testing.assert_close(target.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_weights_errors_name_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "vggface2.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.*from scratch"):
        resnet50_encoder(str(missing))
    wrong = tmp_path / "other.pth"
    torch.save({"encoder.features.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match="other.pth"):
        resnet50_encoder(wrong)
    with pytest.raises(ValueError, match="width=1"):
        resnet50_encoder(wrong, width=4)


def test_stage_modules_drive_grad_cam():
    from melib.visualization.cams import layer_cams

    torch.manual_seed(0)
    model = FrameClassifier("II", "layer2", n_classes=3, fc=(16, 8), width=16)
    images = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    # Frozen stages (conv1, layer1 here) need an input that requires grad, or their
    # outputs carry no gradient for Grad-CAM (see FrameClassifier.stage_modules).
    cams = layer_cams(model, torch.tensor(images, requires_grad=True), model.stage_modules())
    assert list(cams) == list(STAGES)
    for cam in cams.values():
        assert cam.shape == (2, 64, 64) and np.isfinite(cam).all()
