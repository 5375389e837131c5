"""Sequential architectures as plain values: layers, shapes, validity, parameter counts and a compact text.

An architecture is the body of a classifier: a tuple of layers. ``build_model`` adds what every classifier
needs around it: a flatten before the first dense layer (and before the head when the body ends spatial)
and the final ``Linear(features, n_classes)`` head. Neither is a layer of the value, so neither is removed
by an ablation. Convolutions keep the spatial size (``padding = kernel // 2``, odd kernels); a pool of size
``s`` divides it by ``s`` (floor). Everything here is pure Python (no torch), so configs are checked
without importing it.

The text form is compact JSON, one list per layer: ``[["conv",16,3],["relu"],["pool",2],["dense",64]]``.
With at most ``MAX_LAYERS`` layers it always fits an MLflow parameter value (6000 characters), so an
architecture is an ordinary parameter of a run and any run can be rebuilt from its params.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_LAYERS = 32  # the hard cap: the longest text then stays far under MLflow's 6000-character param limit
MAX_CHANNELS = 1024
MAX_UNITS = 8192
KERNELS = (1, 3, 5, 7)
POOL_SIZES = (2, 3, 4)
ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid")
DEFAULT_MAX_PARAMS = 1_000_000

Shape = tuple[int, ...]

# Inputs a config may name; a config may also give a shape and a class count.
INPUTS: dict[str, tuple[Shape, int]] = {
    "digits": ((1, 8, 8), 10),  # sklearn.datasets.load_digits, images
    "breast_cancer": ((30,), 2),  # sklearn.datasets.load_breast_cancer
    "wine": ((13,), 3),  # sklearn.datasets.load_wine
}


class ArchitectureError(ValueError):
    """An architecture text or value that cannot be used; the message says why."""


@dataclass(frozen=True)
class Conv:
    channels: int
    kernel: int = 3
    kind = "conv"

    def fields(self) -> tuple[Any, ...]:
        return (self.channels, self.kernel)

    def describe(self) -> str:
        return f"conv({self.channels},{self.kernel}x{self.kernel})"


@dataclass(frozen=True)
class Pool:
    size: int = 2
    kind = "pool"

    def fields(self) -> tuple[Any, ...]:
        return (self.size,)

    def describe(self) -> str:
        return f"maxpool({self.size})"


@dataclass(frozen=True)
class Dense:
    units: int
    kind = "dense"

    def fields(self) -> tuple[Any, ...]:
        return (self.units,)

    def describe(self) -> str:
        return f"dense({self.units})"


@dataclass(frozen=True)
class Dropout:
    rate: float = 0.5
    kind = "dropout"

    def fields(self) -> tuple[Any, ...]:
        return (self.rate,)

    def describe(self) -> str:
        return f"dropout({self.rate:g})"


@dataclass(frozen=True)
class BatchNorm:
    kind = "bn"

    def fields(self) -> tuple[Any, ...]:
        return ()

    def describe(self) -> str:
        return "batchnorm"


@dataclass(frozen=True)
class Activation:
    fn: str = "relu"
    kind = "act"

    def fields(self) -> tuple[Any, ...]:
        return ()

    def describe(self) -> str:
        return self.fn


Layer = Conv | Pool | Dense | Dropout | BatchNorm | Activation
LAYER_KINDS = ("conv", "pool", "dense", "dropout", "bn", "act")
SPATIAL_KINDS = ("conv", "pool")


@dataclass(frozen=True)
class Architecture:
    """The layers of a sequential classifier body (the flatten and the head are implied)."""

    layers: tuple[Layer, ...]

    def __len__(self) -> int:
        return len(self.layers)

    def to_text(self) -> str:
        """Compact JSON, the value stored as the run's parameter."""
        return json.dumps([_layer_json(layer) for layer in self.layers], separators=(",", ":"))

    def describe(self) -> str:
        """One line a person reads: ``conv(16,3x3) > relu > maxpool(2) > dense(64)``."""
        return " > ".join(layer.describe() for layer in self.layers) or "(head only)"

    def replace(self, index: int, layer: Layer | None) -> Architecture:
        """A copy with layer ``index`` replaced (or removed when ``layer`` is None)."""
        rest = () if layer is None else (layer,)
        return Architecture(self.layers[:index] + rest + self.layers[index + 1 :])

    def insert(self, index: int, layer: Layer) -> Architecture:
        return Architecture(self.layers[:index] + (layer,) + self.layers[index:])


def _layer_json(layer: Layer) -> list[Any]:
    if isinstance(layer, Activation):
        return [layer.fn]
    return [layer.kind, *layer.fields()]


def parse_layer(item: Any) -> Layer:
    """One layer from its JSON list; ArchitectureError with the reason otherwise."""
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise ArchitectureError(f"a layer is a list starting with its type, got {item!r}")
    kind, args = item[0], item[1:]
    expected = {"conv": 2, "pool": 1, "dense": 1, "dropout": 1, "bn": 0}.get(kind, 0)
    if kind not in LAYER_KINDS and kind not in ACTIVATIONS:
        raise ArchitectureError(f"unknown layer type {kind!r} (known: {', '.join(LAYER_KINDS[:-1] + ACTIVATIONS)})")
    if len(args) != expected:
        raise ArchitectureError(f"{kind} takes {expected} value(s), got {args!r}")
    if kind == "dropout":
        rate = args[0]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise ArchitectureError(f"dropout rate must be in [0, 1), got {rate!r}")
        return Dropout(float(rate))
    if any(isinstance(a, bool) or not isinstance(a, int) for a in args):
        raise ArchitectureError(f"{kind} takes whole numbers, got {args!r}")
    if kind == "conv":
        channels, kernel = args
        if not 1 <= channels <= MAX_CHANNELS:
            raise ArchitectureError(f"conv channels must be in 1..{MAX_CHANNELS}, got {channels}")
        if kernel not in KERNELS:
            raise ArchitectureError(f"conv kernel must be one of {KERNELS}, got {kernel}")
        return Conv(channels, kernel)
    if kind == "pool":
        if args[0] not in POOL_SIZES:
            raise ArchitectureError(f"pool size must be one of {POOL_SIZES}, got {args[0]}")
        return Pool(args[0])
    if kind == "dense":
        if not 1 <= args[0] <= MAX_UNITS:
            raise ArchitectureError(f"dense units must be in 1..{MAX_UNITS}, got {args[0]}")
        return Dense(args[0])
    if kind == "bn":
        return BatchNorm()
    return Activation(kind)


def parse_architecture(text: str) -> Architecture:
    """The architecture a text holds (its layers checked one by one, not yet against an input)."""
    try:
        raw = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ArchitectureError(f"not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ArchitectureError("an architecture is a JSON list of layers")
    if len(raw) > MAX_LAYERS:
        raise ArchitectureError(f"{len(raw)} layers (at most {MAX_LAYERS})")
    return Architecture(tuple(parse_layer(item) for item in raw))


def shapes(arch: Architecture, input_shape: Sequence[int]) -> list[Shape]:
    """The activation shape after each layer (without the batch dimension); ArchitectureError where a
    layer does not fit what comes before it."""
    shape: Shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ArchitectureError(f"inputs are (features,) or (channels, height, width), got {shape}")
    out: list[Shape] = []
    flat = len(shape) == 1
    for i, layer in enumerate(arch.layers):
        where = f"layer {i} ({layer.describe()})"
        if layer.kind in SPATIAL_KINDS and flat:
            raise ArchitectureError(
                f"{where}: a {layer.kind} layer needs an image, it follows a dense layer or a flat input"
            )
        if isinstance(layer, Conv):
            shape = (layer.channels, *shape[1:])
        elif isinstance(layer, Pool):
            if min(shape[1:]) < layer.size:
                raise ArchitectureError(f"{where}: the {shape[1]}x{shape[2]} map is smaller than the pool")
            shape = (shape[0], shape[1] // layer.size, shape[2] // layer.size)
        elif isinstance(layer, Dense):
            shape, flat = (layer.units,), True
        out.append(shape)
    return out


def count_parameters(arch: Architecture, input_shape: Sequence[int], n_classes: int) -> int:
    """Trainable parameters of the built model (weights, biases, batch-norm scales and shifts, the head)."""
    total = 0
    shape: Shape = tuple(int(s) for s in input_shape)
    for layer, after in zip(arch.layers, shapes(arch, input_shape)):
        if isinstance(layer, Conv):
            total += shape[0] * layer.channels * layer.kernel**2 + layer.channels
        elif isinstance(layer, Dense):
            total += math.prod(shape) * layer.units + layer.units
        elif isinstance(layer, BatchNorm):
            total += 2 * shape[0]
        shape = after
    return total + math.prod(shape) * n_classes + n_classes


def problem(
    arch: Architecture,
    input_shape: Sequence[int],
    n_classes: int,
    max_layers: int = MAX_LAYERS,
    max_params: int = DEFAULT_MAX_PARAMS,
) -> str | None:
    """Why ``arch`` is not a valid model for this input within these bounds, or None."""
    if len(arch) > max_layers:
        return f"{len(arch)} layers (at most {max_layers})"
    try:
        n = count_parameters(arch, input_shape, n_classes)
    except ArchitectureError as exc:
        return str(exc)
    if n > max_params:
        return f"{n} parameters (at most {max_params})"
    return None


def is_valid(arch: Architecture, input_shape: Sequence[int], n_classes: int, **bounds: int) -> bool:
    return problem(arch, input_shape, n_classes, **bounds) is None


def input_of(name_or_shape: Any, n_classes: int | None = None) -> tuple[Shape, int]:
    """A named input (``digits``) or an explicit shape and class count."""
    if isinstance(name_or_shape, str):
        if name_or_shape not in INPUTS:
            raise ArchitectureError(f"unknown input {name_or_shape!r} (known: {', '.join(INPUTS)}, or a shape list)")
        shape, classes = INPUTS[name_or_shape]
        return shape, n_classes or classes
    if not isinstance(name_or_shape, list | tuple) or len(name_or_shape) not in (1, 3):
        raise ArchitectureError(f"an input is a name or [features] or [channels, height, width], got {name_or_shape!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in name_or_shape):
        raise ArchitectureError(f"input sizes are positive whole numbers, got {name_or_shape!r}")
    if not n_classes or n_classes < 2:
        raise ArchitectureError("an input given as a shape needs 'classes' (at least 2)")
    return tuple(name_or_shape), n_classes
