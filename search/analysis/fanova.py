"""Functional ANOVA (Hutter, Hoos, Leyton-Brown 2014) over a random forest, computed exactly and fast.

Each regression tree is a piecewise-constant function on axis-aligned leaf boxes. Under the uniform
measure on the (normalised) space, the marginal of a set U of parameters at x_U is the sum over leaves of
value x (volume of the leaf outside U) x [x_U in leaf]. So, per tree and per parameter i, with the
intervals cut by that tree's split points on i and M_i the leaf-by-interval indicator matrix:

    a_i       = M_i^T (v * vol / w_i)                      (the single marginal, per interval)
    a_ij      = M_i^T diag(v * vol / (w_i w_j)) M_j        (the pair marginal, per cell)
    V_i       = sum_k width_k (a_i[k] - mean)^2
    V_ij      = sum_km width_k width_m (a_ij - a_i - a_j + mean)^2

and importance = V_U / V (the tree's total variance), averaged over trees with its std. This is the
same decomposition the ``fanova`` package computes (tests compare them); it avoids the package's
enumeration of every grid cell, which is what makes its pairs take minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from sklearn.ensemble import RandomForestRegressor


@dataclass
class TreeParts:
    """One tree, reduced to its leaves: boxes in [0, 1]^d and values."""

    lo: np.ndarray  # (leaves, d)
    hi: np.ndarray  # (leaves, d)
    value: np.ndarray  # (leaves,)

    @property
    def widths(self) -> np.ndarray:
        return self.hi - self.lo

    @property
    def volume(self) -> np.ndarray:
        return np.prod(self.widths, axis=1)


def leaf_boxes(tree, n_features: int) -> TreeParts:
    """Leaf boxes of a fitted sklearn tree over the unit cube (node ids are parents-first)."""
    t = tree.tree_
    n = t.node_count
    lo = np.zeros((n, n_features))
    hi = np.ones((n, n_features))
    left, right, feature, threshold = t.children_left, t.children_right, t.feature, t.threshold
    for node in range(n):
        lc, rc = left[node], right[node]
        if lc < 0:
            continue
        f, cut = feature[node], min(max(threshold[node], lo[node, feature[node]]), hi[node, feature[node]])
        lo[lc], hi[lc] = lo[node], hi[node]
        hi[lc, f] = cut
        lo[rc], hi[rc] = lo[node], hi[node]
        lo[rc, f] = cut
    leaves = left < 0
    return TreeParts(lo[leaves], hi[leaves], t.value[leaves, 0, 0].astype(float))


@dataclass
class _Axis:
    """A tree's intervals along one parameter, and the interval range [start, stop) each leaf covers."""

    edges: np.ndarray  # (K + 1,)
    widths: np.ndarray  # (K,)
    start: np.ndarray  # (leaves,)
    stop: np.ndarray  # (leaves,)


def _axis(parts: TreeParts, i: int) -> _Axis:
    edges = np.unique(np.concatenate(([0.0, 1.0], parts.lo[:, i], parts.hi[:, i])))
    return _Axis(edges, np.diff(edges), np.searchsorted(edges, parts.lo[:, i]), np.searchsorted(edges, parts.hi[:, i]))


def _ranges_1d(ax: _Axis, weight: np.ndarray) -> np.ndarray:
    """sum over leaves of weight x [interval k inside the leaf], by a difference array: O(leaves + K)."""
    k = len(ax.widths)
    diff = np.bincount(ax.start, weight, k + 1) - np.bincount(ax.stop, weight, k + 1)
    return np.cumsum(diff)[:k]


def _ranges_2d(ai: _Axis, aj: _Axis, weight: np.ndarray) -> np.ndarray:
    """The same over cells of two axes: a 2-D difference array, then cumulative sums: O(leaves + K_i K_j)."""
    ki, kj = len(ai.widths) + 1, len(aj.widths) + 1
    size = ki * kj
    corners = (
        np.bincount(ai.start * kj + aj.start, weight, size)
        - np.bincount(ai.start * kj + aj.stop, weight, size)
        - np.bincount(ai.stop * kj + aj.start, weight, size)
        + np.bincount(ai.stop * kj + aj.stop, weight, size)
    )
    return corners.reshape(ki, kj).cumsum(0).cumsum(1)[: ki - 1, : kj - 1]


@dataclass
class TreeDecomposition:
    mean: float
    variance: float
    axes: list[_Axis]
    singles: np.ndarray  # (d,) V_i
    marginals: list[np.ndarray]  # a_i per interval
    pairs: dict[tuple[int, int], float] = field(default_factory=dict)
    pair_marginals: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


def decompose_tree(parts: TreeParts, pairs: list[tuple[int, int]], keep_pair_marginals: bool = False):
    d = parts.lo.shape[1]
    widths, vol, v = parts.widths, parts.volume, parts.value
    mean = float(np.sum(vol * v))
    variance = float(np.sum(vol * (v - mean) ** 2))
    safe = np.where(widths > 0, widths, 1.0)
    axes = [_axis(parts, i) for i in range(d)]
    marginals, singles = [], np.zeros(d)
    for i, ax in enumerate(axes):
        a = _ranges_1d(ax, v * vol / safe[:, i])
        marginals.append(a)
        singles[i] = float(np.sum(ax.widths * (a - mean) ** 2))
    out = TreeDecomposition(mean, variance, axes, singles, marginals)
    for i, j in pairs:
        a_ij = _ranges_2d(axes[i], axes[j], v * vol / (safe[:, i] * safe[:, j]))
        f = a_ij - marginals[i][:, None] - marginals[j][None, :] + mean
        out.pairs[(i, j)] = float(np.sum(axes[i].widths[:, None] * axes[j].widths[None, :] * f * f))
        if keep_pair_marginals:
            out.pair_marginals[(i, j)] = a_ij
    return out


@dataclass
class Importance:
    """Fractions of variance (mean and std over trees) for singles and pairs, by parameter name."""

    names: list[str]
    single_mean: dict[str, float]
    single_std: dict[str, float]
    pair_mean: dict[tuple[str, str], float]
    pair_std: dict[tuple[str, str], float]
    n_trees_used: int

    def ranked(self) -> list[tuple[str, float, float]]:
        """Rows of HyperTendril's matrix: (label, mean, std), singles and pairs, most important first."""
        rows = [(n, self.single_mean[n], self.single_std[n]) for n in self.names]
        rows += [(f"{a} × {b}", m, self.pair_std[(a, b)]) for (a, b), m in self.pair_mean.items()]
        return sorted(rows, key=lambda r: -r[1])


class FastFANOVA:
    """Fit a forest on X in [0, 1]^d (columns already normalised), then decompose its trees."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: list[str],
        n_trees: int = 64,
        seed: int = 0,
        min_samples_leaf: int = 1,
        max_depth: int | None = 64,
        n_jobs: int | None = None,
    ) -> None:
        X = np.asarray(X, float)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError("X must be (runs, parameters) with one y per run")
        if len(X) < 2:
            raise ValueError("need at least two runs")
        if X.min(initial=0.0) < -1e-9 or X.max(initial=1.0) > 1 + 1e-9:
            raise ValueError("X must be normalised to [0, 1] per column")
        self.names = list(names)
        self.forest = RandomForestRegressor(
            n_estimators=n_trees,
            max_features=1.0,
            bootstrap=True,
            min_samples_leaf=min_samples_leaf,
            max_depth=max_depth,
            random_state=seed,
            n_jobs=n_jobs,
        ).fit(X, np.asarray(y, float))
        self.trees = [leaf_boxes(est, X.shape[1]) for est in self.forest.estimators_]

    def importance(self, pairs: bool = True, only: list[str] | None = None) -> Importance:
        d = len(self.names)
        chosen = [self.names.index(n) for n in (only or self.names)]
        pair_idx = list(combinations(sorted(chosen), 2)) if pairs else []
        singles, pair_values = [], []
        for parts in self.trees:
            dec = decompose_tree(parts, pair_idx)
            if dec.variance <= 0:
                continue  # a constant tree explains nothing; fanova skips these too
            singles.append(dec.singles / dec.variance)
            pair_values.append([dec.pairs[p] / dec.variance for p in pair_idx])
        if not singles:
            zeros = {self.names[i]: 0.0 for i in chosen}
            return Importance([self.names[i] for i in chosen], zeros, dict(zeros), {}, {}, 0)
        s = np.array(singles).reshape(len(singles), d)
        p = np.array(pair_values).reshape(len(singles), len(pair_idx))
        names = [self.names[i] for i in chosen]
        pair_names = [(self.names[i], self.names[j]) for i, j in pair_idx]
        return Importance(
            names,
            {self.names[i]: float(s[:, i].mean()) for i in chosen},
            {self.names[i]: float(s[:, i].std()) for i in chosen},
            {pn: float(p[:, k].mean()) for k, pn in enumerate(pair_names)},
            {pn: float(p[:, k].std()) for k, pn in enumerate(pair_names)},
            len(singles),
        )

    def marginal(self, name: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over trees of the marginal prediction at ``points`` (normalised coordinates)."""
        i = self.names.index(name)
        curves = []
        for parts in self.trees:
            dec = decompose_tree(parts, [])
            ax = dec.axes[i]
            k = np.clip(np.searchsorted(ax.edges, points, side="right") - 1, 0, len(ax.widths) - 1)
            curves.append(dec.marginals[i][k])
        c = np.array(curves)
        return c.mean(axis=0), c.std(axis=0)

    def pair_marginal(self, a: str, b: str, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
        """Mean over trees of the pair marginal on the grid ``pa`` x ``pb`` (normalised coordinates)."""
        i, j = self.names.index(a), self.names.index(b)
        key = (min(i, j), max(i, j))
        grids = []
        for parts in self.trees:
            dec = decompose_tree(parts, [key], keep_pair_marginals=True)
            ax_i, ax_j = dec.axes[key[0]], dec.axes[key[1]]
            pi, pj = (pa, pb) if i < j else (pb, pa)
            ki = np.clip(np.searchsorted(ax_i.edges, pi, side="right") - 1, 0, len(ax_i.widths) - 1)
            kj = np.clip(np.searchsorted(ax_j.edges, pj, side="right") - 1, 0, len(ax_j.widths) - 1)
            grid = dec.pair_marginals[key][np.ix_(ki, kj)]
            grids.append(grid if i < j else grid.T)
        return np.mean(grids, axis=0)
