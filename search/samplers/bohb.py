"""BOHB (Falkner et al. 2018): Hyperband's schedule, with new configurations from hpbandster's model.

Only hpbandster's config generator is used (its Pyro4 master/worker is not): Trellis' Hyperband
scheduler decides budgets and promotions, and this sampler asks the generator for each new
configuration and tells it every result at the budget it was measured on. The space is translated to
ConfigSpace once; categorical choices travel as their index, so any value type survives the round trip.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trellis.search.config import Objective
from trellis.search.prior import draw_config
from trellis.search.samplers.base import Config, Sampler, with_prior_draws
from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace
from trellis.tracking import schema
from trellis.tracking.schema import EndReason


def to_configspace(space: SearchSpace, seed: int | None = None) -> Any:
    """The ConfigSpace equivalent of ``space`` (fixed parameters left out, conditions kept)."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    hps: dict[str, Any] = {}
    for p in space:
        if isinstance(p, Float):
            hps[p.name] = CS.UniformFloatHyperparameter(p.name, lower=p.low, upper=p.high, log=p.log)
        elif isinstance(p, Int):
            hps[p.name] = CS.UniformIntegerHyperparameter(p.name, lower=p.low, upper=p.high, log=p.log)
        elif isinstance(p, Categorical):
            hps[p.name] = CS.CategoricalHyperparameter(p.name, [str(i) for i in range(len(p.choices))])
    cs.add(list(hps.values()))
    conditions = []
    for p in space:
        if p.name not in hps or not p.when:
            continue
        parts = []
        for parent, allowed in p.when.items():
            parent_param = space[parent]
            if parent not in hps:  # a fixed parent: the condition holds or never does (checked by the space)
                continue
            values = [_encode(parent_param, v) for v in allowed]
            parts.append(CS.InCondition(hps[p.name], hps[parent], values))
        if len(parts) == 1:
            conditions.append(parts[0])
        elif parts:
            conditions.append(CS.AndConjunction(*parts))
    if conditions:
        cs.add(conditions)
    return cs


def _encode(p: Any, value: Any) -> Any:
    return str(p.choices.index(value)) if isinstance(p, Categorical) else value


def from_configspace(space: SearchSpace, values: dict[str, Any]) -> Config:
    """Back from ConfigSpace's dictionary to a configuration of ``space``, in range and typed."""
    config: Config = {}
    for p in space:
        if not p.is_active(config):
            continue
        if isinstance(p, Fixed):
            config[p.name] = p.value
        elif isinstance(p, Categorical):
            config[p.name] = p.choices[int(values[p.name])]
        elif isinstance(p, Int):
            config[p.name] = int(min(max(round(float(values[p.name])), p.low), p.high))
        elif isinstance(p, Float):
            config[p.name] = float(min(max(float(values[p.name]), p.low), p.high))
    return config


@dataclass
class _Job:
    """The three fields of an hpbandster job that its config generator reads."""

    kwargs: dict[str, Any]
    result: dict[str, float] | None
    exception: str | None = None
    timestamps: dict[str, float] = field(default_factory=dict)


class BOHBSampler(Sampler):
    name = "bohb"

    def __init__(self, space: SearchSpace, objective: Objective, seed: int | None = None, **settings: Any):
        super().__init__(space, objective, seed, **settings)
        from hpbandster.optimizers.config_generators.bohb import BOHB

        self._cs = to_configspace(space, seed)
        n_hps = len(list(self._cs.values()))
        min_points = int(settings.get("min_points_in_model", 0)) or None
        logger = logging.getLogger("trellis.bohb")
        logger.setLevel(logging.ERROR)  # its warnings about degenerate KDEs are expected on small data
        self._generator = BOHB(
            self._cs,
            min_points_in_model=max(min_points, n_hps + 1) if min_points else None,
            top_n_percent=int(settings.get("top_n_percent", 15)),
            num_samples=int(settings.get("num_samples", 64)),
            random_fraction=float(settings.get("random_fraction", 1 / 3)),
            bandwidth_factor=float(settings.get("bandwidth_factor", 3.0)),
            min_bandwidth=float(settings.get("min_bandwidth", 1e-3)),
            logger=logger,
        )
        # hpbandster draws from numpy's global generator; keep our own state so runs are reproducible
        # and nothing else in the process is disturbed.
        self._np_state = np.random.RandomState(seed).get_state()
        self._prior_rng = np.random.default_rng(seed)  # kinds BOHB does not model (architectures)
        self._encoded: dict[int, dict[str, Any]] = {}
        self.model_based: dict[int, bool] = {}  # trial -> whether BOHB's model (not the prior) proposed it

    def _with_own_rng(self, func: Any, *args: Any) -> Any:
        outside = np.random.get_state()
        np.random.set_state(self._np_state)
        try:
            return func(*args)
        finally:
            self._np_state = np.random.get_state()
            np.random.set_state(outside)

    def propose(self, number: int, budget: int | None = None) -> Config:
        values, info = self._with_own_rng(self._generator.get_config, float(budget or 1))
        self.model_based[number] = bool(info.get("model_based_pick"))
        if self.model_based[number] or self.prior is None:
            drawn = from_configspace(self.space, values)
        else:  # BOHB's random share: a relaunch draws it from its prior (decaying) instead of uniformly
            drawn = draw_config(self.prior, self.space, self._prior_rng, self.ended)
        config = with_prior_draws(self.space, drawn, self._prior_rng)
        self._encoded[number] = {k: _encode(self.space[k], v) for k, v in config.items() if k in values}
        return config

    def trial_tags(self, number: int) -> dict[str, str]:
        if number not in self.model_based:
            return {}
        return {schema.MODEL_BASED: "true" if self.model_based[number] else "false"}

    def observe(self, number: int, params: Config, value: float | None, state: str, budget: int | None = None) -> None:
        """Every segment's end is a result at the budget it reached; a failure counts as a bad one."""
        if budget is None or budget <= 0 or state == EndReason.KILLED:
            return
        encoded = self._encoded.get(number)
        if encoded is None:
            encoded = {k: _encode(self.space[k], v) for k, v in params.items() if k in self._cs}
        ok = value is not None and math.isfinite(value) and state == EndReason.COMPLETED
        job = _Job(
            kwargs={"budget": float(budget), "config": encoded},
            result={"loss": -value * self.objective.sign} if ok else None,
        )
        self._with_own_rng(self._generator.new_result, job)
