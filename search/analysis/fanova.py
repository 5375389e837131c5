"""Functional ANOVA (Hutter, Hoos, Leyton-Brown 2014) over tree ensembles, computed exactly and fast.

A regression tree is a sum of constant values on axis-aligned boxes, and so is a whole boosted ensemble
(each tree's leaves, scaled by the learning rate, plus the initial constant on the unit cube). Under the
uniform measure on the (normalised) space, the marginal of a set U of parameters at x_U is the sum over
boxes of value x (volume of the box outside U) x [x_U in box], which is linear in the boxes: with the
intervals cut by the boxes' edges on parameter i and M_i the box-by-interval indicator matrix,

    a_i       = M_i^T (v * vol / w_i)                      (the single marginal, per interval)
    a_ij      = M_i^T diag(v * vol / (w_i w_j)) M_j        (the pair marginal, per cell)
    V_i       = sum_k width_k (a_i[k] - mean)^2
    V_ij      = sum_km width_k width_m (a_ij - a_i - a_j + mean)^2

and a share is V_U / V, V the function's total variance (exact for a tree's leaves, which partition the
cube; a quasi-Monte Carlo estimate on 16384 Sobol points for an ensemble, whose boxes overlap).

Two surrogates (``method``):
- ``"boosted"`` (the default): a few gradient-boosted ensembles of depth-4 trees on different subsamples,
  each decomposed as one function; shares are the mean over ensembles, their std the spread. Each
  ensemble fits the objective closely, so its variance is the objective's and its shares are close to
  the truth (``benchmarks/importance.py``: within 0.05 on every single and pair share of the test suite
  at 800 runs).
- ``"forest"``: the ``fanova`` package's own estimate (a random forest, the mean over trees of each
  tree's shares), kept to compare against the package. A single deep tree is a noisy fit whose
  noise lands in high-order terms, so it under-credits main effects (Ishigami x2 by about 0.1).

A conditional parameter (``active``: the runs where it is set, e.g. momentum only with sgd) is analysed
where it is active: for the whole fit its unset values are drawn at random (so being unset says nothing,
and the split between runs with and without it goes to its parent), and its own shares come from a fit on
the runs where it is set, weighted by the share of the space where it is set and of the variance. Its
marginal is the whole fit's: its effect where set, averaged with none where unset.

Over 400 lines: the decomposition, the ensembles it runs on and the importance over them are one algorithm.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.stats import qmc
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor


@dataclass
class TreeParts:
    """One tree, reduced to its leaves: boxes in [0, 1]^d and values (or an ensemble's boxes, which overlap:
    ``partition=False``, and then ``decompose_tree``'s variance is not the function's)."""

    lo: np.ndarray  # (leaves, d)
    hi: np.ndarray  # (leaves, d)
    value: np.ndarray  # (leaves,)
    partition: bool = True

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
    variance = float(np.sum(vol * (v - mean) ** 2)) if parts.partition else float("nan")
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

    def to_plain(self) -> dict:
        return {
            "names": list(self.names),
            "single": [[n, float(self.single_mean[n]), float(self.single_std[n])] for n in self.single_mean],
            "pairs": [[a, b, float(m), float(self.pair_std[(a, b)])] for (a, b), m in self.pair_mean.items()],
            "n_trees_used": int(self.n_trees_used),
        }

    @classmethod
    def from_plain(cls, d: dict) -> Importance:
        return cls(
            [str(n) for n in d["names"]],
            {str(n): float(mean) for n, mean, _ in d["single"]},
            {str(n): float(std) for n, _, std in d["single"]},
            {(str(a), str(b)): float(mean) for a, b, mean, _ in d["pairs"]},
            {(str(a), str(b)): float(std) for a, b, _, std in d["pairs"]},
            int(d["n_trees_used"]),
        )


BOOSTED_MEMBERS = 4  # ensembles, each on its own subsamples: their mean is the surrogate, their spread its std
BOOSTED_ROUNDS = 250
BOOSTED_DEPTH = 4  # interactions up to 4 parameters per tree
BOOSTED_RATE = 0.1
BOOSTED_SUBSAMPLE = 0.5
SNAP_CELLS = 256  # box edges per parameter in the boosted decomposition (pairs: at most 256 x 256 cells)
VARIANCE_POINTS_LOG2 = 14  # 16384 Sobol points for an ensemble's total variance
MIN_ACTIVE_RUNS = 8  # a conditional parameter set in fewer runs gets no share of its own


def _boosted_member(X: np.ndarray, y: np.ndarray, seed: int, rounds: int):
    early = len(y) >= 40  # a validation slice of a tiny search is one or two runs: keep every round
    model = GradientBoostingRegressor(
        n_estimators=rounds,
        max_depth=BOOSTED_DEPTH,
        learning_rate=BOOSTED_RATE,
        subsample=BOOSTED_SUBSAMPLE if len(y) >= 20 else 1.0,
        n_iter_no_change=20 if early else None,
        validation_fraction=0.15,
        random_state=seed,
    ).fit(X, y)
    d = X.shape[1]
    parts = [leaf_boxes(est[0], d) for est in model.estimators_]
    init = float(model.init_.predict(X[:1])[0])
    lo = np.vstack([np.zeros((1, d))] + [p.lo for p in parts])
    hi = np.vstack([np.ones((1, d))] + [p.hi for p in parts])
    value = np.concatenate([[init]] + [model.learning_rate * p.value for p in parts])
    return model, TreeParts(lo, hi, value, partition=False)


def snap_edges(X: np.ndarray, cells: int = SNAP_CELLS) -> list[np.ndarray]:
    """Per column, at most ``cells`` + 1 edges between runs' values (0, midpoints between every few sorted
    distinct values, 1): a split moved to the nearest one still separates the same runs, or nearly."""
    out = []
    for column in X.T:
        values = np.unique(column)
        mids = (values[1:] + values[:-1]) / 2
        if len(mids) > cells - 1:
            mids = mids[np.unique(np.linspace(0, len(mids) - 1, cells - 1).round().astype(int))]
        out.append(np.concatenate(([0.0], mids, [1.0])))
    return out


def _snapped(parts: TreeParts, edges: list[np.ndarray]) -> TreeParts:
    lo, hi = parts.lo.copy(), parts.hi.copy()
    for i, e in enumerate(edges):
        for arr in (lo, hi):
            k = np.clip(np.searchsorted(e, arr[:, i]), 1, len(e) - 1)
            arr[:, i] = np.where(arr[:, i] - e[k - 1] < e[k] - arr[:, i], e[k - 1], e[k])
    keep = np.all(hi > lo, axis=1)  # a box squeezed to nothing carries no volume
    return TreeParts(lo[keep], hi[keep], parts.value[keep], partition=parts.partition)


def _active_volume(X: np.ndarray, mask: np.ndarray, own: int) -> float:
    """The share of the space where a conditional parameter is set: the share of its parent's categories
    that set it (a column taking few values, none of them both with and without the parameter set), else
    the share of runs that set it."""
    for j in range(X.shape[1]):
        if j == own:
            continue
        on, off = np.unique(X[mask, j]), np.unique(X[~mask, j])
        if len(on) + len(off) <= 32 and not np.intersect1d(on, off).size:
            k = len(on) + len(off)
            slices = np.round((np.concatenate([on, off]) * k) - 0.5)  # design.py: (code + 0.5) / k
            if np.allclose(np.sort(slices), np.arange(k)):
                return len(on) / k
    return float(mask.mean())


class FastFANOVA:
    """Fit a surrogate on X in [0, 1]^d (columns already normalised), then decompose it exactly.

    ``trees``: the pieces whose mean is the surrogate and whose spread is the uncertainty (one per tree for
    ``method="forest"``, one per boosted ensemble otherwise); ``marginal`` and ``pair_marginal`` average them.
    """

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
        method: str = "boosted",
        active: dict[str, np.ndarray] | None = None,
        members: int = BOOSTED_MEMBERS,
        rounds: int = BOOSTED_ROUNDS,
    ) -> None:
        X = np.array(X, float)
        y = np.asarray(y, float)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError("X must be (runs, parameters) with one y per run")
        if len(X) < 2:
            raise ValueError("need at least two runs")
        if X.min(initial=0.0) < -1e-9 or X.max(initial=1.0) > 1 + 1e-9:
            raise ValueError("X must be normalised to [0, 1] per column")
        if method not in ("boosted", "forest"):
            raise ValueError(f"method must be 'boosted' or 'forest', not {method!r}")
        self.names = list(names)
        self.method = method
        self.conditional: dict[str, tuple[float, FastFANOVA | None]] = {}
        rng = np.random.default_rng(seed)
        masks = {}
        for name, mask in (active or {}).items():
            mask = np.asarray(mask, bool)
            if name not in self.names or mask.all():
                continue
            masks[name] = mask
            i = self.names.index(name)
            X[~mask, i] = rng.uniform(size=int((~mask).sum()))  # unset says nothing about y
        self.variances: list[float | None] = []
        self.mean_parts: TreeParts | None = None  # boosted: the members' mean, whose shares are reported
        self.mean_variance = 0.0
        if method == "forest":
            self.forest = RandomForestRegressor(
                n_estimators=n_trees,
                max_features=1.0,
                bootstrap=True,
                min_samples_leaf=min_samples_leaf,
                max_depth=max_depth,
                random_state=seed,
                n_jobs=n_jobs,
            ).fit(X, y)
            self.trees = [leaf_boxes(est, X.shape[1]) for est in self.forest.estimators_]
            self.variances = [None] * len(self.trees)
            self.n_trees = len(self.trees)
        else:
            points = qmc.Sobol(X.shape[1], seed=seed).random_base2(VARIANCE_POINTS_LOG2)
            edges = snap_edges(X)

            def member(k: int):
                model, parts = _boosted_member(X, y, seed + k, rounds)
                return _snapped(parts, edges), model.predict(points), len(model.estimators_)

            # Threads: sklearn builds trees without the GIL. Each member has its own seed: same result in any order.
            workers = max(1, min(members, n_jobs if n_jobs and n_jobs > 0 else os.cpu_count() or 1))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                fitted = list(pool.map(member, range(members)))
            self.trees = [parts for parts, _, _ in fitted]
            predictions = [p for _, p, _ in fitted]
            self.variances = [float(np.var(p)) for p in predictions]
            self.n_trees = sum(n for _, _, n in fitted)
            self.mean_parts = TreeParts(
                np.vstack([t.lo for t in self.trees]),
                np.vstack([t.hi for t in self.trees]),
                np.concatenate([t.value for t in self.trees]) / len(self.trees),
                partition=False,
            )
            self.mean_variance = float(np.var(np.mean(predictions, axis=0)))
        for name, mask in masks.items():
            self.conditional[name] = self._within(name, mask, X, y, seed, method, n_trees, masks, members, rounds)

    def _within(self, name, mask, X, y, seed, method, n_trees, masks, members, rounds):
        """The fit on the runs where ``name`` is set, and the weight of its shares in the whole. Two conditional
        parameters under different values of one parent (momentum with sgd, beta with adam): inside the one's
        runs the other is never set, and gets nothing."""
        if mask.sum() < MIN_ACTIVE_RUNS:
            return 0.0, None
        keep = [j for j in range(X.shape[1]) if np.ptp(X[mask, j]) > 0]
        if self.names.index(name) not in keep or np.ptp(y[mask]) == 0:
            return 0.0, None
        sub_active = {n: m[mask] for n, m in masks.items() if n != name and self.names.index(n) in keep}
        sub = FastFANOVA(
            X[mask][:, keep], y[mask], [self.names[j] for j in keep], n_trees=n_trees, seed=seed,
            method=method, active=sub_active, members=members, rounds=rounds,
        )  # fmt: skip
        share = _active_volume(X, mask, self.names.index(name))
        whole = self.total_variance()
        return (share * sub.total_variance() / whole if whole > 0 else 0.0), sub

    def total_variance(self) -> float:
        """The surrogate's variance over the unit cube (the forest's: the mean of its trees', as its shares)."""
        if self.mean_parts is not None:
            return self.mean_variance
        found = [decompose_tree(t, []).variance for t in self.trees]
        return float(np.mean(found)) if found else 0.0

    def _decompose(self, pair_idx: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Per piece: the singles' and the pairs' shares (pieces of zero variance are left out)."""
        singles, pair_values = [], []
        for parts, variance in zip(self.trees, self.variances):
            dec = decompose_tree(parts, pair_idx)
            total = dec.variance if variance is None else variance
            if total <= 1e-12 * (1.0 + dec.mean**2):
                continue  # a constant piece explains nothing; fanova skips these too
            singles.append(dec.singles / total)
            pair_values.append([dec.pairs[p] / total for p in pair_idx])
        d = len(self.names)
        return np.array(singles).reshape(len(singles), d), np.array(pair_values).reshape(len(singles), len(pair_idx))

    def importance(self, pairs: bool = True, only: list[str] | None = None) -> Importance:
        chosen = [self.names.index(n) for n in (only or self.names)]
        pair_idx = list(combinations(sorted(chosen), 2)) if pairs else []
        s, p = self._decompose(pair_idx)
        names = [self.names[i] for i in chosen]
        pair_names = [(self.names[i], self.names[j]) for i, j in pair_idx]
        if not len(s):
            zeros = {n: 0.0 for n in names}
            pz = {pn: 0.0 for pn in pair_names}
            return Importance(names, zeros, dict(zeros), pz, dict(pz), 0)
        s_mean, p_mean = s.mean(axis=0), p.mean(axis=0)
        if self.mean_parts is not None and self.mean_variance > 0:
            # The shares of the members' mean: averaging first cancels much of each member's fitting noise,
            # which would otherwise land in higher-order terms and shrink every single and pair share.
            # The components are exact, the total variance a quasi-Monte Carlo estimate: never below their sum.
            dec = decompose_tree(self.mean_parts, pair_idx)
            total = max(self.mean_variance, float(dec.singles.sum() + sum(dec.pairs.values())))
            s_mean = dec.singles / total
            p_mean = np.array([dec.pairs[q] / total for q in pair_idx])
        single_mean = {self.names[i]: float(s_mean[i]) for i in chosen}
        single_std = {self.names[i]: float(s[:, i].std()) for i in chosen}
        pair_mean = {pn: float(p_mean[k]) for k, pn in enumerate(pair_names)}
        pair_std = {pn: float(p[:, k].std()) for k, pn in enumerate(pair_names)}
        for name, (weight, sub) in self.conditional.items():
            if name not in single_mean:
                continue
            inner = None
            if sub is not None:
                inner = sub.importance(pairs=pairs, only=[n for n in names if n in sub.names])
            single_mean[name] = weight * inner.single_mean[name] if inner else 0.0
            single_std[name] = weight * inner.single_std[name] if inner else 0.0
            for pn in pair_names:
                if name in pn:
                    found = inner is not None and pn in inner.pair_mean
                    pair_mean[pn] = weight * inner.pair_mean[pn] if found else 0.0
                    pair_std[pn] = weight * inner.pair_std[pn] if found else 0.0
        used = self.n_trees if self.mean_parts is not None else len(s)  # boosted: trees over all ensembles
        return Importance(names, single_mean, single_std, pair_mean, pair_std, used)

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
