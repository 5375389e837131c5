"""What a relaunched search takes from its parent (pure, no MLflow): the trials inside the refined space to
warm-start its sampler, and the configurations already run, which it must not propose again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trellis.search.space import Fixed, Float, Int, SearchSpace, Value

ConfigKey = tuple[tuple[str, Any], ...]


def inside(space: SearchSpace, params: dict[str, Value]) -> bool:
    """Whether a parent trial's values lie in ``space``: every active searched parameter present and in its
    range or set. Fixed parameters do not matter: fixing one says its value hardly changes the result."""
    for p in space:
        if isinstance(p, Fixed) or not p.is_active(params):
            continue
        if p.name not in params:
            return False
        value = params[p.name]
        if isinstance(p, Float | Int):
            if isinstance(value, bool) or not isinstance(value, int | float) or not p.low <= value <= p.high:
                return False
        elif not p.contains(value):  # a category, or a value of another kind (an architecture)
            return False
    return True


def config_key(space: SearchSpace, params: dict[str, Value]) -> ConfigKey:
    """The searched values of a configuration, comparable across the parent's and the child's spaces."""
    return tuple((p.name, params.get(p.name)) for p in space if not isinstance(p, Fixed))


def warm_start_set(space: SearchSpace, past: Iterable[Any]) -> list[Any]:
    """The parent's ended trials (completed, failed, early-stopped, pruned) that lie inside ``space``."""
    return [t for t in past if t.finished and inside(space, t.params)]


def known_results(space: SearchSpace, past: Iterable[Any]) -> dict[ConfigKey, Any]:
    """The parent's ended trials by configuration (the best-ranked last, so it wins a tie of duplicates)."""
    return {config_key(space, t.params): t for t in past if t.finished}
