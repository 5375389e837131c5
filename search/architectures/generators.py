"""Children of a model (REMAP §5.4): ablations (each layer removed in turn) and variations (random single
changes: add, remove, replace or reparameterize a layer). Each child is valid for the parameter's input
and bounds, distinct from its parent and its siblings, and comes with the change that made it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass

import numpy as np

from trellis.search.architectures.chain import CHOICES, allowed_next, random_layer
from trellis.search.architectures.layers import Architecture, BatchNorm, Conv, Layer, problem, shapes
from trellis.search.architectures.param import ArchitectureParam

CHANGES = ("add", "remove", "replace", "reparameterize")
Allowed = Collection[str] | Mapping[int, Collection[str]]


@dataclass(frozen=True)
class Change:
    """What turned the parent into the child. ``index`` is the parent's layer (for ``add``: the position the
    new layer takes, ``len(parent)`` for the end); ``before`` and ``after`` the layers as described."""

    kind: str
    index: int
    before: str | None
    after: str | None
    description: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _valid(child: Architecture, space: ArchitectureParam) -> bool:
    return problem(child, space.input_shape, space.n_classes, space.max_layers, space.max_params) is None


def ablations(arch: Architecture, space: ArchitectureParam) -> list[tuple[Architecture, Change]]:
    """One child per removable layer: the layer removed. A removal that breaks the model (a pool whose
    removal pushes the parameters over the bound) is left out, and so is one giving the same child as the
    layer before it (two equal layers in a row)."""
    out: list[tuple[Architecture, Change]] = []
    seen: set[Architecture] = set()
    for i, layer in enumerate(arch.layers):
        child = arch.replace(i, None)
        if child in seen or not _valid(child, space):
            continue
        seen.add(child)
        out.append((child, Change("remove", i, layer.describe(), None, f"removed {layer.describe()} at {i}")))
    return out


def _allowed_at(allowed: Allowed, index: int, length: int) -> set[str]:
    if not isinstance(allowed, Mapping):
        return set(allowed)
    if index < length:
        return set(allowed.get(index, ()))
    return {"add"} & set(allowed.get(length - 1, ())) if length else set()


def _reparameterized(layer: Layer, rng: np.random.Generator) -> Layer | None:
    """The same layer type with other values from the chain's grid (None for batch-norm: nothing to change)."""
    if isinstance(layer, BatchNorm):
        return None
    for _ in range(20):
        other = random_layer(layer.kind, rng)
        if isinstance(layer, Conv) and rng.random() < 0.5:  # sometimes one value only, the other kept
            other = Conv(other.channels, layer.kernel) if rng.random() < 0.5 else Conv(layer.channels, other.kernel)
        if other != layer:
            return other
    return None


def _shape_before(arch: Architecture, index: int, space: ArchitectureParam) -> tuple[int, ...]:
    return tuple(space.input_shape) if index == 0 else shapes(arch, space.input_shape)[index - 1]


def _one_change(
    arch: Architecture, space: ArchitectureParam, allowed: Allowed, rng: np.random.Generator
) -> tuple[Architecture, Change] | None:
    n = len(arch)
    options = [(kind, i) for i in range(n + 1) for kind in sorted(_allowed_at(allowed, i, n)) if kind in CHANGES]
    options = [(kind, i) for kind, i in options if kind == "add" or i < n]
    if not options:
        return None
    kind, i = options[int(rng.integers(len(options)))]
    if kind == "add":
        before_kind = "start" if i == 0 else arch.layers[i - 1].kind
        row = allowed_next(before_kind, _shape_before(arch, i, space), i, space.max_layers)
        row.pop("end", None)
        if not row:
            return None
        names = sorted(row)
        new = random_layer(names[int(rng.integers(len(names)))], rng)
        return arch.insert(i, new), Change("add", i, None, new.describe(), f"added {new.describe()} at {i}")
    layer = arch.layers[i]
    if kind == "remove":
        return arch.replace(i, None), Change("remove", i, layer.describe(), None, f"removed {layer.describe()} at {i}")
    if kind == "replace":
        others = [k for k in CHOICES if k != layer.kind]
        new = random_layer(others[int(rng.integers(len(others)))], rng)
        text = f"replaced {layer.describe()} at {i} with {new.describe()}"
        return arch.replace(i, new), Change("replace", i, layer.describe(), new.describe(), text)
    new_layer = _reparameterized(layer, rng)
    if new_layer is None:
        return None
    text = f"reparameterized {layer.describe()} at {i} to {new_layer.describe()}"
    return arch.replace(i, new_layer), Change("reparameterize", i, layer.describe(), new_layer.describe(), text)


def variations(
    arch: Architecture,
    n: int,
    space: ArchitectureParam,
    rng: np.random.Generator,
    allowed: Allowed = CHANGES,
) -> list[tuple[Architecture, Change]]:
    """Up to ``n`` children, each one change away from ``arch``, valid and distinct (from the parent and each
    other). ``allowed``: the change types for every layer, or per layer index (``{0: {"reparameterize"}}``;
    a layer left out allows nothing; ``add`` at the end follows the last layer). Fewer than ``n`` come back
    when the allowed neighbourhood is smaller."""
    out: list[tuple[Architecture, Change]] = []
    seen = {arch}
    for _ in range(max(n, 0) * 50):
        if len(out) >= n:
            break
        made = _one_change(arch, space, allowed, rng)
        if made is None or made[0] in seen or not _valid(made[0], space):
            continue
        seen.add(made[0])
        out.append(made)
    return out
