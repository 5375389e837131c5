"""The ``prior:`` section (``trellis.search.prior``): checked against the space it guides and the algorithm that
draws from it, every problem as ``key.path: reason``."""

from __future__ import annotations

import math
from typing import Any

from trellis.search.config.problems import Problems
from trellis.search.prior import MAX_STRENGTH, ParameterPrior, Prior, default_strength
from trellis.search.registry import ALGORITHMS
from trellis.search.space import Categorical, Float, Int, SearchSpace

PRIOR_KEYS = {"strength", "parameters"}
NUMERIC_KEYS = {"low", "high", "value", "weight"}


def parse_prior(
    raw: Any, space: SearchSpace | None, algorithm: str, max_trials: int | None, problems: Problems
) -> Prior | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(
            "prior", "must be a mapping: {strength: 3, parameters: {lr: {low: 0.001, high: 0.01, weight: 0.7}}}"
        )
        return None
    for unknown in sorted(set(raw) - PRIOR_KEYS):
        problems.add(f"prior.{unknown}", f"unknown key (allowed: {', '.join(sorted(PRIOR_KEYS))})")
    spec = ALGORITHMS.get(algorithm)
    if spec is not None and not spec.uses_prior:
        users = ", ".join(sorted(n for n, s in ALGORITHMS.items() if s.uses_prior))
        problems.add(
            "prior", f"{algorithm} does not draw from a prior (only {users} do): remove it or change algorithm"
        )
    strength = raw.get("strength", default_strength(max_trials))
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not 0 <= strength <= MAX_STRENGTH:
        problems.add("prior.strength", f"must be a number from 0 to {MAX_STRENGTH:g}, got {strength!r}")
        strength = default_strength(max_trials)
    entries = raw.get("parameters") or {}
    if not isinstance(entries, dict):
        problems.add("prior.parameters", "must map parameter names to {low, high, weight} or {choices, weight}")
        return None
    parameters = {}
    for name, entry in entries.items():
        parsed = _parameter(str(name), entry, space, problems)
        if parsed is not None:
            parameters[str(name)] = parsed
    return Prior(parameters, float(strength))


def _parameter(name: str, entry: Any, space: SearchSpace | None, problems: Problems) -> ParameterPrior | None:
    path = f"prior.parameters.{name}"
    if not isinstance(entry, dict):
        problems.add(path, "must be a mapping: {low, high, weight}, {value, weight} or {choices, weight}")
        return None
    if space is None:
        return None
    if name not in space:
        problems.add(path, "is not a parameter of the space")
        return None
    param = space[name]
    weight = entry.get("weight")
    if weight is None:
        problems.add(f"{path}.weight", "is required: how far to trust this region, a number from 0 to 1")
        return None
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        problems.add(f"{path}.weight", f"must be a number from 0 to 1, got {weight!r}")
        return None
    if isinstance(param, Categorical):
        for unknown in sorted(set(entry) - {"choices", "weight"}):
            problems.add(f"{path}.{unknown}", "unknown key for a categorical parameter (allowed: choices, weight)")
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.add(f"{path}.choices", "must be a non-empty list of the parameter's choices")
            return None
        strange = [c for c in choices if not any(str(c) == str(k) for k in param.choices)]
        if strange:
            problems.add(f"{path}.choices", f"{strange} not among the parameter's choices {list(param.choices)}")
            return None
        return ParameterPrior(name, float(weight), choices=tuple(choices))
    if not isinstance(param, Float | Int):
        problems.add(path, "only a searched number or categorical parameter takes a prior")
        return None
    for unknown in sorted(set(entry) - NUMERIC_KEYS):
        problems.add(f"{path}.{unknown}", f"unknown key (allowed: {', '.join(sorted(NUMERIC_KEYS))})")
    if "value" in entry and ("low" in entry or "high" in entry):
        problems.add(path, "give either value (one point) or low and high (a region), not both")
        return None
    if "value" in entry:
        low = high = entry["value"]
        keys = ("value", "value")
    else:
        low, high, keys = entry.get("low"), entry.get("high"), ("low", "high")
    for key, value in zip(keys, (low, high), strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.add(f"{path}.{key}", f"must be a number, got {value!r}")
            return None
        if isinstance(param, Int) and value != int(value):
            problems.add(f"{path}.{key}", f"must be a whole number for an int parameter, got {value!r}")
            return None
        if not param.low <= value <= param.high:
            problems.add(f"{path}.{key}", f"{value} is outside the searched range [{param.low}, {param.high}]")
            return None
    if low > high:
        problems.add(f"{path}.low", f"must be <= high ({low} > {high})")
        return None
    return ParameterPrior(name, float(weight), low=float(low), high=float(high))
