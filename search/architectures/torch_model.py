"""Build a torch model from an architecture value (the only module here that imports torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from trellis.search.architectures.layers import (
    Activation,
    Architecture,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Pool,
    shapes,
)

ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def build_model(arch: Architecture, input_shape: Sequence[int], n_classes: int) -> nn.Sequential:
    """The classifier: the architecture's layers, a flatten where the first dense layer (or the head) meets
    an image, and ``Linear(features, n_classes)``. ArchitectureError when the layers do not fit the input."""
    after = shapes(arch, input_shape)
    shape = tuple(int(s) for s in input_shape)
    modules: list[nn.Module] = []
    for layer, out in zip(arch.layers, after):
        if isinstance(layer, Conv):
            modules.append(nn.Conv2d(shape[0], layer.channels, layer.kernel, padding=layer.kernel // 2))
        elif isinstance(layer, Pool):
            modules.append(nn.MaxPool2d(layer.size))
        elif isinstance(layer, Dense):
            if len(shape) > 1:
                modules.append(nn.Flatten())
            modules.append(nn.Linear(math.prod(shape), layer.units))
        elif isinstance(layer, Dropout):
            modules.append(nn.Dropout(layer.rate))
        elif isinstance(layer, BatchNorm):
            modules.append(nn.BatchNorm2d(shape[0]) if len(shape) > 1 else nn.BatchNorm1d(shape[0]))
        elif isinstance(layer, Activation):
            modules.append(ACTIVATION_MODULES[layer.fn]())
        shape = out
    if len(shape) > 1:
        modules.append(nn.Flatten())
    modules.append(nn.Linear(math.prod(shape), n_classes))
    return nn.Sequential(*modules)


def torch_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
