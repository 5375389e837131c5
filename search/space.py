"""The search space: typed hyperparameters, constants and conditions.

A space is an ordered collection of parameters. A parameter may carry a condition
(``when: {optimizer: sgd}``) naming other parameters and the values for which it is active; an
inactive parameter is absent from a configuration, never set to a placeholder. Parameters are kept
in an order where every condition's parents come first, so samplers can walk them once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Value = float | int | str | bool


# -- the one scale mapping: [low, high] <-> [0, 1], log parameters in log space ------------------------


def to_unit(values: Any, low: float, high: float, log: bool) -> Any:
    """Values (a number or an array) on [0, 1] of their range; not clipped, NaN where a log value is <= 0."""
    v = np.asarray(values, dtype=float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            v, low, high = np.log(np.where(v > 0, v, np.nan)), math.log(low), math.log(high)
    if high <= low:
        return np.full(v.shape, 0.5)
    return (v - low) / (high - low)


def from_unit(unit: float, low: float, high: float, log: bool) -> float:
    """The value at ``unit`` (clipped to [0, 1]) of the range, inside [low, high] despite rounding."""
    unit = min(max(float(unit), 0.0), 1.0)
    span = math.log(high) - math.log(low) if log else high - low
    value = math.exp(math.log(low) + unit * span) if log else low + unit * span
    return float(min(max(value, low), high))  # exp(log(high)) may overshoot by rounding


def round_outward(low: float, high: float, digits: int = 4) -> tuple[float, float]:
    """``low`` rounded down and ``high`` rounded up to ``digits`` significant digits: a range a person can read
    (not 0.0012345678901234567) that still holds every value of the original one."""

    def rounded(value: float, up: bool) -> float:
        if value == 0 or not math.isfinite(value):
            return value
        scale = 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)
        steps = value / scale
        near = round(steps)
        if abs(steps - near) < 1e-9 * max(1.0, abs(steps)):  # already that short: keep it exactly
            return float(f"{near * scale:.{digits}g}")
        out = float(f"{(math.ceil(steps) if up else math.floor(steps)) * scale:.{digits}g}")
        return out if (out >= value if up else out <= value) else value

    return rounded(float(low), False), rounded(float(high), True)


def to_display(values: Any, log: bool) -> Any:
    """What a figure's axis shows: log10 of a log parameter (so ticks fall on decades), else the value."""
    if not log:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.where(np.asarray(values, dtype=float) > 0, values, np.nan))


class SpaceError(ValueError):
    """A space definition or configuration is invalid; ``path`` names the offending key."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Param:
    """Base of all parameter kinds. ``when`` maps parent name -> tuple of allowed values."""

    name: str
    when: Mapping[str, tuple[Value, ...]] = field(default_factory=dict)

    kind = "param"

    def is_active(self, config: Mapping[str, Any]) -> bool:
        return all(parent in config and config[parent] in allowed for parent, allowed in self.when.items())

    def sample(self, rng: np.random.Generator) -> Value:
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def grid(self, points: int) -> list[Value]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        out = self._body()
        if self.when:
            out["when"] = {k: list(v) if len(v) > 1 else v[0] for k, v in self.when.items()}
        return out

    def _body(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Float(Param):
    low: float = 0.0
    high: float = 1.0
    log: bool = False

    kind = "float"

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and self.low <= value <= self.high

    def grid(self, points: int) -> list[float]:
        if points <= 1:
            return [self.to_unit_inverse(0.5)]
        return [self.to_unit_inverse(i / (points - 1)) for i in range(points)]

    def to_unit(self, value: float) -> float:
        """Map a value to [0, 1] on the parameter's own scale (log parameters in log space)."""
        return float(to_unit(value, self.low, self.high, self.log))

    def to_unit_inverse(self, unit: float) -> float:
        return from_unit(unit, self.low, self.high, self.log)

    def _body(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Int(Param):
    low: int = 0
    high: int = 1
    log: bool = False

    kind = "int"

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            # Sample in log space over [low - 0.5, high + 0.5] so that the end points are as likely
            # as their log-width says, then round and clip.
            lo, hi = math.log(self.low - 0.5 if self.low > 0.5 else self.low), math.log(self.high + 0.5)
            return int(min(max(round(math.exp(rng.uniform(lo, hi))), self.low), self.high))
        return int(rng.integers(self.low, self.high + 1))

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def grid(self, points: int) -> list[int]:
        span = self.high - self.low + 1
        if span <= points:
            return list(range(self.low, self.high + 1))
        as_float = Float(self.name, low=float(self.low), high=float(self.high), log=self.log)
        return sorted({int(round(v)) for v in as_float.grid(points)})

    def _body(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Categorical(Param):
    choices: tuple[Value, ...] = ()

    kind = "categorical"

    def sample(self, rng: np.random.Generator) -> Value:
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def grid(self, points: int) -> list[Value]:
        return list(self.choices)

    def _body(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}


@dataclass(frozen=True)
class Fixed(Param):
    value: Value = 0

    kind = "fixed"

    def sample(self, rng: np.random.Generator) -> Value:
        return self.value

    def contains(self, value: Any) -> bool:
        return value == self.value

    def grid(self, points: int) -> list[Value]:
        return [self.value]

    def _body(self) -> dict[str, Any]:
        return {"type": "fixed", "value": self.value}


class SearchSpace:
    """An ordered, validated set of parameters (parents of a condition before their children)."""

    def __init__(self, params: Sequence[Param]) -> None:
        by_name: dict[str, Param] = {}
        for p in params:
            if p.name in by_name:
                raise SpaceError(f"space.{p.name}", "defined twice")
            by_name[p.name] = p
        for p in params:
            for parent, allowed in p.when.items():
                if parent not in by_name:
                    raise SpaceError(f"space.{p.name}.when.{parent}", "names a parameter that is not in the space")
                if parent == p.name:
                    raise SpaceError(f"space.{p.name}.when", "a parameter cannot depend on itself")
                if isinstance(by_name[parent], Float):
                    why = f"{parent!r} is a float parameter: a condition on one of its values would almost never hold"
                    raise SpaceError(f"space.{p.name}.when.{parent}", why + " (use a categorical or int parent)")
                for v in allowed:
                    if not by_name[parent].contains(v):
                        raise SpaceError(
                            f"space.{p.name}.when.{parent}", f"{v!r} is not a possible value of {parent!r}"
                        )
        self.params: tuple[Param, ...] = tuple(_topological(params, by_name))
        self._by_name = by_name

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def tunable(self) -> list[Param]:
        return [p for p in self.params if not isinstance(p, Fixed)]

    def sample(self, rng: np.random.Generator) -> dict[str, Value]:
        config: dict[str, Value] = {}
        for p in self.params:
            if p.is_active(config):
                config[p.name] = p.sample(rng)
        return config

    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise SpaceError unless ``config`` has exactly the active parameters, each in range."""
        for p in self.params:
            active = p.is_active(config)
            if active and p.name not in config:
                raise SpaceError(p.name, "is active but missing")
            if not active and p.name in config:
                raise SpaceError(p.name, "is set but its condition is not met")
            if active and not p.contains(config[p.name]):
                raise SpaceError(p.name, f"value {config[p.name]!r} is outside the space")
        extra = set(config) - set(self._by_name)
        if extra:
            raise SpaceError(sorted(extra)[0], "is not a parameter of the space")

    def grid(self, points: int = 5) -> list[dict[str, Value]]:
        """All combinations, expanding a conditional parameter only where it is active."""
        configs: list[dict[str, Value]] = [{}]
        for p in self.params:
            values = p.grid(points)
            nxt: list[dict[str, Value]] = []
            for c in configs:
                if p.is_active(c):
                    nxt.extend({**c, p.name: v} for v in values)
                else:
                    nxt.append(c)
            configs = nxt
        # Conditions are checked against parents that come earlier, so every config is valid.
        unique = {tuple(sorted((k, repr(v)) for k, v in c.items())): c for c in configs}
        return list(unique.values())

    def to_dict(self) -> dict[str, Any]:
        return {p.name: p.to_dict() for p in self.params}


def _topological(params: Sequence[Param], by_name: Mapping[str, Param]) -> list[Param]:
    ordered: list[Param] = []
    state: dict[str, int] = {}

    def visit(p: Param, chain: tuple[str, ...]) -> None:
        if state.get(p.name) == 2:
            return
        if state.get(p.name) == 1:
            raise SpaceError(f"space.{p.name}.when", f"conditions form a cycle: {' -> '.join(chain)}")
        state[p.name] = 1
        for parent in p.when:
            visit(by_name[parent], (*chain, parent))
        state[p.name] = 2
        ordered.append(p)

    for p in params:
        visit(p, (p.name,))
    return ordered


def product_size(space: SearchSpace, points: int) -> int:
    """Upper bound on the grid size without building it (used to refuse absurd grids early)."""
    return math.prod(len(p.grid(points)) for p in space.params) if space.params else 1


__all__ = [
    "Categorical",
    "Fixed",
    "Float",
    "Int",
    "Param",
    "SearchSpace",
    "SpaceError",
    "Value",
    "product_size",
]
