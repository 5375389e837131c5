"""Samplers: propose a configuration from the history, learn from results.

Implementations live beside this module, one per file, and are named in ``trellis.search.registry``; this module
imports none of them. The runner calls
``propose(number, budget)`` for each new trial, in sampling order, and ``observe(...)`` each time one of
its jobs ends (once per trial, or once per rung for Hyperband and BOHB, with the budget reached).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from trellis.search.config import Objective
from trellis.search.prior import Prior
from trellis.search.space import SearchSpace, Value

if TYPE_CHECKING:
    from trellis.search.config import SearchConfig

Config = dict[str, Value]


def with_prior_draws(space: SearchSpace, config: Config, rng: np.random.Generator) -> Config:
    """``config`` plus a draw from its prior for every active parameter a model left out: the kinds it
    cannot model (an architecture), in the space's order."""
    out: Config = {}
    for p in space:
        if p.name in config:
            out[p.name] = config[p.name]
        elif p.is_active(out):
            out[p.name] = p.sample(rng)
    return out


def useful_prior(prior: Prior | None) -> Prior | None:
    """The prior a sampler should use: None when there is none or when every weight is 0 (plain sampling)."""
    return prior if prior is not None and not prior.empty else None


class Sampler(ABC):
    """Proposes configurations; ``propose`` returns None when the sampler has nothing left to try."""

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, objective: Objective, seed: int | None = None, **settings: Any):
        self.space = space
        self.objective = objective
        self.objectives: tuple[Objective, ...] = (
            objective,
        )  # all of them (``from_config``), the first is ``objective``
        self.seed = seed
        self.settings = settings
        self.prior: Prior | None = None  # a relaunch's prior that says something (``from_config``), else None
        self._ended: set[int] = set()

    @property
    def ended(self) -> int:
        """This search's own trials that ended: the prior's decay counts them."""
        return len(self._ended)

    def count_end(self, number: int, state: str) -> None:
        """Count a trial of this search that ended (each once; a warm start's past is not this search's)."""
        if number >= 0 and state != "killed":
            self._ended.add(number)

    @classmethod
    def from_config(cls, config: SearchConfig) -> Sampler:
        """The sampler a search config asks for (its algorithm's seed and settings)."""
        sampler = cls(config.space, config.objective, config.algorithm.seed, **config.algorithm.settings)
        sampler.objectives = tuple(config.objectives)
        sampler.prior = useful_prior(config.prior)
        return sampler

    @abstractmethod
    def propose(self, number: int, budget: int | None = None) -> Config | None:
        """A configuration for trial ``number``, to be run to ``budget`` (when the scheduler knows it)."""

    def observe(self, number: int, params: Config, value: float | None, state: str, budget: int | None = None) -> None:
        """Learn from a finished trial. ``state`` is 'completed', 'failed', 'killed' or 'pruned'."""

    def observe_values(
        self, number: int, params: Config, values: list[float] | None, state: str, budget: int | None = None
    ) -> None:
        """Learn from a finished trial of a search with several objectives: ``values`` holds one value per
        objective, in ``objectives``' order (None unless it completed). By default the first is observed."""
        self.observe(number, params, None if values is None else values[0], state, budget)

    def size(self) -> int | None:
        """How many configurations the sampler can propose in all, or None when unbounded."""
        return None

    def skip(self, n: int) -> None:
        """A resumed search: pass over the ``n`` proposals the interrupted run already made."""

    def trial_tags(self, number: int) -> dict[str, str]:
        """Tags explaining how trial ``number``'s configuration was chosen (recorded on its run)."""
        return {}
