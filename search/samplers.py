"""Samplers: propose a configuration from the history, learn from results.

Adding an algorithm means adding one class here and one entry in ``SAMPLERS``. The runner calls
``propose(number, budget)`` for each new trial, in sampling order, and ``observe(...)`` each time one of
its jobs ends (once per trial, or once per rung for Hyperband and BOHB, with the budget reached).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from search.config import Objective, SearchConfig
from search.space import Categorical, Fixed, Float, Int, SearchSpace, Value

Config = dict[str, Value]


class Sampler(ABC):
    """Proposes configurations; ``propose`` returns None when the sampler has nothing left to try."""

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, objective: Objective, seed: int | None = None, **settings: Any):
        self.space = space
        self.objective = objective
        self.seed = seed
        self.settings = settings

    @abstractmethod
    def propose(self, number: int, budget: int | None = None) -> Config | None:
        """A configuration for trial ``number``, to be run to ``budget`` (when the scheduler knows it)."""

    def observe(self, number: int, params: Config, value: float | None, state: str, budget: int | None = None) -> None:
        """Learn from a finished trial. ``state`` is 'completed', 'failed', 'killed' or 'pruned'."""

    def size(self) -> int | None:
        """How many configurations the sampler can propose in all, or None when unbounded."""
        return None

    def skip(self, n: int) -> None:
        """A resumed search: pass over the ``n`` proposals the interrupted run already made."""

    def trial_tags(self, number: int) -> dict[str, str]:
        """Tags explaining how trial ``number``'s configuration was chosen (recorded on its run)."""
        return {}


class RandomSampler(Sampler):
    name = "random"

    def __init__(self, space: SearchSpace, objective: Objective, seed: int | None = None, **settings: Any):
        super().__init__(space, objective, seed, **settings)
        self._rng = np.random.default_rng(seed)

    def propose(self, number: int, budget: int | None = None) -> Config:
        return self.space.sample(self._rng)

    def skip(self, n: int) -> None:
        for _ in range(n):  # the same draws as before, so a seeded search goes on with the same sequence
            self.space.sample(self._rng)


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


class TPESampler(Sampler):
    """Optuna's TPE through its ask/tell interface, so the model is the maintained one.

    Conditional parameters are suggested only when active (define-by-run), which Optuna's
    ``group=True`` mode handles as separate sub-spaces.
    """

    name = "tpe"

    def __init__(self, space: SearchSpace, objective: Objective, seed: int | None = None, **settings: Any):
        super().__init__(space, objective, seed, **settings)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        multivariate = bool(settings.get("multivariate", True))
        with _quiet_experimental_warnings():
            sampler = optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=int(settings.get("n_startup_trials", 10)),
                multivariate=multivariate,
                group=multivariate,
                constant_liar=True,
            )
        self._study = optuna.create_study(
            sampler=sampler, direction="maximize" if objective.direction == "max" else "minimize"
        )
        self._asked: dict[int, Any] = {}

    def propose(self, number: int, budget: int | None = None) -> Config:
        trial = self._study.ask()
        config: Config = {}
        for p in self.space:
            if not p.is_active(config):
                continue
            if isinstance(p, Fixed):
                config[p.name] = p.value
            elif isinstance(p, Float):
                config[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
            elif isinstance(p, Int):
                config[p.name] = trial.suggest_int(p.name, p.low, p.high, log=p.log)
            elif isinstance(p, Categorical):
                config[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        self._asked[number] = trial
        return config

    def observe(self, number: int, params: Config, value: float | None, state: str, budget: int | None = None) -> None:
        from optuna.trial import TrialState

        if state == "completed" and value is not None and math.isfinite(value):
            outcome: dict[str, Any] = {"values": [value]}  # the keyword both tell() and create_trial() take
        else:
            outcome = {"state": TrialState.PRUNED if state == "pruned" else TrialState.FAIL}
        trial = self._asked.pop(number, None)
        if trial is None:  # a trial TPE did not propose (a resumed search's past, or a retry)
            self._add_past(params, outcome)
        else:
            self._study.tell(trial, **outcome)

    def _add_past(self, params: Config, outcome: dict[str, Any]) -> None:
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        distributions = {}
        for p in self.space:
            if p.name not in params or isinstance(p, Fixed):
                continue
            if isinstance(p, Float):
                distributions[p.name] = FloatDistribution(p.low, p.high, log=p.log)
            elif isinstance(p, Int):
                distributions[p.name] = IntDistribution(p.low, p.high, log=p.log)
            elif isinstance(p, Categorical):
                distributions[p.name] = CategoricalDistribution(list(p.choices))
        known = {k: params[k] for k in distributions}
        self._study.add_trial(optuna.trial.create_trial(params=known, distributions=distributions, **outcome))


class _quiet_experimental_warnings:
    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")
        logging.getLogger("optuna").setLevel(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


SAMPLERS: dict[str, type[Sampler]] = {cls.name: cls for cls in (RandomSampler, GridSampler, TPESampler)}
# Algorithms whose scheduler decides budgets and whose new configurations come from a plain sampler.
SAMPLER_OF = {"hyperband": "random", "pbt": "random"}


def sampler_class(name: str) -> type[Sampler]:
    if name == "bohb":  # imported on demand: hpbandster pulls in statsmodels
        from search.bohb import BOHBSampler

        return BOHBSampler
    return SAMPLERS[name]


def make_sampler(config: SearchConfig) -> Sampler:
    name = config.algorithm.name
    if name in SAMPLER_OF:
        return SAMPLERS[SAMPLER_OF[name]](config.space, config.objective, config.algorithm.seed)
    return sampler_class(name)(config.space, config.objective, config.algorithm.seed, **config.algorithm.settings)
