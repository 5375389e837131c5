"""A relaunch's prior: where the parent's analysis says good configurations lie, as one density per parameter
that a sampler weighs against its own model, more weakly with every trial (piBO, Hvarfner et al. 2022).

In a search config::

    prior:
      strength: 3.6                                  # beta: the prior's exponent at the first trial
      parameters:
        lr:   {low: 0.001, high: 0.02, weight: 0.7}  # a numeric region
        act:  {choices: [relu, gelu], weight: 0.7}   # a set of choices
        u1:   {value: 0.3, weight: 0.6}              # one value (a fixed verdict), kept searchable

Density of a numeric parameter at ``u``, its value on [0, 1] of the searched range (log parameters in log
space, ``trellis.search.space.to_unit``)::

    pi(u) = w * N(u; c, s) / Z + (1 - w)        c: the region's centre, s: half its width (at least SPREAD_FLOOR),
                                                Z: N's mass on [0, 1] (truncated to the range)

and of a categorical parameter at choice ``k`` of ``K``: ``pi(k) = w * [k in S] / |S| + (1 - w) / K``. The
uniform part ``1 - w`` is the trust gate: weight 0 is no prior at all, and every value keeps some mass (``w`` is
at most ``MAX_WEIGHT``), so a wrong prior slows a search but never walls the optimum off.

Decay: a model-based sampler adds ``exponent(t) * log pi(x)`` to its acquisition, ``exponent(t) = beta / (1 + t)``
after ``t`` of its own trials ended; a sampler that draws (random, Hyperband, BOHB's random share, TPE's
start-up) draws from ``pi`` with every weight scaled by ``min(1, exponent(t))``.

Pure: no Optuna, no MLflow. ``trellis.search.analysis.refine.prior_from_verdicts`` builds one from the verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trellis.search.space import Categorical, Fixed, Float, Int, Param, SearchSpace, from_unit, to_unit

MAX_WEIGHT = 0.95  # a weight of 1 is taken as this: every value keeps at least 5% of the uniform's chance
SPREAD_FLOOR = 0.05  # the narrowest spread on [0, 1]: a single value still has a neighbourhood
DEFAULT_STRENGTH = 3.0  # beta when the search has no trial limit to derive it from
MAX_STRENGTH = 100.0


@dataclass(frozen=True)
class ParameterPrior:
    """Where one parameter's good values lie (``low``..``high`` or ``choices``) and how much to trust it."""

    name: str
    weight: float  # 0..1: the mixture weight of the region against the uniform
    low: float | None = None  # numeric: the favoured region (original units); low == high: one value
    high: float | None = None
    choices: tuple[Any, ...] | None = None  # categorical: the favoured choices

    def to_plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"weight": round(float(self.weight), 4)}
        if self.choices is not None:
            out["choices"] = list(self.choices)
        elif self.low == self.high:
            out["value"] = self.low
        else:
            out.update(low=self.low, high=self.high)
        return out


@dataclass(frozen=True)
class Prior:
    parameters: Mapping[str, ParameterPrior] = field(default_factory=dict)
    strength: float = DEFAULT_STRENGTH  # beta

    def to_plain(self) -> dict[str, Any]:
        return {
            "strength": round(float(self.strength), 4),
            "parameters": {name: p.to_plain() for name, p in self.parameters.items()},
        }

    @property
    def empty(self) -> bool:
        return not any(p.weight > 0 for p in self.parameters.values())


def default_strength(max_trials: int | None) -> float:
    """piBO's choice (SMAC3's default): beta is a tenth of the trials, here at least 1."""
    return DEFAULT_STRENGTH if not max_trials else max(1.0, max_trials / 10)


def exponent(strength: float, ended: int) -> float:
    """The prior's exponent after ``ended`` of the search's own trials ended: beta / (1 + t)."""
    return float(strength) / (1.0 + max(0, int(ended)))


# -- one parameter's density --------------------------------------------------------------------------------------
def _normal_cdf(z: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + _erf(np.asarray(z, dtype=float) / math.sqrt(2.0)))


_erf = np.vectorize(math.erf, otypes=[float])


def _weight(weight: float) -> float:
    return min(max(float(weight), 0.0), MAX_WEIGHT)


def _mass(c: float, s: float) -> float:
    """The normal's mass on [0, 1] (its truncation to the range)."""
    return float(_normal_cdf((1 - c) / s) - _normal_cdf(-c / s))


def centre_spread(prior: ParameterPrior, param: Float | Int) -> tuple[float, float]:
    """The region's centre and spread on [0, 1] of ``param``'s range (its own scale)."""
    lo, hi = (float(u) for u in to_unit([prior.low, prior.high], param.low, param.high, param.log))
    lo, hi = min(max(lo, 0.0), 1.0), min(max(hi, 0.0), 1.0)
    return (lo + hi) / 2, max((hi - lo) / 2, SPREAD_FLOOR)


def unit_density(prior: ParameterPrior, param: Float | Int, unit: Any, weight: float | None = None) -> np.ndarray:
    """``pi(u)`` at values ``unit`` on [0, 1] (it integrates to 1 over [0, 1])."""
    w = _weight(prior.weight if weight is None else weight)
    c, s = centre_spread(prior, param)
    u = np.asarray(unit, dtype=float)
    mass = _mass(c, s)
    normal = np.exp(-0.5 * ((u - c) / s) ** 2) / (s * math.sqrt(2 * math.pi) * mass)
    return w * normal + (1 - w)


def choice_probabilities(prior: ParameterPrior, param: Categorical, weight: float | None = None) -> np.ndarray:
    """``pi(k)`` for each of ``param``'s choices, in its order."""
    w = _weight(prior.weight if weight is None else weight)
    chosen = [any(str(c) == str(k) for k in prior.choices or ()) for c in param.choices]
    favoured = np.asarray(chosen, dtype=float) / max(1, sum(chosen))
    return (
        w * favoured + (1 - w) / len(param.choices)
        if any(chosen)
        else np.full(len(param.choices), 1 / len(param.choices))
    )


def log_density(prior: ParameterPrior, param: Param, values: Any) -> np.ndarray:
    """``log pi`` at ``values`` (original units; a categorical's as its choices), for an acquisition."""
    values = np.asarray(values, dtype=object if isinstance(param, Categorical) else float)
    if isinstance(param, Categorical):
        probs = dict(zip((str(c) for c in param.choices), choice_probabilities(prior, param), strict=True))
        return np.log(np.array([probs.get(str(v), 1e-300) for v in values.ravel()], dtype=float))
    if isinstance(param, Float | Int):
        unit = to_unit(values, param.low, param.high, param.log)
        return np.log(unit_density(prior, param, unit))
    return np.zeros(values.shape)


def draw(prior: ParameterPrior, param: Param, rng: np.random.Generator, scale: float = 1.0) -> Any:
    """One value of ``param`` from ``pi``, its weight scaled by ``scale`` (the decay)."""
    w = _weight(prior.weight) * min(1.0, max(0.0, scale))
    if isinstance(param, Categorical):
        return param.choices[int(rng.choice(len(param.choices), p=choice_probabilities(prior, param, w)))]
    if not isinstance(param, Float | Int) or rng.random() >= w:
        return param.sample(rng)
    c, s = centre_spread(prior, param)
    for _ in range(64):  # rejection from the normal, truncated to [0, 1]; the centre is inside, so this ends
        u = rng.normal(c, s)
        if 0.0 <= u <= 1.0:
            break
    else:
        u = c
    value = from_unit(u, param.low, param.high, param.log)
    return int(min(max(round(value), param.low), param.high)) if isinstance(param, Int) else value


def draw_config(prior: Prior, space: SearchSpace, rng: np.random.Generator, ended: int) -> dict[str, Any]:
    """A configuration drawn from the prior (uniform where it says nothing), its weights decayed after
    ``ended`` trials."""
    scale = min(1.0, exponent(prior.strength, ended))
    config: dict[str, Any] = {}
    for p in space:
        if not p.is_active(config):
            continue
        favoured = prior.parameters.get(p.name)
        config[p.name] = p.value if isinstance(p, Fixed) else (
            draw(favoured, p, rng, scale) if favoured is not None else p.sample(rng)
        )  # fmt: skip
    return config


def log_prior(prior: Prior, space: SearchSpace, columns: Mapping[str, Any]) -> np.ndarray | None:
    """``sum log pi`` over the parameters in ``columns`` (name -> values, original units); None when the prior
    says nothing about any of them."""
    total = None
    for name, values in columns.items():
        favoured = prior.parameters.get(name)
        if favoured is None or name not in space or favoured.weight <= 0:
            continue
        term = log_density(favoured, space[name], values)
        total = term if total is None else total + term
    return total


# -- the form's view -----------------------------------------------------------------------------------------------
FEW_LEVELS = 16  # an int parameter with at most this many values is drawn value by value


def few_levels(param: Param) -> bool:
    return isinstance(param, Int) and not param.log and param.high - param.low + 1 <= FEW_LEVELS


def level_probabilities(prior: ParameterPrior | None, param: Int) -> np.ndarray:
    """Each whole value's chance under ``draw`` (the normal part rounded, the uniform part one in n each)."""
    values = np.arange(param.low, param.high + 1)
    uniform = np.full(len(values), 1 / len(values))
    if prior is None:
        return uniform
    w = _weight(prior.weight)
    c, s = centre_spread(prior, param)
    edges = np.clip(to_unit(np.append(values - 0.5, values[-1] + 0.5), param.low, param.high, False), 0, 1)
    cdf = _normal_cdf((edges - c) / s)
    mass = _mass(c, s)
    return w * np.diff(cdf) / mass + (1 - w) * uniform


def density_curve(prior: ParameterPrior | None, param: Param, points: int = 101) -> tuple[list[Any], list[float]]:
    """``(x, pi(x))`` over ``param``'s range to draw (x in original units, density per unit of [0, 1]); a
    categorical's choices, or an int's few values, and their chances times their number (1: no pull)."""
    if isinstance(param, Categorical):
        empty = ParameterPrior(param.name, 0.0, choices=())
        probs = choice_probabilities(prior or empty, param)
        return list(param.choices), [float(p * len(param.choices)) for p in probs]
    if not isinstance(param, Float | Int):
        return [], []
    if few_levels(param):  # value by value: a chance times the number of values (1 = uniform)
        probs = level_probabilities(prior, param)
        return list(range(param.low, param.high + 1)), [float(p * len(probs)) for p in probs]
    unit = np.linspace(0.0, 1.0, points)
    x = [from_unit(u, param.low, param.high, param.log) for u in unit]
    y = unit_density(prior, param, unit) if prior is not None else np.ones(points)
    return x, [float(v) for v in y]


def pull(prior: ParameterPrior | None, param: Param) -> float:
    """How strongly the prior pulls, 0 (none) .. 1 (all its mass in the region): its mass inside the favoured
    region minus the region's share of the range."""
    if prior is None or prior.weight <= 0:
        return 0.0
    if isinstance(param, Categorical):
        probs = choice_probabilities(prior, param)
        chosen = [any(str(c) == str(k) for k in prior.choices or ()) for c in param.choices]
        return float(max(0.0, probs[chosen].sum() - sum(chosen) / len(param.choices)))
    if not isinstance(param, Float | Int):
        return 0.0
    c, s = centre_spread(prior, param)
    lo, hi = max(0.0, c - s), min(1.0, c + s)
    mass = _mass(c, s)
    inside = float(_normal_cdf((hi - c) / s) - _normal_cdf((lo - c) / s)) / mass
    return float(max(0.0, _weight(prior.weight) * (inside - (hi - lo))))
