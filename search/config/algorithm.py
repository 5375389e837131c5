"""The ``algorithm:`` section, checked against the algorithm's row in ``trellis.search.registry``."""

from __future__ import annotations

from typing import Any

from trellis.extras import hint, missing
from trellis.search.config.model import AlgorithmConfig, Budget, Termination
from trellis.search.config.problems import Problems, number
from trellis.search.registry import ALGORITHMS, AlgorithmSpec, resolve
from trellis.search.space import SearchSpace


def parse_algorithm(raw: Any, problems: Problems) -> AlgorithmConfig:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        problems.add("algorithm", "must be a name or a mapping with 'name'")
        return AlgorithmConfig()
    name = raw.get("name", "random")
    spec = ALGORITHMS.get(name) if isinstance(name, str) else None
    if spec is None:
        problems.add("algorithm.name", f"must be one of {', '.join(ALGORITHMS)}, got {name!r}")
        return AlgorithmConfig()
    if spec.extra and missing(spec.extra):
        problems.add("algorithm.name", hint(name, spec.extra))
    seed = number(raw, "seed", "algorithm", problems, integer=True)
    if seed is not None and not 0 <= seed < 2**32:
        problems.add("algorithm.seed", f"must be between 0 and {2**32 - 1}, got {seed}")
        seed = None
    settings = _settings(spec, raw, problems)
    for key, (low, high) in spec.ranges.items():
        value = settings[key]
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            problems.add(f"algorithm.{key}", f"must be {bounds}, got {value!r}")
    return AlgorithmConfig(name=name, seed=seed, settings=settings)


def _settings(spec: AlgorithmSpec, raw: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """The row's defaults, overridden by the given values of the same type (an int is taken for a float)."""
    defaults = spec.settings
    settings = dict(defaults)
    for key, value in raw.items():
        if key in ("name", "seed"):
            continue
        if key not in defaults:
            allowed = ", ".join(["name", "seed", *defaults])
            problems.add(f"algorithm.{key}", f"is not a setting of {spec.name!r} (allowed: {allowed})")
            continue
        if isinstance(defaults[key], float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(defaults[key]):
            problems.add(f"algorithm.{key}", f"must be {type(defaults[key]).__name__}, got {value!r}")
            continue
        settings[key] = value
    return settings


def check_across_sections(
    algorithm: AlgorithmConfig, space: SearchSpace, budget: Budget, termination: Termination, problems: Problems
) -> None:
    """The row's own checks that look beyond ``algorithm:`` (PBT's interval against the budget, a grid's size)."""
    spec = ALGORITHMS[algorithm.name]
    if not spec.self_ending and termination.max_trials is None and termination.max_time_s is None:
        problems.add("termination", "needs max_trials or max_time_s, or the search would never end")
    if spec.check is not None:
        check = resolve(spec.check)
        for path, reason in check(algorithm.settings, space=space, budget=budget, termination=termination):
            problems.add(path, reason)
