"""Generic, seedable training: one loop, batched prediction, and a leave-one-subject-out
fold runner with a checkpoint per fold.

Nothing here knows about micro-expressions. A paper's pipeline builds the datasets
(with its own labels: this layer sits below ``melib.evaluation`` and never imports
it), a model factory and a :class:`TrainConfig`; :func:`train_folds` then trains one
freshly initialised model per held-out fold.

Resuming. A finished fold is saved to ``<checkpoint_dir>/<fold>-<key>.pt`` (atomic
write), where ``key`` hashes the training config together with whatever the pipeline
says defines the experiment (features, labels, sampling). Running again with the same
key loads the checkpoint and skips training, so an interrupted LOSO run picks up at
the first unfinished fold. Within a fold, a ``-partial.pt`` file saved after each
epoch (with the optimizer and RNG states) lets even a long fold resume mid-way and
finish with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from melib.features.cache import safe_name
from melib.runtime import cache_ok, resolve_device, save_torch, seed_everything, stable_hash

__all__ = [
    "TrainConfig",
    "fit",
    "predict",
    "fold_seed",
    "FoldResult",
    "train_folds",
    "progress_bar",
    "GPUMemoryError",
    "AMP_MODES",
    "resolve_amp",
    "loader_workers",
]

AMP_MODES = ("auto", "bf16", "fp16", None)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults are SOFTNet's: plain SGD, lr 5e-4, MSE, 10 epochs, batch 12."""

    epochs: int = 10
    batch_size: int = 12
    lr: float = 5e-4
    optimizer: str = "sgd"  # sgd | adam | adamw | adamp (timm)
    momentum: float = 0.0
    weight_decay: float = 0.0
    loss: str = "mse"  # mse | l1 | bce (logits) | ce (class logits)
    seed: int = 0
    shuffle: bool = True
    device: str = "auto"
    num_workers: int | str = 0  # DataLoader workers; "auto": 0 on CPU, a few on CUDA
    threads: int | None = 1  # CPU threads for PyTorch while training; None leaves the setting alone
    max_steps: int | None = None  # stop after this many optimiser steps (plumbing runs); None: every epoch
    # Mixed precision: "auto" (bf16 on CUDA, none on CPU), "bf16", "fp16" (CUDA, with a
    # gradient scaler) or None (float32 everywhere).
    amp: str | None = "auto"
    channels_last: bool = False  # NHWC weights and 4-D inputs on CUDA (conv nets); ignored on CPU

    def key(self) -> dict:
        """What changes the learned weights (device, loader workers, threads and the memory
        layout do not). ``max_steps`` and ``amp`` at their defaults are left out, so
        checkpoints written before those fields existed keep their key."""
        d = asdict(self)
        for name in ("device", "num_workers", "threads", "channels_last"):
            d.pop(name)
        if d["max_steps"] is None:
            d.pop("max_steps")
        if d["amp"] == "auto":
            d.pop("amp")
        return d


class GPUMemoryError(ValueError):
    """CUDA ran out of memory; the message names the batch size to lower."""


def resolve_amp(amp: str | None, device) -> str | None:
    """The mixed precision that runs: ``"bf16"``, ``"fp16"`` or None (float32).

    ``"auto"`` is bf16 on a CUDA device that supports it (fp16 on older ones) and None
    on the CPU, so that CPU runs stay bit-identical to float32 training. ``"bf16"`` works
    on the CPU too (slower there; for tests); ``"fp16"`` needs CUDA.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"TrainConfig.amp={amp!r}: use 'auto', 'bf16', 'fp16' or None")
    device = torch.device(device)
    if amp == "auto":
        if device.type != "cuda":
            return None
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"TrainConfig.amp='fp16' needs a CUDA device, not {device}; use 'bf16' or None")
    return amp


def _autocast(amp: str | None, device):
    if amp is None:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def loader_workers(num_workers: int | str, device) -> int:
    """DataLoader worker processes: ``"auto"`` is 0 on the CPU (the training process
    decodes its own batches, as before) and up to 4 on CUDA, keeping a core free."""
    if num_workers == "auto":
        if torch.device(device).type != "cuda":
            return 0
        return max(0, min(4, (os.cpu_count() or 1) - 1))
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"TrainConfig.num_workers={num_workers!r}: use a whole number >= 0 or 'auto'")
    return num_workers


def _seed_worker(worker_id: int) -> None:
    """Give each loader worker its own streams: Python's, NumPy's and a dataset's ``rng``
    (a ``numpy.random.Generator`` attribute), all from the worker's torch seed, so that
    workers do not replay one augmentation sequence."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(getattr(info.dataset, "rng", None), np.random.Generator):
        info.dataset.rng = np.random.default_rng(seed)


def _loader_options(num_workers: int | str, device) -> dict:
    """``num_workers``, ``pin_memory`` and the worker seeding for a DataLoader on ``device``
    (on the CPU with no workers: exactly the options used before, nothing more)."""
    workers = loader_workers(num_workers, device)
    options = {"num_workers": workers}
    if torch.device(device).type == "cuda":
        options["pin_memory"] = True
    if workers > 0:
        options.update(worker_init_fn=_seed_worker, persistent_workers=True)
    return options


def _oom_error(exc: BaseException, what: str, batch_size: int, device, fix: str) -> GPUMemoryError:
    """A one-line :class:`GPUMemoryError` naming the batch size and a smaller one
    (``fix``: how to set it, with ``{n}`` for the value)."""
    smaller = max(1, batch_size // 2)
    total = ""
    with contextlib.suppress(Exception):
        dev = torch.device(device)
        props = torch.cuda.get_device_properties(dev.index if dev.index is not None else 0)
        total = f" ({props.total_memory / 2**30:.0f} GiB)"
    with contextlib.suppress(Exception):
        torch.cuda.empty_cache()
    hint = (
        f"lower the batch size, e.g. {fix.format(n=smaller)}"
        if batch_size > 1
        else "the batch size is already 1: use a smaller input size or model, or a larger GPU"
    )
    return GPUMemoryError(
        f"CUDA ran out of memory on {device}{total} while {what} with batch_size={batch_size}: {hint}"
    )


def _oom_types() -> tuple:
    error = getattr(torch.cuda, "OutOfMemoryError", None)
    return (error,) if error is not None else ()


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """Run a block with ``torch.set_num_threads(n)``, then restore the previous count.

    One thread is the default for training: on a shared 2-core machine, two OpenMP
    threads spinning against other processes made a SOFTNet step 15x slower (300 ms
    instead of 20 ms), and small models gain little from a second thread anyway.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def progress_bar(iterable: Iterable | None = None, **kwargs):
    """A plain-text tqdm bar on stderr (nbval sanitizers drop stderr; widgets would
    leave JavaScript state in the executed notebook)."""
    from tqdm import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", False)
    return tqdm(iterable, **kwargs)


def _loss_fn(name: str) -> nn.Module:
    losses = {"mse": nn.MSELoss, "l1": nn.L1Loss, "bce": nn.BCEWithLogitsLoss, "ce": nn.CrossEntropyLoss}
    if name not in losses:
        raise ValueError(f"TrainConfig.loss={name!r}: use one of {', '.join(losses)}")
    return losses[name]()


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamp":
        from timm.optim import AdamP

        return AdamP(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"TrainConfig.optimizer={cfg.optimizer!r}: use 'sgd', 'adam', 'adamw' or 'adamp'")


def _as_dataset(data) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (torch.as_tensor(np.asarray(a)) for a in data)
        return TensorDataset(x.float(), y)
    raise TypeError("training data must be a torch Dataset or an (inputs, targets) pair of arrays")


def fit(
    model: nn.Module,
    data,
    config: TrainConfig = TrainConfig(),
    *,
    desc: str = "train",
    progress: bool = True,
    checkpoint: str | Path | None = None,
    criterion: nn.Module | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> dict:
    """Train ``model`` in place; return ``{"epoch_loss": [...], "batch_loss": [...]}``.

    ``data`` is a Dataset of ``(input, target)`` or an ``(X, y)`` pair. Shuffling uses
    a generator seeded from ``config.seed``, so a run is reproducible regardless of
    global RNG use elsewhere. With ``checkpoint``, the state after every epoch is saved
    there and a matching file is resumed from. ``criterion`` replaces the loss named by
    ``config.loss`` (e.g. label-smoothed cross-entropy); it is not part of
    ``config.key()``, so a caller that passes one must put it in its checkpoint key.
    ``on_epoch(epoch, loss)`` is called after each epoch; a caller that reports
    progress itself (like :func:`train_folds`) passes it with ``progress=False``, so
    that only one bar is drawn.
    PyTorch runs with ``config.threads`` CPU threads (see :func:`cpu_threads`).
    """
    with cpu_threads(config.threads):
        return _train(model, data, config, desc, progress, checkpoint, criterion, on_epoch)


def _train(model, data, config, desc, progress, checkpoint, criterion, on_epoch) -> dict:
    device = resolve_device(config.device)
    try:
        return _train_on(device, model, data, config, desc, progress, checkpoint, criterion, on_epoch)
    except _oom_types() as exc:
        raise _oom_error(exc, f"training {desc!r}", config.batch_size, device, "batch_size={n}") from exc


def _train_on(device, model, data, config, desc, progress, checkpoint, criterion, on_epoch) -> dict:
    amp = resolve_amp(config.amp, device)
    cuda = device.type == "cuda"
    nhwc = bool(config.channels_last) and cuda
    dataset = _as_dataset(data)
    if len(dataset) == 0:
        raise ValueError(f"{desc}: the training set is empty (check the labels and the sampling)")
    gen = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=config.shuffle,
        generator=gen,
        **_loader_options(config.num_workers, device),
    )
    model.to(device)
    if nhwc:
        model.to(memory_format=torch.channels_last)
    opt = _optimizer(model, config)
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
    loss_fn = criterion if criterion is not None else _loss_fn(config.loss)
    history = {"epoch_loss": [], "batch_loss": []}
    start = 0
    if checkpoint is not None and cache_ok(checkpoint):
        # Read on the CPU whatever device wrote it: the RNG states must stay CPU tensors,
        # and loading the model's and the optimizer's states moves them to ``device``.
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if cuda and "cuda_rng" in state:
            with contextlib.suppress(RuntimeError, IndexError):
                torch.cuda.set_rng_state(state["cuda_rng"], device)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, start = state["history"], state["epoch"]
    bar = progress_bar(
        total=config.epochs * len(loader),
        initial=start * len(loader),
        desc=desc,
        disable=not progress,
        leave=False,
    )
    steps = start * len(loader)
    try:
        for epoch in range(start, config.epochs):
            if config.max_steps is not None and steps >= config.max_steps:
                break
            model.train()
            total, count = 0.0, 0
            for x, y in loader:
                if config.max_steps is not None and steps >= config.max_steps:
                    break
                steps += 1
                if cuda:
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    if nhwc and x.ndim == 4:
                        x = x.contiguous(memory_format=torch.channels_last)
                else:
                    x, y = x.to(device), y.to(device)
                opt.zero_grad(set_to_none=True)
                if amp is None:
                    out = model(x)
                    if config.loss != "ce":
                        y = y.to(out.dtype).reshape(out.shape)
                    loss = loss_fn(out, y)
                else:
                    with _autocast(amp, device):
                        out = model(x)
                    out = out.float()  # the loss in float32, the targets never rounded
                    if config.loss != "ce":
                        y = y.to(out.dtype).reshape(out.shape)
                    loss = loss_fn(out, y)
                if scaler is None:
                    loss.backward()
                    opt.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                value = float(loss.detach())
                history["batch_loss"].append(value)
                total += value * len(x)
                count += len(x)
                bar.update()
            history["epoch_loss"].append(total / max(count, 1))
            bar.set_postfix(epoch=epoch + 1, loss=f"{history['epoch_loss'][-1]:.4f}", refresh=False)
            if on_epoch is not None:
                on_epoch(epoch + 1, history["epoch_loss"][-1])
            if checkpoint is not None:
                state = {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "epoch": epoch + 1,
                }
                if cuda:
                    state["cuda_rng"] = torch.cuda.get_rng_state(device)
                if scaler is not None:
                    state["scaler"] = scaler.state_dict()
                save_torch(checkpoint, state)
    finally:
        bar.close()
    return history


@torch.no_grad()
def predict(
    model: nn.Module,
    data,
    batch_size: int = 512,
    device: str = "auto",
    method: str | None = None,
    threads: int | None = 1,
    amp: str | None = "auto",
) -> np.ndarray:
    """Model outputs (or ``getattr(model, method)`` outputs, e.g. ``"embed"``) as NumPy.

    ``data`` is an array / tensor of inputs, or a Dataset whose items are inputs or
    ``(input, target)`` pairs. Batched so that a long video never sits on the device
    at once. ``amp`` as :attr:`TrainConfig.amp` (``"auto"``: bf16 on CUDA, float32 on
    the CPU); outputs are float32 either way. When CUDA runs out of memory, a
    :class:`GPUMemoryError` names ``batch_size``.
    """
    dev = resolve_device(device)
    with cpu_threads(threads):
        try:
            return _predict(model, data, batch_size, dev, method, resolve_amp(amp, dev))
        except _oom_types() as exc:
            raise _oom_error(exc, "predicting", batch_size, dev, "predict(..., batch_size={n})") from exc


def _predict(model, data, batch_size, dev, method, amp) -> np.ndarray:
    model.to(dev).eval()
    fn = getattr(model, method) if method else model
    cuda = dev.type == "cuda"
    if isinstance(data, Dataset):
        options = {"pin_memory": True} if cuda else {}
        batches = (
            b[0] if isinstance(b, (list, tuple)) else b
            for b in DataLoader(data, batch_size=batch_size, shuffle=False, **options)
        )
    else:
        arr = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(data))
        batches = (arr[i : i + batch_size] for i in range(0, len(arr), batch_size))
    if amp is None and not cuda:
        outs = [fn(b.float().to(dev)).cpu().numpy() for b in batches]
    else:
        outs = []
        for b in batches:
            with _autocast(amp, dev):
                out = fn(b.float().to(dev, non_blocking=cuda))
            outs.append(out.float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def fold_seed(seed: int, fold: str) -> int:
    """Per-fold seed that depends on the fold's name, not its position, so running a
    subset of folds (or another order) trains each fold identically."""
    return (seed * 1_000_003 + zlib.crc32(str(fold).encode())) % (2**31)


@dataclass
class FoldResult:
    fold: str
    model: nn.Module
    history: dict
    checkpoint: Path
    skipped: bool = False  # True when loaded from a finished checkpoint
    info: dict = field(default_factory=dict)


def train_folds(
    folds: Sequence[str],
    make_model: Callable[[], nn.Module],
    make_data: Callable[[str], object],
    config: TrainConfig,
    checkpoint_dir: str | Path,
    key: object = None,
    *,
    progress: bool = True,
    desc: str = "fold",
    criterion: nn.Module | None = None,
    executor=None,
) -> Iterator[FoldResult]:
    """Train one model per held-out fold, yielding each as it is ready.

    For fold ``f``: seed from (``config.seed``, ``f``), build a fresh model with
    ``make_model()`` (weights re-initialised every fold), train it on ``make_data(f)``
    (the data *without* fold ``f``), save it. A fold whose checkpoint exists is loaded
    instead, and ``make_data`` is not called for it. Yielding lets the caller score the
    held-out subject right away and drop the model before the next fold.

    ``executor`` (anything with ``submit(fn, *args)`` returning a future, such as a
    ``concurrent.futures`` pool or a Dask client's executor) trains the unfinished folds
    concurrently; results are still yielded in fold order, and each fold trains exactly
    as it would alone (its seed depends on its name only). Use process-based workers for
    parallelism: threads share torch's global random state. Without an executor, folds
    train here, one after another.

    One progress bar counts epochs over all folds (a loaded fold counts as done), with
    the current fold and loss beside it: a single bar reads the same in a terminal and
    in an executed notebook, where nested bars leave cursor-movement debris.
    """
    checkpoint_dir = Path(checkpoint_dir)
    tag = stable_hash(config.key(), key)
    folds = list(folds)
    paths = {fold: checkpoint_dir / f"{safe_name(fold)}-{tag}.pt" for fold in folds}
    bar = progress_bar(total=len(folds) * config.epochs, desc=desc, unit="epoch", disable=not progress)
    try:
        pending = {}
        if executor is not None:
            pending = {
                fold: executor.submit(
                    _train_one_fold,
                    fold,
                    make_model,
                    make_data,
                    config,
                    paths[fold],
                    key,
                    desc,
                    criterion,
                    None,
                )
                for fold in folds
                if not cache_ok(paths[fold])
            }
        for fold in folds:
            path = paths[fold]
            if fold in pending:
                model, history, info = pending.pop(fold).result()
                bar.set_postfix(fold=fold, refresh=False)
                bar.update(config.epochs)
                yield FoldResult(fold, model, history, path, skipped=False, info=info)
                continue
            if cache_ok(path):
                seed_everything(fold_seed(config.seed, fold))
                model = make_model()
                state = torch.load(path, map_location="cpu", weights_only=False)
                model.load_state_dict(state["model"])
                model.to(resolve_device(config.device))
                bar.update(config.epochs)
                yield FoldResult(
                    fold, model, state["history"], path, skipped=True, info=state.get("info", {})
                )
                continue

            def report(epoch: int, loss: float, fold=fold) -> None:
                bar.set_postfix(fold=fold, loss=f"{loss:.4f}", refresh=False)
                bar.update()

            model, history, info = _train_one_fold(
                fold, make_model, make_data, config, path, key, desc, criterion, report
            )
            # a fold stopped early by max_steps counts as done on the bar
            bar.update(max(0, config.epochs - len(history["epoch_loss"])))
            yield FoldResult(fold, model, history, path, skipped=False, info=info)
    finally:
        for future in pending.values():
            future.cancel()
        bar.close()


def _train_one_fold(fold, make_model, make_data, config, path, key, desc, criterion, report):
    """Train and save one fold's model (a task of its own when an executor is given)."""
    seed_everything(fold_seed(config.seed, fold))
    model = make_model()
    data = make_data(fold)
    partial = path.with_name(path.stem + "-partial.pt")
    cfg = TrainConfig(**{**asdict(config), "seed": fold_seed(config.seed, fold)})
    history = fit(
        model,
        data,
        cfg,
        desc=f"{desc} {fold}",
        progress=False,
        checkpoint=partial,
        criterion=criterion,
        on_epoch=report,
    )
    info = {"n_train": len(_as_dataset(data))}
    save_torch(
        path,
        {
            "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "history": history,
            "fold": fold,
            "config": asdict(config),
            "key": repr(key),
            "info": info,
        },
    )
    partial.unlink(missing_ok=True)
    return model, history, info
