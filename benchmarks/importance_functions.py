"""Test functions with analytic variance shares (Sobol indices), sampled as uniform random runs.

Each function maps the unit cube (one column per parameter, as ``trellis.search.analysis.design`` normalises
runs) to an objective, and comes with its exact first-order shares (singles) and second-order shares
(pairs); every share not listed is 0. Used by ``benchmarks/importance.py`` and the importance tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np


@dataclass
class Sample:
    X: np.ndarray  # (runs, parameters) in [0, 1]; an inactive conditional value sits at 0 (as design.py does)
    y: np.ndarray
    names: list[str]
    truth: dict  # name or (a, b) -> exact share; missing keys are 0
    active: dict[str, np.ndarray] = field(default_factory=dict)  # conditional parameter -> runs where it is set

    def keys(self) -> list:
        return list(self.names) + list(combinations(self.names, 2))

    def errors(self, got: dict) -> np.ndarray:
        """Absolute error of every single and pair share against the truth."""
        return np.array([abs(got.get(k, 0.0) - self.truth.get(k, 0.0)) for k in self.keys()])


def ishigami(n: int, seed: int, a: float = 7.0, b: float = 0.1) -> Sample:
    """Ishigami (a=7, b=0.1) on [-pi, pi]^3: S1 .314, S2 .442, S3 0, S13 .244."""
    unit = np.random.default_rng(seed).uniform(size=(n, 3))
    x = -np.pi + 2 * np.pi * unit
    y = np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])
    v1 = 0.5 * (1 + b * np.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * np.pi**8 * (1 / 18 - 1 / 50)
    total = v1 + v2 + v13
    truth = {"x1": v1 / total, "x2": v2 / total, ("x1", "x3"): v13 / total}
    return Sample(unit, y, ["x1", "x2", "x3"], truth)


G_COEFFICIENTS = (0.0, 1.0, 4.5, 9.0, 99.0, 99.0)


def g_function(n: int, seed: int, a: tuple[float, ...] = G_COEFFICIENTS) -> Sample:
    """Sobol's G-function prod (|4x - 2| + a_i) / (1 + a_i): V_i = 1 / (3 (1 + a_i)^2), V_ij = V_i V_j."""
    a_arr = np.asarray(a, float)
    unit = np.random.default_rng(seed).uniform(size=(n, len(a_arr)))
    y = np.prod((np.abs(4 * unit - 2) + a_arr) / (1 + a_arr), axis=1)
    names = [f"x{i + 1}" for i in range(len(a_arr))]
    v = 1 / (3 * (1 + a_arr) ** 2)
    total = float(np.prod(1 + v) - 1)
    truth: dict = {n_: float(vi / total) for n_, vi in zip(names, v)}
    for i, j in combinations(range(len(a_arr)), 2):
        truth[(names[i], names[j])] = float(v[i] * v[j] / total)
    return Sample(unit, y, names, truth)


def additive(n: int, seed: int) -> Sample:
    """x1 + 2 sin(pi x2) + 0.5 cos(2 pi x3), x4 ignored: no interaction at all."""
    unit = np.random.default_rng(seed).uniform(size=(n, 4))
    y = unit[:, 0] + 2 * np.sin(np.pi * unit[:, 1]) + 0.5 * np.cos(2 * np.pi * unit[:, 2])
    v = np.array([1 / 12, 4 * (0.5 - 4 / np.pi**2), 0.125])
    total = v.sum()
    return Sample(unit, y, ["x1", "x2", "x3", "x4"], {"x1": v[0] / total, "x2": v[1] / total, "x3": v[2] / total})


def interaction(n: int, seed: int) -> Sample:
    """cos(pi x1) cos(pi x2) + 0.5 x3, x4 ignored: x1 and x2 matter only together (S12 .923), a saddle
    whose sign flips at the middle of each axis, so neither has any effect on average."""
    unit = np.random.default_rng(seed).uniform(size=(n, 4))
    y = np.cos(np.pi * unit[:, 0]) * np.cos(np.pi * unit[:, 1]) + 0.5 * unit[:, 2]
    v12, v3 = 0.25, 0.25 / 12
    total = v12 + v3
    return Sample(unit, y, ["x1", "x2", "x3", "x4"], {("x1", "x2"): v12 / total, "x3": v3 / total})


OPTIMIZERS = ("adam", "rmsprop", "sgd")
OPTIMIZER_EFFECT = (0.0, 0.5, 1.5)


def conditional(n: int, seed: int) -> Sample:
    """A categorical optimizer (3 values), lr, and momentum set only with sgd and without any effect:
    y = effect[optimizer] + 3 lr. Truth: optimizer .341, lr .659, momentum 0."""
    rng = np.random.default_rng(seed)
    code = rng.integers(0, len(OPTIMIZERS), n)
    lr, momentum = rng.uniform(size=n), rng.uniform(size=n)
    sgd = code == OPTIMIZERS.index("sgd")
    effect = np.array(OPTIMIZER_EFFECT)
    y = effect[code] + 3 * lr
    X = np.column_stack([(code + 0.5) / len(OPTIMIZERS), lr, np.where(sgd, momentum, 0.0)])
    v_opt, v_lr = float(effect.var()), 9 / 12
    total = v_opt + v_lr
    return Sample(
        X, y, ["optimizer", "lr", "momentum"], {"optimizer": v_opt / total, "lr": v_lr / total}, {"momentum": sgd}
    )


SUITE = {
    "ishigami": ishigami,
    "g-function": g_function,
    "additive": additive,
    "interaction": interaction,
    "conditional": conditional,
}
