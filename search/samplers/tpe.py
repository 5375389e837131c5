"""TPE through Optuna's ask/tell interface."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from trellis.search.config import Objective
from trellis.search.prior import Prior, draw_config, exponent, log_prior
from trellis.search.samplers.base import Config, Sampler, useful_prior, with_prior_draws
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
        prior: Prior | None = None,
        **settings: Any,
    ):
        super().__init__(space, objective, seed, **settings)
        import optuna

        self.prior = useful_prior(prior)

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
                   prior=config.prior, **config.algorithm.settings)  # fmt: skip

    def _optuna_sampler(self, seed: int | None, settings: dict[str, Any]) -> Any:
        import optuna

        multivariate = bool(settings.get("multivariate", True))
        kind = optuna.samplers.TPESampler if self.prior is None else _prior_tpe_class()
        extra = {} if self.prior is None else {"weigh": self._log_prior}
        return kind(
            **extra,
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

    def _log_prior(self, samples: dict[str, np.ndarray]) -> np.ndarray | None:
        """``exponent(t) * log pi`` at Optuna's candidates (its internal form: a categorical's index)."""
        assert self.prior is not None
        columns = {}
        for name, values in samples.items():
            p = self.space[name] if name in self.space else None  # noqa: SIM401 (a SearchSpace has no get)
            if isinstance(p, Categorical):
                columns[name] = [p.choices[int(i)] for i in np.asarray(values).ravel()]
            elif p is not None:
                columns[name] = values
        total = log_prior(self.prior, self.space, columns)
        return None if total is None else exponent(self.prior.strength, self.ended) * total

    def _startup_from_prior(self) -> None:
        """While TPE would still draw at random (fewer ended trials than its start-up), draw from the prior."""
        from optuna.trial import TrialState

        if self.prior is None:
            return
        done = len(self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        if done < int(self.settings.get("n_startup_trials", 10)):
            config = draw_config(self.prior, self.space, self._prior_rng, self.ended)
            self._study.enqueue_trial({k: v for k, v in config.items() if not isinstance(self.space[k], Fixed)})

    def propose(self, number: int, budget: int | None = None) -> Config:
        self._startup_from_prior()
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


def _prior_tpe_class() -> type:
    """Optuna's TPE whose acquisition (``log l(x) - log g(x)`` at candidates drawn from ``l``) also weighs the
    prior: ``+ exponent(t) * log pi(x)``, piBO's form. It overrides one method of Optuna's TPE
    (``_compute_acquisition_func``, the same from Optuna 3.x to 5.x); ``tests/test_prior_sampling.py`` checks
    the hook is still called, so an Optuna that renames it fails a test, not a search."""
    import optuna

    class PriorTPESampler(optuna.samplers.TPESampler):
        def __init__(self, *, weigh: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._weigh = weigh

        def _compute_acquisition_func(self, samples: Any, mpe_below: Any, mpe_above: Any) -> Any:
            values = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
            extra = self._weigh(samples)
            return values if extra is None else values + extra

    if not hasattr(optuna.samplers.TPESampler, "_compute_acquisition_func"):
        raise RuntimeError(f"optuna {optuna.__version__}: its TPE has no acquisition hook for a prior")
    return PriorTPESampler


class _quiet_experimental_warnings:
    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")
        logging.getLogger("optuna").setLevel(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
