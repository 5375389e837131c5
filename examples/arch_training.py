"""Shared pieces of the architecture examples: data that ships with scikit-learn, the model an
``architecture`` parameter describes, a training loop that reports per epoch and the held-out predictions.

Everything is deterministic for a given seed, trains on the CPU in seconds and uses CUDA when present
(``TRELLIS_DEVICE`` overrides).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trellis.examples.digits import device, load_digits_split, optimizer
from trellis.search.architectures.layers import INPUTS, parse_architecture
from trellis.search.architectures.torch_model import build_model, torch_parameter_count
from trellis.search.trial import TrialContext

PREDICTIONS_FILE = "predictions.json"


def load_tabular_split(name: str, seed: int = 0, val_fraction: float = 0.25) -> tuple[torch.Tensor, ...]:
    """A scikit-learn table (``breast_cancer``, ``wine``), standardised with the training rows' statistics."""
    from sklearn import datasets

    data = getattr(datasets, f"load_{name}")()
    x, y = data.data.astype(np.float32), data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = int(len(y) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    return tuple(torch.from_numpy(a) for a in (x[train], y[train], x[val], y[val]))


def load_split(dataset: str, seed: int = 0) -> tuple[torch.Tensor, ...]:
    return load_digits_split(seed) if dataset == "digits" else load_tabular_split(dataset, seed)


def model_for(params: dict[str, Any], dataset: str) -> nn.Module:
    """The classifier the run's ``architecture`` parameter describes (how any run is rebuilt)."""
    shape, classes = INPUTS[dataset]
    return build_model(parse_architecture(str(params["architecture"])), shape, classes)


def train_architecture(ctx: TrialContext, dataset: str) -> dict[str, float]:
    """Train the run's architecture on ``dataset`` for the trial's epochs, reporting ``val_accuracy``,
    ``val_loss`` and ``train_loss`` each epoch; the last epoch's held-out predictions are kept with the run
    (artifact ``trial/predictions.json``). Returns ``n_params`` and ``n_layers``."""
    torch.set_num_threads(1)  # several workers share the cores
    seed = int(ctx.seed or 0)
    torch.manual_seed(seed)  # the initial weights too: one configuration, one result, in any worker
    model = model_for(ctx.params, dataset).to(device())
    opt = optimizer(model, ctx.params)
    state = ctx.load_checkpoint() if ctx.budget_start > 0 else None
    if ctx.budget_start > 0 and state is None:
        raise RuntimeError(f"asked to resume at epoch {ctx.budget_start} but {ctx.checkpoint_path} does not exist")
    if state is not None:
        model.load_state_dict(state["model"])
        with contextlib.suppress(ValueError, KeyError):
            opt.load_state_dict(state["optimizer"])
    dev = device()
    x_tr, y_tr, x_va, y_va = (t.to(dev) for t in load_split(dataset))
    loss_fn = nn.CrossEntropyLoss()
    batch = int(ctx.params.get("batch_size", 64))
    gen = torch.Generator().manual_seed(seed + ctx.budget_start)
    logits = None
    for epoch in ctx.steps():
        model.train()
        perm = torch.randperm(len(y_tr), generator=gen).to(dev)
        total, count = 0.0, 0
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            if len(idx) < 2:  # batch norm cannot train on a single row
                continue
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
        ctx.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": epoch})
        ctx.report(epoch, val_accuracy=val_acc, val_loss=val_loss, train_loss=total / max(count, 1))
    if logits is not None:
        save_predictions(ctx.artifact_dir, logits.argmax(1).cpu().numpy(), y_va.cpu().numpy())
    n_layers = len(parse_architecture(str(ctx.params["architecture"])))
    return {"n_params": float(torch_parameter_count(model)), "n_layers": float(n_layers)}


def save_predictions(folder: Path, predicted: np.ndarray, labels: np.ndarray) -> Path:
    """The held-out predictions (and labels, in the fixed split's order) as JSON: no code runs on reading."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PREDICTIONS_FILE
    path.write_text(json.dumps({"predicted": predicted.tolist(), "labels": labels.tolist()}))
    return path


def load_predictions(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = json.loads((Path(folder) / PREDICTIONS_FILE).read_text())
    return np.asarray(raw["predicted"], dtype=np.int64), np.asarray(raw["labels"], dtype=np.int64)
