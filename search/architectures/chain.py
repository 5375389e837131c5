"""Random architectures from a Markov chain over layer transitions (REMAP §5.2).

From the start state the first layer type is drawn from ``TRANSITIONS["start"]``, its values from
``CHOICES``; each next type from the row of the one before, among the transitions still valid there
(no conv or pool once the input is flat or after a dense layer, no pool on a map smaller than the pool,
``end`` forced at the layer bound). A draw over the parameter bound is thrown away and drawn again.
Every draw comes from the generator passed in, so a seeded search repeats its architectures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trellis.search.architectures.layers import (
    Activation,
    Architecture,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Layer,
    Pool,
    problem,
)

# Transition probabilities, row: the layer before (``start`` before the first), column: the next one.
# Rows need not sum to one: they are renormalised over the transitions valid at that point.
TRANSITIONS: dict[str, dict[str, float]] = {
    "start": {"conv": 0.6, "dense": 0.3, "bn": 0.05, "dropout": 0.05},
    "conv": {"act": 0.55, "bn": 0.2, "conv": 0.05, "pool": 0.1, "dropout": 0.05, "dense": 0.05},
    "pool": {"conv": 0.45, "dense": 0.25, "dropout": 0.1, "bn": 0.05, "end": 0.15},
    "bn": {"act": 0.7, "conv": 0.1, "dense": 0.1, "dropout": 0.05, "end": 0.05},
    "act": {"conv": 0.25, "pool": 0.25, "dense": 0.2, "dropout": 0.15, "end": 0.15},
    "dropout": {"conv": 0.2, "dense": 0.4, "pool": 0.05, "end": 0.35},
    "dense": {"act": 0.6, "bn": 0.1, "dropout": 0.1, "dense": 0.05, "end": 0.15},
}

# The values a new layer of each type draws from (a grid, as in REMAP).
CHOICES: dict[str, tuple] = {
    "conv": ((4, 8, 16, 32, 64), (1, 3, 5)),  # channels, kernel
    "pool": ((2,),),
    "dense": ((16, 32, 64, 128, 256),),
    "dropout": ((0.1, 0.2, 0.3, 0.4, 0.5),),
    "bn": (),
    "act": (("relu", "tanh", "gelu"),),
}

MAX_DRAWS = 200


def random_layer(kind: str, rng: np.random.Generator) -> Layer:
    """A layer of this type with values drawn from ``CHOICES``."""
    picks = [grid[int(rng.integers(len(grid)))] for grid in CHOICES[kind]]
    if kind == "conv":
        return Conv(int(picks[0]), int(picks[1]))
    if kind == "pool":
        return Pool(int(picks[0]))
    if kind == "dense":
        return Dense(int(picks[0]))
    if kind == "dropout":
        return Dropout(float(picks[0]))
    if kind == "bn":
        return BatchNorm()
    return Activation(str(picks[0]))


def allowed_next(kind: str, shape: Sequence[int], length: int, max_layers: int) -> dict[str, float]:
    """The row of ``kind`` restricted to what may follow a layer with output ``shape`` (renormalised)."""
    if length >= max_layers:
        return {"end": 1.0}
    row = dict(TRANSITIONS[kind])
    if len(shape) == 1:  # flat: no more conv or pool
        row.pop("conv", None)
        row.pop("pool", None)
    elif min(shape[1:]) < min(CHOICES["pool"][0]):
        row.pop("pool", None)
    if length == 0:
        row.pop("end", None)
    total = sum(row.values())
    return {k: v / total for k, v in row.items()} if total > 0 else {"end": 1.0}


def _walk(input_shape: Sequence[int], max_layers: int, rng: np.random.Generator) -> Architecture:
    layers: list[Layer] = []
    kind, shape = "start", tuple(input_shape)
    while True:
        row = allowed_next(kind, shape, len(layers), max_layers)
        names = sorted(row)  # a fixed order, so a seed gives the same walk on every Python
        kind = names[int(rng.choice(len(names), p=[row[n] for n in names]))]
        if kind == "end":
            return Architecture(tuple(layers))
        layer = random_layer(kind, rng)
        if isinstance(layer, Pool) and min(shape[1:]) < layer.size:
            layer = Pool(2)
        layers.append(layer)
        if isinstance(layer, Conv):
            shape = (layer.channels, *shape[1:])
        elif isinstance(layer, Pool):
            shape = (shape[0], shape[1] // layer.size, shape[2] // layer.size)
        elif isinstance(layer, Dense):
            shape = (layer.units,)


def sample_architecture(
    input_shape: Sequence[int],
    n_classes: int,
    rng: np.random.Generator,
    max_layers: int = 8,
    max_params: int = 1_000_000,
) -> Architecture:
    """A valid random architecture (REMAP's chain); falls back to a single small dense layer when
    ``MAX_DRAWS`` walks all break the parameter bound."""
    for _ in range(MAX_DRAWS):
        arch = _walk(input_shape, max_layers, rng)
        if problem(arch, input_shape, n_classes, max_layers=max_layers, max_params=max_params) is None:
            return arch
    return Architecture((Dense(16),))
