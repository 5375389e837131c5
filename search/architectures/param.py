"""An architecture as a parameter of the search space: ``{type: architecture, input: digits, max_layers: 8}``.

Its values are architecture texts (compact JSON strings, see ``layers``), so they are logged, compared and
read back like any other string parameter. ``sample`` walks REMAP's Markov chain with the search's
generator; ``grid`` is a fixed set of ``points`` chain draws (seed 0), so grid search runs over them.
With ``choices`` (a list of architectures: the children of an ablation or a variation) the parameter
takes only those: grid search runs each once, in order.
Samplers that model only numbers and categories (TPE, BOHB) draw this parameter from its prior; PBT keeps
a member's architecture (a checkpoint only loads into the same model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trellis.search.architectures.chain import sample_architecture
from trellis.search.architectures.layers import (
    DEFAULT_MAX_PARAMS,
    MAX_LAYERS,
    Architecture,
    ArchitectureError,
    Shape,
    count_parameters,
    input_of,
    parse_architecture,
    problem,
)
from trellis.search.space import Param, SpaceError

KIND = "architecture"


@dataclass(frozen=True)
class ArchitectureParam(Param):
    input: str | tuple[int, ...] = "digits"
    classes: int | None = None  # needed when ``input`` is a shape
    max_layers: int = 8
    max_params: int = DEFAULT_MAX_PARAMS
    choices: tuple[str, ...] = ()  # a fixed set (an ablation's or variation's children): no chain draws

    kind = KIND

    @property
    def input_shape(self) -> Shape:
        return input_of(self.input if isinstance(self.input, str) else list(self.input), self.classes)[0]

    @property
    def n_classes(self) -> int:
        return input_of(self.input if isinstance(self.input, str) else list(self.input), self.classes)[1]

    def sample(self, rng: np.random.Generator) -> str:
        if self.choices:
            return self.choices[int(rng.integers(len(self.choices)))]
        arch = sample_architecture(self.input_shape, self.n_classes, rng, self.max_layers, self.max_params)
        return arch.to_text()

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not an architecture of this space, or None."""
        if not isinstance(value, str):
            return f"an architecture is a JSON text, got {type(value).__name__}"
        try:
            arch = parse_architecture(value)
        except ArchitectureError as exc:
            return str(exc)
        if self.choices and arch.to_text() not in self.choices:
            return "not one of the architectures listed in choices"
        return problem(arch, self.input_shape, self.n_classes, self.max_layers, self.max_params)

    def contains(self, value: Any) -> bool:
        return self.problem(value) is None

    def grid(self, points: int) -> list[str]:
        if self.choices:
            return list(self.choices)
        rng = np.random.default_rng(0)
        seen: dict[str, None] = {}
        for _ in range(max(points, 1) * 20):
            seen.setdefault(self.sample(rng))
            if len(seen) >= max(points, 1):
                break
        return list(seen)

    def _body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": KIND,
            "input": self.input if isinstance(self.input, str) else list(self.input),
            "max_layers": self.max_layers,
            "max_params": self.max_params,
        }
        if self.classes is not None:
            out["classes"] = self.classes
        if self.choices:
            out["choices"] = list(self.choices)
        return out


SPEC_KEYS = {"input", "classes", "max_layers", "max_params", "choices"}


def parse_spec(name: str, spec: dict[str, Any], when: dict[str, tuple[Any, ...]]) -> ArchitectureParam:
    """The parameter a config's ``{type: architecture, ...}`` describes; SpaceError naming the key otherwise."""
    path = f"space.{name}"
    for unknown in sorted(set(spec) - {"type", "when"} - SPEC_KEYS):
        raise SpaceError(
            f"{path}.{unknown}", f"unknown key for an architecture parameter (known: {', '.join(sorted(SPEC_KEYS))})"
        )
    raw_input = spec.get("input", "digits")
    classes = spec.get("classes")
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 2):
        raise SpaceError(f"{path}.classes", f"must be a whole number of at least 2, got {classes!r}")
    try:
        input_of(raw_input, classes)
    except ArchitectureError as exc:
        raise SpaceError(f"{path}.input", str(exc)) from None
    bounds = {"max_layers": (1, MAX_LAYERS, 8), "max_params": (1, 10**9, DEFAULT_MAX_PARAMS)}
    values = {}
    for key, (low, high, default) in bounds.items():
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SpaceError(f"{path}.{key}", f"must be a whole number in {low}..{high}, got {value!r}")
        values[key] = value
    param = ArchitectureParam(
        name,
        when=when,
        input=raw_input if isinstance(raw_input, str) else tuple(raw_input),
        classes=classes,
        **values,
    )
    smallest = Architecture(())
    head = count_parameters(smallest, param.input_shape, param.n_classes)
    if head > param.max_params:
        raise SpaceError(f"{path}.max_params", f"even the classifier head alone has {head} parameters")
    if "choices" in spec:
        return replace(param, choices=_parse_choices(spec["choices"], param, path))
    return param


def _parse_choices(raw: Any, param: ArchitectureParam, path: str) -> tuple[str, ...]:
    """Listed architectures (JSON texts or lists of layers), each valid for the parameter, as compact texts."""
    if not isinstance(raw, list) or not raw:
        raise SpaceError(f"{path}.choices", "must be a non-empty list of architectures")
    texts: list[str] = []
    for i, item in enumerate(raw):
        try:
            text = parse_architecture(item if isinstance(item, str) else json.dumps(item)).to_text()
        except ArchitectureError as exc:
            raise SpaceError(f"{path}.choices[{i}]", str(exc)) from None
        reason = param.problem(text)  # bounds and input (param has no choices yet)
        if reason:
            raise SpaceError(f"{path}.choices[{i}]", reason)
        if text in texts:
            raise SpaceError(f"{path}.choices[{i}]", f"repeats choice {texts.index(text)}")
        texts.append(text)
    return tuple(texts)
