"""The ``space:`` section: each parameter's definition, checked with its key path."""

from __future__ import annotations

import math
import re
from typing import Any

from trellis.search.architectures.param import KIND as ARCHITECTURE
from trellis.search.architectures.param import parse_spec as parse_architecture_spec
from trellis.search.config.problems import Problems, number
from trellis.search.space import Categorical, Fixed, Float, Int, Param, SearchSpace, SpaceError
from trellis.tracking.limits import param_problem

MAX_BOUND = 1e300  # beyond it the width of a range overflows a float
PARAM_NAME = re.compile(r"[\w\-./ ]{1,250}")


def _parse_param(name: str, spec: Any, problems: Problems) -> Param | None:
    path = f"space.{name}"
    if not isinstance(spec, dict):
        if isinstance(spec, list):
            problems.add(path, "a list is ambiguous: write {type: categorical, choices: [...]}")
            return None
        if isinstance(spec, str | int | float | bool):
            return Fixed(name, value=spec)
        problems.add(path, f"must be a mapping or a constant, got {type(spec).__name__}")
        return None
    when = _parse_when(spec.get("when"), path, problems)
    kind = spec.get("type") or _implied_type(spec)
    if kind in ("float", "int"):
        return _parse_numeric(name, kind, spec, when, problems)
    if kind == "categorical":
        return _parse_categorical(name, spec, when, problems)
    if kind == "fixed":
        value = spec.get("value")
        if not isinstance(value, str | int | float | bool):
            problems.add(f"{path}.value", "a fixed parameter needs a string, number or boolean value")
            return None
        return Fixed(name, when=when, value=value)
    if kind == ARCHITECTURE:
        try:
            return parse_architecture_spec(name, spec, when)
        except SpaceError as exc:
            problems.add(exc.path, exc.reason)
            return None
    problems.add(f"{path}.type", f"must be float, int, categorical, fixed or architecture, got {kind!r}")
    return None


def _implied_type(spec: dict[str, Any]) -> str | None:
    """The type a definition without ``type:`` implies (integers for low and high make an int)."""
    if "choices" in spec:
        return "categorical"
    if "value" in spec:
        return "fixed"
    if "low" in spec and "high" in spec:
        both_int = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("low", "high"))
        return "int" if both_int else "float"
    return None


def _unknown_keys(path: str, spec: dict[str, Any], allowed: set[str], kind: str, problems: Problems) -> None:
    for unknown in sorted(set(spec) - {"type", "when"} - allowed):
        problems.add(f"{path}.{unknown}", f"unknown key for a {kind} parameter")


def _parse_numeric(name: str, kind: str, spec: dict[str, Any], when: dict, problems: Problems) -> Param | None:
    path = f"space.{name}"
    _unknown_keys(path, spec, {"low", "high", "log"}, kind, problems)
    low = number(spec, "low", path, problems, integer=kind == "int")
    high = number(spec, "high", path, problems, integer=kind == "int")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        problems.add(f"{path}.log", "must be true or false")
        log = False
    if low is None or high is None:
        if "low" not in spec or "high" not in spec:
            problems.add(path, "needs both 'low' and 'high'")
        return None
    if low >= high:
        problems.add(f"{path}.high", f"must be greater than low ({low}), got {high}")
        return None
    if not math.isfinite(float(high) - float(low)) or max(abs(low), abs(high)) > MAX_BOUND:
        problems.add(path, f"bounds must lie within ±{MAX_BOUND:g}, got [{low}, {high}]")
        return None
    if kind == "int" and max(abs(low), abs(high)) > 2**53:
        problems.add(path, f"integer bounds must lie within ±2**53 (exact as floats), got [{low}, {high}]")
        return None
    if log and low <= 0:
        problems.add(f"{path}.low", f"must be > 0 on a log scale, got {low}")
        return None
    if kind == "int":
        return Int(name, when=when, low=low, high=high, log=log)
    return Float(name, when=when, low=float(low), high=float(high), log=log)


def _parse_categorical(name: str, spec: dict[str, Any], when: dict, problems: Problems) -> Param | None:
    path = f"space.{name}"
    _unknown_keys(path, spec, {"choices"}, "categorical", problems)
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        problems.add(f"{path}.choices", "must be a non-empty list")
        return None
    if not all(isinstance(c, str | int | float | bool) for c in choices):
        problems.add(f"{path}.choices", "choices must be strings, numbers or booleans")
        return None
    if len(set(map(repr, choices))) != len(choices):
        problems.add(f"{path}.choices", "has duplicates")
        return None
    return Categorical(name, when=when, choices=tuple(choices))


def _parse_when(raw: Any, path: str, problems: Problems) -> dict[str, tuple[Any, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        problems.add(f"{path}.when", "must map a parameter name to a value or a list of values")
        return {}
    return {k: tuple(v) if isinstance(v, list) else (v,) for k, v in raw.items()}


def parse_space(raw: Any, problems: Problems) -> SearchSpace | None:
    if not isinstance(raw, dict) or not raw:
        problems.add("space", "is required: a mapping of parameter name to its definition")
        return None
    params = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not PARAM_NAME.fullmatch(name) or name.startswith("trellis."):
            problems.add(
                f"space.{name}",
                "parameter names are letters, digits, '_', '-', '.', '/' or spaces (MLflow's rule), "
                "at most 250 characters, not starting with 'trellis.'",
            )
            continue
        reason = param_problem(name, "")
        if reason:  # MLflow's own rule beyond the characters: no name that resolves to another path
            problems.add(f"space.{name}", reason)
            continue
        p = _parse_param(name, spec, problems)
        if p is not None:
            params.append(p)
    if problems.items:
        return None
    try:
        return SearchSpace(params)
    except SpaceError as exc:
        problems.add(exc.path, exc.reason)
        return None
