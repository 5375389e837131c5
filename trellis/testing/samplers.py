"""``SamplerContract``: bounds and types, conditions, determinism, failure tolerance, pending trials."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from trellis.search.config import Objective
from trellis.search.registry import ALGORITHMS, resolve
from trellis.search.samplers.base import Sampler
from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace


def contract_space() -> SearchSpace:
    """Every kind of parameter: log float, log int, plain float, categorical, a conditional, a constant."""
    return SearchSpace(
        [
            Float("lr", low=1e-4, high=1e-1, log=True),
            Int("units", low=2, high=64, log=True),
            Float("x", low=-1.0, high=1.0),
            Categorical("optimizer", choices=("adam", "sgd")),
            Float("momentum", when={"optimizer": ("sgd",)}, low=0.0, high=0.99),
            Fixed("batch_size", value=32),
        ]
    )


def contract_loss(config: dict[str, Any]) -> float:
    """A known optimum: x = 0.3, lr = 1e-2."""
    return (config["x"] - 0.3) ** 2 + abs(math.log10(config["lr"]) + 2) * 0.1


def drive_sampler(sampler: Sampler, n: int, fail_every: int = 0) -> list[dict]:
    """Propose and observe ``n`` trials one after the other (every ``fail_every``-th fails)."""
    proposals = []
    for i in range(n):
        config = sampler.propose(i, budget=1)
        if config is None:
            break
        proposals.append(config)
        failed = fail_every and i % fail_every == 0
        sampler.observe(
            i, config, None if failed else contract_loss(config), "failed" if failed else "completed", budget=1
        )
    return proposals


class SamplerContract:
    """Subclass with ``algorithm`` (a registered name) and its ``settings``; pytest collects the checks."""

    algorithm: ClassVar[str] = ""
    settings: ClassVar[dict[str, Any]] = {}
    seeded: ClassVar[bool] = True  # different seeds give different proposals (a grid's order may not)

    def make(self, seed: int = 7) -> Sampler:
        spec = ALGORITHMS[self.algorithm]
        return resolve(spec.sampler)(contract_space(), Objective("loss", "min"), seed, **self.settings)

    def test_values_in_bounds_with_right_types_and_conditions(self):
        space = contract_space()
        for config in drive_sampler(self.make(), 40):
            space.validate(config)  # active parameters exactly, each within its range
            assert type(config["units"]) is int and type(config["lr"]) is float and config["batch_size"] == 32
            assert ("momentum" in config) == (config["optimizer"] == "sgd")

    def test_same_seed_same_proposals(self):
        assert drive_sampler(self.make(seed=11), 25) == drive_sampler(self.make(seed=11), 25)

    def test_different_seeds_differ(self):
        if self.seeded:
            assert drive_sampler(self.make(seed=1), 10) != drive_sampler(self.make(seed=2), 10)

    def test_failed_trials_are_tolerated(self):
        proposals = drive_sampler(self.make(), 30, fail_every=3)
        assert len(proposals) == 30
        assert len({tuple(sorted(c.items())) for c in proposals}) > 20  # keeps exploring

    def test_unobserved_pending_trials_do_not_block(self):
        """Parallel workers ask again before earlier trials report back."""
        sampler = self.make()
        pending = [sampler.propose(i) for i in range(6)]
        assert all(p is not None for p in pending)
        for i, config in enumerate(pending):
            sampler.observe(i, config, contract_loss(config), "completed", budget=1)
