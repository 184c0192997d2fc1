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
