"""Predicted objective, with a calibrated standard deviation, for any configuration of an analysed space.

``fit_surrogate(data)`` fits a random forest from the normalised parameters (``trellis.search.analysis.design``) to
the objective and keeps it as plain arrays (each tree's split feature, threshold, children and leaf values:
storable as msgpack or JSON, never pickled). A prediction is the trees' mean; its std is the trees' spread,
calibrated on held-out runs: a k-fold fit predicts every run it did not see, ``std^2 = a spread^2 + b`` is
fitted to those residuals (Gaussian likelihood: the spread says where the forest is unsure, ``b`` is the
noise no tree sees), then scaled so that 68.3% of the held-out residuals fall within one std.

``predict(surrogate, config)`` answers for one configuration (original units, as a search config or run
shows them); ``compare_spaces`` gives the predicted objective's distribution inside a refined space and
inside the analysed one, each sampled as a search would sample it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import minimize
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold

from trellis.search.analysis.design import AnalysisData, Axis

N_TREES = 48
MIN_LEAF = 2
FOLDS = 5
ONE_SIGMA = 0.6827  # the share of a normal within one std
MIN_RUNS = 8  # fewer runs: no surrogate (a fold would hold one run)


@dataclass
class Surrogate:
    """A fitted forest as plain arrays, the axes that map a configuration to its inputs, and the std's
    calibration (``std = scale * sqrt(a * spread^2 + b)``)."""

    axes: list[Axis]
    feature: np.ndarray  # (trees, nodes) int, -1 past a tree's end
    threshold: np.ndarray  # (trees, nodes)
    left: np.ndarray  # (trees, nodes) int, -1 at leaves
    right: np.ndarray
    value: np.ndarray  # (trees, nodes)
    a: float
    b: float
    scale: float
    metric: str
    direction: str
    coverage: float  # share of held-out runs within one calibrated std (k-fold, on the runs analysed)
    n_runs: int
    best: dict[str, Any]  # the best run's configuration (a starting point for the page's form)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.axes]

    def to_plain(self) -> dict:
        """Lists, numbers and strings only."""
        return {
            "axes": [[a.name, a.kind, float(a.low), float(a.high), bool(a.log), [_plain(c) for c in a.categories]]
                     for a in self.axes],
            "feature": self.feature.tolist(), "threshold": self.threshold.tolist(), "left": self.left.tolist(),
            "right": self.right.tolist(), "value": self.value.tolist(),
            "a": self.a, "b": self.b, "scale": self.scale, "metric": self.metric, "direction": self.direction,
            "coverage": self.coverage, "n_runs": self.n_runs, "best": {k: _plain(v) for k, v in self.best.items()},
        }  # fmt: skip

    @classmethod
    def from_plain(cls, d: dict) -> Surrogate:
        axes = [Axis(str(n), str(k), float(lo), float(hi), bool(lg), list(cs)) for n, k, lo, hi, lg, cs in d["axes"]]
        return cls(
            axes, np.array(d["feature"], int), np.array(d["threshold"], float), np.array(d["left"], int),
            np.array(d["right"], int), np.array(d["value"], float), float(d["a"]), float(d["b"]),
            float(d["scale"]), str(d["metric"]), str(d["direction"]), float(d["coverage"]), int(d["n_runs"]),
            dict(d["best"]),
        )  # fmt: skip


class Prediction(NamedTuple):
    mean: float
    std: float


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _forest(X: np.ndarray, y: np.ndarray, seed: int) -> RandomForestRegressor:
    return RandomForestRegressor(
        n_estimators=N_TREES, min_samples_leaf=MIN_LEAF, max_features=0.8, random_state=seed, n_jobs=1
    ).fit(X, y)


def _spread(forest: RandomForestRegressor, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    per_tree = np.array([t.predict(X) for t in forest.estimators_])
    return per_tree.mean(axis=0), per_tree.std(axis=0)


def _calibrate(residual: np.ndarray, spread: np.ndarray) -> tuple[float, float, float]:
    """(a, b, scale) for std = scale * sqrt(a spread^2 + b) from held-out residuals."""
    r2, s2 = residual**2, spread**2
    level = float(np.mean(r2)) or 1.0

    def nll(p):
        var = np.exp(p[0]) * s2 + np.exp(p[1]) * level
        return float(np.sum(np.log(var) + r2 / var))

    fit = minimize(nll, x0=[0.0, math.log(0.1)], method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-6})
    a, b = float(np.exp(fit.x[0])), float(np.exp(fit.x[1]) * level)
    base = np.sqrt(a * s2 + b)
    ratio = np.abs(residual) / base
    scale = float(np.quantile(ratio, ONE_SIGMA)) if len(ratio) else 1.0
    return a, b, scale if scale > 0 else 1.0


def fit_surrogate(data: AnalysisData, seed: int = 0) -> Surrogate:
    """The forest on every run of ``data``, its std calibrated on k-fold held-out predictions."""
    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    if len(y) < MIN_RUNS or X.shape[1] == 0:
        raise ValueError(f"need at least {MIN_RUNS} runs and one varying parameter (have {len(y)} runs)")
    residual, spread = np.empty(len(y)), np.empty(len(y))
    for train, test in KFold(min(FOLDS, len(y)), shuffle=True, random_state=seed).split(X):
        mean, sd = _spread(_forest(X[train], y[train], seed), X[test])
        residual[test], spread[test] = y[test] - mean, sd
    a, b, scale = _calibrate(residual, spread)
    coverage = float(np.mean(np.abs(residual) <= scale * np.sqrt(a * spread**2 + b)))
    forest = _forest(X, y, seed)
    trees = [t.tree_ for t in forest.estimators_]
    width = max(t.node_count for t in trees)

    def padded(get, fill, dtype):
        out = np.full((len(trees), width), fill, dtype=dtype)
        for k, t in enumerate(trees):
            out[k, : t.node_count] = get(t)
        return out

    best_row = int(np.argmax(y) if data.direction == "max" else np.argmin(y))
    return Surrogate(
        list(data.axes),
        padded(lambda t: t.feature, -1, int), padded(lambda t: t.threshold, 0.0, float),
        padded(lambda t: t.children_left, -1, int), padded(lambda t: t.children_right, -1, int),
        padded(lambda t: t.value[:, 0, 0], 0.0, float),
        a, b, scale, data.metric, data.direction, coverage, len(y),
        {axis.name: _from_unit(axis, X[best_row, i]) for i, axis in enumerate(data.axes)},
    )  # fmt: skip


def _from_unit(axis: Axis, unit: float) -> Any:
    if axis.kind == "categorical":
        k = len(axis.categories)
        return axis.categories[min(int(unit * k), k - 1)]
    value = axis.from_unit(float(unit))
    return int(round(value)) if axis.kind == "int" else float(f"{value:.6g}")


def predict_unit(surrogate: Surrogate, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and calibrated std at normalised points U (points, parameters)."""
    U = np.atleast_2d(np.asarray(U, float))
    trees, n = surrogate.feature.shape[0], len(U)
    node = np.zeros((trees, n), int)
    rows = np.arange(trees)[:, None]
    for _ in range(surrogate.feature.shape[1]):  # a tree is never deeper than its node count
        left = surrogate.left[rows, node]
        if (left < 0).all():
            break
        feature = np.maximum(surrogate.feature[rows, node], 0)
        go_left = U[np.arange(n)[None, :], feature] <= surrogate.threshold[rows, node]
        node = np.where(left < 0, node, np.where(go_left, left, surrogate.right[rows, node]))
    per_tree = surrogate.value[rows, node]
    spread = per_tree.std(axis=0)
    return per_tree.mean(axis=0), surrogate.scale * np.sqrt(surrogate.a * spread**2 + surrogate.b)


def config_to_unit(surrogate: Surrogate, config: dict[str, Any]) -> np.ndarray:
    """A configuration (original units) as the forest's inputs; ``name: reason`` for a value it cannot take.
    A parameter left out (a conditional one that is not set) sits at its low end, as in the analysis."""
    out = np.zeros(len(surrogate.axes))
    for i, axis in enumerate(surrogate.axes):
        value = config.get(axis.name)
        if value is None or value == "":
            continue
        if axis.kind == "categorical":
            if str(value) not in [str(c) for c in axis.categories]:
                raise ValueError(f"{axis.name}: {value!r} is not one of {', '.join(map(str, axis.categories))}")
            out[i] = float(axis.to_unit(np.array([value], dtype=object))[0])
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{axis.name}: {value!r} is not a number") from None
        if not math.isfinite(number) or (axis.log and number <= 0):
            raise ValueError(f"{axis.name}: {value!r} is not a possible value")
        out[i] = float(axis.to_unit(np.array([number]))[0])  # outside the analysed range: its nearest end
    return out


def predict(surrogate: Surrogate, config: dict[str, Any]) -> Prediction:
    mean, std = predict_unit(surrogate, config_to_unit(surrogate, config)[None, :])
    return Prediction(float(mean[0]), float(std[0]))


# -- a refined space against the analysed one --------------------------------------------------------------


class SpaceComparison(NamedTuple):
    refined: tuple[float, float, float]  # predicted objective: 25th, 50th, 75th percentile
    original: tuple[float, float, float]
    n_samples: int


def _sample_spec(axis: Axis, spec: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """n normalised values of one parameter drawn as a search samples ``spec`` (a config's space entry)."""
    if not isinstance(spec, dict):
        spec = {"type": "fixed", "value": spec}
    kind = spec.get("type") or ("categorical" if "choices" in spec else "float")
    if kind == "fixed":
        return np.full(n, config_to_unit_value(axis, spec.get("value")))
    if kind == "categorical":
        choices = list(spec.get("choices") or [])
        units = np.array([config_to_unit_value(axis, c) for c in choices]) if choices else np.array([0.0])
        return units[rng.integers(0, len(units), n)]
    low, high, log = float(spec["low"]), float(spec["high"]), bool(spec.get("log"))
    u = rng.uniform(size=n)
    values = np.exp(np.log(low) + u * (np.log(high) - np.log(low))) if log and low > 0 else low + u * (high - low)
    if kind == "int":
        values = np.round(values)
    return axis.to_unit(values)


def config_to_unit_value(axis: Axis, value: Any) -> float:
    if axis.kind == "categorical":
        unit = axis.to_unit(np.array([value], dtype=object))[0]
        return 0.0 if np.isnan(unit) else float(unit)
    return float(axis.to_unit(np.array([float(value)]))[0])


def _unset_inactive(surrogate: Surrogate, space: dict[str, Any], U: np.ndarray) -> None:
    for i, axis in enumerate(surrogate.axes):
        spec = space.get(axis.name)
        when = spec.get("when") if isinstance(spec, dict) else None
        for parent, allowed in (when or {}).items():
            if parent not in surrogate.names:
                continue
            j = surrogate.names.index(parent)
            units = [config_to_unit_value(surrogate.axes[j], v) for v in np.atleast_1d(allowed)]
            U[~np.isin(U[:, j], units), i] = 0.0


def compare_spaces(surrogate: Surrogate, refined: dict[str, Any], n: int = 2000, seed: int = 0) -> SpaceComparison:
    """The predicted objective's quartiles over ``n`` configurations drawn from ``refined`` (a config's
    ``space``) and from the analysed space (uniform on each parameter's analysed scale)."""
    rng = np.random.default_rng(seed)
    original = rng.uniform(size=(n, len(surrogate.axes)))
    for i, axis in enumerate(surrogate.axes):
        if axis.kind == "categorical":
            k = len(axis.categories)
            original[:, i] = (rng.integers(0, k, n) + 0.5) / k
    inside = original.copy()
    for i, axis in enumerate(surrogate.axes):
        if axis.name in refined:
            inside[:, i] = _sample_spec(axis, refined[axis.name], n, rng)
    for U in (inside, original):  # a conditional parameter is unset (at its low end) where its parents say so
        _unset_inactive(surrogate, refined, U)
    quartiles = lambda U: tuple(float(q) for q in np.quantile(predict_unit(surrogate, U)[0], [0.25, 0.5, 0.75]))  # noqa: E731
    return SpaceComparison(quartiles(inside), quartiles(original), n)
