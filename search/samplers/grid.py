"""Grid search over the space's grid values."""

from __future__ import annotations

from typing import Any

import numpy as np

from trellis.search.config import Objective
from trellis.search.samplers.base import Config, Sampler
from trellis.search.space import SearchSpace, product_size


class GridSampler(Sampler):
    """Every combination of the space's grid values (``points`` per continuous parameter)."""

    name = "grid"

    def __init__(self, space: SearchSpace, objective: Objective, seed: int | None = None, **settings: Any):
        super().__init__(space, objective, seed, **settings)
        self._grid = space.grid(int(settings.get("points", 5)))
        if settings.get("shuffle"):
            order = np.random.default_rng(seed).permutation(len(self._grid))
            self._grid = [self._grid[i] for i in order]
        self._next = 0

    def propose(self, number: int, budget: int | None = None) -> Config | None:
        if self._next >= len(self._grid):
            return None
        config = self._grid[self._next]
        self._next += 1
        return dict(config)

    def size(self) -> int:
        return len(self._grid)

    def skip(self, n: int) -> None:
        self._next += n

    def requeue(self, param: str, order: list[Any], done: set[Any] | None = None) -> list[Any]:
        """The configurations still to propose, by ``param``'s value in ``order`` (an ablation's queue, edited
        from the models page); those whose value is left out are dropped. ``done``: the values already run
        (a resumed search's past trials; by default what this sampler proposed). Returns the dropped values."""
        done = {c.get(param) for c in self._grid[: self._next]} if done is None else set(done)
        ran = [c for c in self._grid if c.get(param) in done]
        by_value: dict[Any, list[Config]] = {}
        for config in self._grid:
            if config.get(param) not in done:
                by_value.setdefault(config.get(param), []).append(config)
        kept = [config for value in order for config in by_value.pop(value, [])]
        self._grid, self._next = ran + kept, len(ran)
        return list(by_value)


MAX_GRID = 1_000_000


def check_settings(settings: dict[str, Any], *, space: SearchSpace | None, **_: Any) -> list[tuple[str, str]]:
    """A grid must stay countable (its registry row names this function)."""
    if space is None:
        return []
    size = product_size(space, settings["points"])
    if size > MAX_GRID:
        return [("algorithm.points", f"the grid would have {size} points (limit {MAX_GRID})")]
    return []
