"""The generic loop, prediction and the LOSO fold runner's checkpoints."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from melib.training import TrainConfig, fit, fold_seed, predict, train_folds


def toy_data(n: int = 96, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32)).astype(np.float32)
    return x, y


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x):
        return self.lin(x).squeeze(1)


CFG = TrainConfig(epochs=3, batch_size=8, lr=0.05, device="cpu")


def test_fit_lowers_the_loss_and_predict_batches():
    torch.manual_seed(0)
    model = Linear()
    hist = fit(model, toy_data(), CFG, progress=False)
    assert len(hist["epoch_loss"]) == 3 and len(hist["batch_loss"]) == 3 * 12
    assert hist["epoch_loss"][-1] < 0.2 * hist["epoch_loss"][0]
    x, _ = toy_data()
    out = predict(model, x, batch_size=10, device="cpu")
    assert out.shape == (96,)
    np.testing.assert_allclose(out, model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_fit_is_reproducible():
    outs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = Linear()
        fit(model, toy_data(), CFG, progress=False)
        outs.append(model.lin.weight.detach().clone())
    assert torch.equal(outs[0], outs[1])


def test_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    torch.manual_seed(2)
    straight = Linear()
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    fit(straight, toy_data(), CFG, progress=False)

    resumed = Linear()
    resumed.load_state_dict(init)
    ckpt = tmp_path / "partial.pt"
    one = TrainConfig(**{**CFG.__dict__, "epochs": 1})  # "killed" after epoch 1
    fit(resumed, toy_data(), one, progress=False, checkpoint=ckpt)
    again = Linear()  # a new process: fresh weights, state comes from the file
    hist = fit(again, toy_data(), CFG, progress=False, checkpoint=ckpt)
    assert len(hist["epoch_loss"]) == 3
    assert torch.equal(again.lin.weight, straight.lin.weight)


def test_fold_seed_depends_on_the_fold_name_not_its_position():
    assert fold_seed(0, "s15") == fold_seed(0, "s15")
    assert fold_seed(0, "s15") != fold_seed(0, "s16") != fold_seed(1, "s16")


def test_train_folds_checkpoints_and_skips_finished_folds(tmp_path):
    folds = ["a", "b", "c"]
    calls = []

    def make_data(fold):
        calls.append(fold)
        return toy_data(seed=ord(fold))

    first = {
        r.fold: r for r in train_folds(folds, Linear, make_data, CFG, tmp_path, key="v1", progress=False)
    }
    assert calls == folds and not any(r.skipped for r in first.values())
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.pt")) == folds
    assert not list(tmp_path.glob("*partial*"))
    # Fresh models are initialised differently per fold (weights re-initialised).
    assert not torch.equal(first["a"].model.lin.weight, first["b"].model.lin.weight)

    # "Interrupt" after fold a: delete b's and c's checkpoints, then run again.
    for r in (first["b"], first["c"]):
        r.checkpoint.unlink()
    calls.clear()
    second = {
        r.fold: r for r in train_folds(folds, Linear, make_data, CFG, tmp_path, key="v1", progress=False)
    }
    assert calls == ["b", "c"]  # fold a was loaded, not retrained
    assert second["a"].skipped and not second["b"].skipped
    for f in folds:  # resumed run == uninterrupted run
        assert torch.equal(second[f].model.lin.weight, first[f].model.lin.weight)
    assert second["a"].history == first["a"].history

    # Another experiment key trains again.
    calls.clear()
    list(train_folds(["a"], Linear, make_data, CFG, tmp_path, key="v2", progress=False))
    assert calls == ["a"]


# ------------------------------------------------------------------ GPU readiness (run on the CPU)


def test_key_of_default_settings_is_unchanged():
    """Checkpoints written before amp / channels_last existed keep their key."""
    from melib.runtime import stable_hash

    default = TrainConfig().key()
    assert set(default) == {
        "epochs",
        "batch_size",
        "lr",
        "optimizer",
        "momentum",
        "weight_decay",
        "loss",
        "seed",
        "shuffle",
    }
    assert stable_hash(TrainConfig(epochs=3).key(), "k") == stable_hash(
        {"epochs": 3, "batch_size": 12, "lr": 5e-4, "optimizer": "sgd", "momentum": 0.0}
        | {"weight_decay": 0.0, "loss": "mse", "seed": 0, "shuffle": True},
        "k",
    )
    # execution details stay out; an explicit precision is part of the experiment
    assert TrainConfig(channels_last=True, num_workers="auto").key() == default
    assert TrainConfig(amp="bf16").key() == {**default, "amp": "bf16"}


def test_cpu_defaults_train_exactly_as_float32_without_workers():
    outs = []
    for extra in ({}, {"amp": None, "num_workers": "auto", "channels_last": True}):
        torch.manual_seed(3)
        model = Linear()
        hist = fit(model, toy_data(), TrainConfig(**{**CFG.__dict__, **extra}), progress=False)
        outs.append((hist, model.lin.weight.detach().clone()))
    assert outs[0][0] == outs[1][0] and torch.equal(outs[0][1], outs[1][1])


def test_bf16_autocast_trains_on_the_cpu_and_keeps_float32_weights():
    torch.manual_seed(4)
    model = Linear()
    cfg = TrainConfig(**{**CFG.__dict__, "amp": "bf16"})
    hist = fit(model, toy_data(), cfg, progress=False)
    assert hist["epoch_loss"][-1] < 0.3 * hist["epoch_loss"][0]
    assert model.lin.weight.dtype == torch.float32
    x, _ = toy_data()
    out = predict(model, x, device="cpu", amp="bf16")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, predict(model, x, device="cpu", amp=None), atol=0.1, rtol=0.05)


def test_amp_and_worker_settings_are_checked():
    import pytest

    from melib.training import loader_workers, resolve_amp

    with pytest.raises(ValueError, match="fp16.*CUDA"):
        fit(Linear(), toy_data(), TrainConfig(**{**CFG.__dict__, "amp": "fp16"}), progress=False)
    with pytest.raises(ValueError, match="amp='half'"):
        resolve_amp("half", "cpu")
    assert resolve_amp("auto", "cpu") is None and resolve_amp("bf16", "cpu") == "bf16"
    assert loader_workers("auto", "cpu") == 0 and loader_workers(3, "cpu") == 3
    assert 0 <= loader_workers("auto", "cuda") <= 4
    with pytest.raises(ValueError, match="num_workers"):
        loader_workers(-1, "cpu")


def test_resume_reads_the_checkpoint_on_the_cpu_whatever_the_device(tmp_path, monkeypatch):
    """A partial checkpoint is read with map_location='cpu' (RNG states must stay CPU
    tensors; the model's and optimizer's states are then moved to the training device),
    and resuming from it gives the weights of an uninterrupted run."""
    import melib.training as training

    torch.manual_seed(5)
    straight = Linear()
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    cfg = TrainConfig(**{**CFG.__dict__, "optimizer": "adam"})
    fit(straight, toy_data(), cfg, progress=False)

    first = Linear()
    first.load_state_dict(init)
    ckpt = tmp_path / "partial.pt"
    fit(first, toy_data(), TrainConfig(**{**cfg.__dict__, "epochs": 1}), progress=False, checkpoint=ckpt)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert saved["torch_rng"].device.type == "cpu" and "exp_avg" in saved["optimizer"]["state"][0]

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("map_location"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(training.torch, "load", spy)
    again = Linear()
    fit(again, toy_data(), cfg, progress=False, checkpoint=ckpt)
    assert calls == ["cpu"]
    assert torch.equal(again.lin.weight, straight.lin.weight)


class _OutOfMemory(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_cuda_out_of_memory_names_the_batch_size_to_lower():
    import pytest

    from melib.training import GPUMemoryError

    with pytest.raises(
        GPUMemoryError, match=r"batch_size=8: lower the batch size, e\.g\. batch_size=4"
    ) as err:
        fit(_OutOfMemory(), toy_data(), CFG, progress=False, desc="fold s15")
    assert "training 'fold s15'" in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)  # the CLI prints it as one line
    with pytest.raises(GPUMemoryError, match=r"predict\(\.\.\., batch_size=5\)"):
        predict(_OutOfMemory(), toy_data()[0], batch_size=10, device="cpu")
    with pytest.raises(GPUMemoryError, match="already 1"):
        fit(_OutOfMemory(), toy_data(), TrainConfig(**{**CFG.__dict__, "batch_size": 1}), progress=False)


def test_cuda_index_is_checked_against_the_devices_present(monkeypatch):
    import pytest

    from melib import runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(runtime.DeviceError, match=r"device='cuda:1' was requested but CUDA is not available"):
        runtime.resolve_device("cuda:1")
    assert runtime.resolve_device("auto").type == "cpu"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Test GPU")
    with pytest.raises(runtime.DeviceError, match=r"has 1 CUDA device\(s\), cuda:0 \(Test GPU\)"):
        runtime.resolve_device("cuda:1")
    assert runtime.resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(RuntimeError):  # still a RuntimeError for older callers, and a ValueError
        runtime.resolve_device("cuda:7")
    with pytest.raises(ValueError, match="not a device name"):
        runtime.resolve_device("gpu0")
