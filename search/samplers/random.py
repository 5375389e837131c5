"""Random search: independent draws from the space (seeded, so a resumed search repeats the sequence)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trellis.search.config import Objective
from trellis.search.prior import draw_config
from trellis.search.samplers.base import Config, Sampler
from trellis.search.space import SearchSpace


class RandomSampler(Sampler):
    name = "random"

    def __init__(self, space: SearchSpace, objective: Objective, seed: int | None = None, **settings: Any):
        super().__init__(space, objective, seed, **settings)
        self._rng = np.random.default_rng(seed)

    def propose(self, number: int, budget: int | None = None) -> Config:
        if self.prior is not None:  # a relaunch: draws from its prior, decaying
            return draw_config(self.prior, self.space, self._rng, self.ended)
        return self.space.sample(self._rng)

    def skip(self, n: int) -> None:
        for i in range(n):  # the same draws as before, so a seeded search goes on with the same sequence
            self.propose(i)
