"""A toy search algorithm that lives outside the engine: one module and, in the test, one registry row.

It proposes a van der Corput low-discrepancy sequence (base ``base``) on every float parameter's unit
range, so a resumed search must go on with exactly the points an unbroken one would have tried.
"""

from __future__ import annotations

from typing import Any

from trellis.search.config import Objective
from trellis.search.samplers.base import Config, Sampler
from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace


def van_der_corput(n: int, base: int) -> float:
    value, denominator = 0.0, 1.0
    while n:
        n, digit = divmod(n, base)
        denominator *= base
        value += digit / denominator
    return value


class ToySampler(Sampler):
    def __init__(self, space: SearchSpace, objective: Objective, seed: int | None = None, **settings: Any):
        super().__init__(space, objective, seed, **settings)
        self.base = int(settings["base"])
        self._drawn = 0

    def propose(self, number: int, budget: int | None = None) -> Config:
        self._drawn += 1
        unit = van_der_corput(self._drawn, self.base)
        config: Config = {}
        for p in self.space:
            if not p.is_active(config):
                continue
            if isinstance(p, Float):
                config[p.name] = p.to_unit_inverse(unit)
            elif isinstance(p, Int):
                config[p.name] = round(p.low + unit * (p.high - p.low))
            elif isinstance(p, Categorical):
                config[p.name] = p.choices[self._drawn % len(p.choices)]
            elif isinstance(p, Fixed):
                config[p.name] = p.value
        return config

    def skip(self, n: int) -> None:
        self._drawn += n
