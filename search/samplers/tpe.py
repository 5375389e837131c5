"""TPE through Optuna's ask/tell interface."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from trellis.search.config import Objective
from trellis.search.samplers.base import Config, Sampler, with_prior_draws
from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace
from trellis.tracking.schema import EndReason


class TPESampler(Sampler):
    """Optuna's TPE through its ask/tell interface, so the model is the maintained one.

    Conditional parameters are suggested only when active (define-by-run), which Optuna's
    ``group=True`` mode handles as separate sub-spaces.
    """

    name = "tpe"

    def __init__(
        self,
        space: SearchSpace,
        objective: Objective,
        seed: int | None = None,
        objectives: tuple[Objective, ...] | None = None,
        **settings: Any,
    ):
        super().__init__(space, objective, seed, **settings)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.objectives = tuple(objectives or (objective,))
        with _quiet_experimental_warnings():
            sampler = self._optuna_sampler(seed, settings)
        directions = ["maximize" if o.direction == "max" else "minimize" for o in self.objectives]
        self._study = optuna.create_study(sampler=sampler, directions=directions)
        self._asked: dict[int, Any] = {}
        self._prior_rng = np.random.default_rng(seed)  # kinds TPE does not model (architectures)

    @classmethod
    def from_config(cls, config: Any) -> TPESampler:
        """Every objective: with several, Optuna's multi-objective TPE (its study has one direction each)."""
        return cls(config.space, config.objective, config.algorithm.seed, objectives=tuple(config.objectives),
                   **config.algorithm.settings)  # fmt: skip

    def _optuna_sampler(self, seed: int | None, settings: dict[str, Any]) -> Any:
        import optuna

        multivariate = bool(settings.get("multivariate", True))
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=int(settings.get("n_startup_trials", 10)),
            multivariate=multivariate,
            group=multivariate,
            constant_liar=True,
        )

    @property
    def study(self) -> Any:
        """The Optuna study TPE learns in (read-only use: what it was told)."""
        return self._study

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
        return with_prior_draws(self.space, config, self._prior_rng)

    def observe(self, number: int, params: Config, value: float | None, state: str, budget: int | None = None) -> None:
        self.observe_values(number, params, None if value is None else [value], state, budget)

    def observe_values(
        self, number: int, params: Config, values: list[float] | None, state: str, budget: int | None = None
    ) -> None:
        from optuna.trial import TrialState

        complete = values is not None and len(values) == len(self.objectives)
        if state == EndReason.COMPLETED and complete and all(math.isfinite(v) for v in values):
            outcome: dict[str, Any] = {"values": list(values)}  # the keyword both tell() and create_trial() take
        else:
            outcome = {"state": TrialState.PRUNED if state == EndReason.PRUNED else TrialState.FAIL}
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
