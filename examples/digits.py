"""Shared pieces of the digits examples: data (ships with scikit-learn), models, the training loop.

Everything here is deterministic for a given seed, runs on the CPU in seconds and uses CUDA when a
GPU is present (``TRELLIS_DEVICE`` overrides).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn


def device() -> torch.device:
    name = os.environ.get("TRELLIS_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_digits_split(seed: int = 0, val_fraction: float = 0.25) -> tuple[torch.Tensor, ...]:
    """8x8 digit images scaled to [0, 1]; a fixed stratified-enough random split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = int(len(y) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return (
        torch.from_numpy(x[train]),
        torch.from_numpy(y[train]),
        torch.from_numpy(x[val]),
        torch.from_numpy(y[val]),
    )


def mlp(hidden: int, layers: int, dropout: float, activation: str = "relu") -> nn.Module:
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[activation]
    blocks: list[nn.Module] = [nn.Flatten()]
    width = 64
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), act(), nn.Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, 10))
    return nn.Sequential(*blocks)


def cnn(channels: int, kernel: int, dense: int, dropout: float) -> nn.Module:
    pad = kernel // 2
    return nn.Sequential(
        nn.Conv2d(1, channels, kernel, padding=pad),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        nn.Conv2d(channels, channels * 2, kernel, padding=pad),
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> 2x2
        nn.Flatten(),
        nn.Linear(channels * 2 * 4, dense),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(dense, 10),
    )


def optimizer(model: nn.Module, params: dict[str, Any]) -> torch.optim.Optimizer:
    lr = float(params.get("lr", 1e-3))
    wd = float(params.get("weight_decay", 0.0))
    if params.get("optimizer", "adam") == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=float(params.get("momentum", 0.0)), weight_decay=wd)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def latency_ms(model: nn.Module, x: torch.Tensor, repeats: int = 20) -> float:
    """Median time to classify one batch of 64 images, in milliseconds."""
    model.eval()
    batch = x[:64]
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(batch)
            if batch.is_cuda:
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def train(
    model: nn.Module,
    params: dict[str, Any],
    epochs: Iterable[int],
    report: Callable[..., None],
    state: dict[str, Any] | None = None,
    seed: int = 0,
    checkpoint: Callable[[nn.Module, torch.optim.Optimizer, int], None] | None = None,
) -> tuple[nn.Module, torch.optim.Optimizer, dict[str, float]]:
    """Train for the given epochs, calling ``report(epoch, val_accuracy=..., val_loss=..., train_loss=...)``.
    ``params["train_size"]`` (optional) trains on only that many images; validation always uses all 449.

    ``checkpoint(model, opt, epoch)`` runs before each report, so a trial stopped at a report can resume.
    A loaded optimizer state keeps this configuration's learning rate, weight decay and momentum: PBT
    continues a member from another's checkpoint with perturbed values.
    """
    torch.set_num_threads(1)  # several workers share the cores
    torch.manual_seed(seed)
    dev = device()
    x_tr, y_tr, x_va, y_va = (t.to(dev) for t in load_digits_split(seed))
    if params.get("train_size"):  # a smaller training set (the split is already shuffled): a harder task
        x_tr, y_tr = x_tr[: int(params["train_size"])], y_tr[: int(params["train_size"])]
    model = model.to(dev)
    opt = optimizer(model, params)
    if state:
        model.load_state_dict(state["model"])
        wanted = [{k: g[k] for k in ("lr", "weight_decay", "momentum") if k in g} for g in opt.param_groups]
        with contextlib.suppress(ValueError, KeyError):  # another optimizer kind: keep the fresh one
            opt.load_state_dict(state["optimizer"])
        for group, values in zip(opt.param_groups, wanted):
            group.update(values)
    loss_fn = nn.CrossEntropyLoss()
    batch = int(params.get("batch_size", 64))
    gen = torch.Generator().manual_seed(seed)
    last: dict[str, float] = {}
    for epoch in epochs:
        model.train()
        perm = torch.randperm(len(y_tr), generator=gen).to(dev)
        total, count = 0.0, 0
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x_tr[idx]), y_tr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(x_va)
            val_loss = float(loss_fn(logits, y_va))
            val_acc = float((logits.argmax(1) == y_va).float().mean())
        last = {"val_accuracy": val_acc, "val_loss": val_loss, "train_loss": total / max(count, 1)}
        if checkpoint is not None:
            checkpoint(model, opt, epoch)
        report(epoch, **last)
    return model, opt, last
