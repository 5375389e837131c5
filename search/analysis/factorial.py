"""A balanced full-factorial design (a grid search, each combination run equally often) analysed exactly.

A forest fitted to a 32-run grid can predict worse than the mean (cross-validated R² below 0) and say nothing,
although the grid answers the question exactly: with every combination of the levels present equally often,
the fANOVA of the design's own (uniform) measure is the classical ANOVA of the table of cell means. A single
share is the variance of a parameter's level means over the metric's variance; a pair's, the variance of
the pair's cell means less both singles. The page and ``trellis importance`` give the same numbers.

Verdicts read it as they read a forest's analysis: shares are exact (spread 0); the "region" of a parameter
is the levels of the cells whose means come near the best cell's (within 5% of the metric's span, or what the
replicates' noise cannot tell apart); a parameter is without effect near the best runs
when its level means, with the others at the best run's levels, differ by under a tenth of the metric's span.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from trellis.search.analysis.bounds import SuggestedBounds
from trellis.search.analysis.design import AnalysisData
from trellis.search.analysis.fanova import Importance

MAX_LEVELS = 12  # a parameter with more distinct values than this was not searched on a grid
MAX_CELLS = 4096
NEAR = 0.05  # the "region": cells within this share of the metric's span of the best cell (or its noise)
FLAT = 0.1  # level means (others at the best run's levels) within this share of the metric's span: no effect


def levels_of(data: AnalysisData) -> list[np.ndarray] | None:
    """Per parameter, each run's level index, when the runs are a balanced full factorial; else None."""
    n, d = data.X.shape
    if d == 0 or n < 4:
        return None
    codes = []
    for i in range(d):
        values, code = np.unique(data.X[:, i], return_inverse=True)
        if not 2 <= len(values) <= MAX_LEVELS:
            return None
        codes.append(code)
    sizes = [int(c.max()) + 1 for c in codes]
    cells = math.prod(sizes)
    if cells > MAX_CELLS or n % cells:
        return None
    flat = np.ravel_multi_index(codes, sizes)
    counts = np.bincount(flat, minlength=cells)
    return codes if counts.min() == counts.max() == n // cells else None


def _share(y: np.ndarray, groups: np.ndarray, total: float) -> float:
    """Variance of the group means (weighted by their runs) over the total variance."""
    sums = np.bincount(groups, weights=y)
    counts = np.bincount(groups)
    means = sums[counts > 0] / counts[counts > 0]
    weights = counts[counts > 0] / len(y)
    return float(np.sum(weights * (means - y.mean()) ** 2) / total)


def factorial_importance(data: AnalysisData, codes: list[np.ndarray]) -> Importance:
    y = data.y
    total = float(np.var(y))
    names = data.names
    if total == 0:
        zero = dict.fromkeys(names, 0.0)
        pairs = {(a, b): 0.0 for a, b in combinations(names, 2)}
        return Importance(names, zero, dict(zero), pairs, dict(pairs), 0)
    single = {n: _share(y, c, total) for n, c in zip(names, codes)}
    pair = {}
    for (i, a), (j, b) in combinations(enumerate(names), 2):
        joint = codes[i] * (int(codes[j].max()) + 1) + codes[j]
        pair[(a, b)] = max(0.0, _share(y, joint, total) - single[a] - single[b])
    return Importance(names, single, dict.fromkeys(names, 0.0), pair, dict.fromkeys(pair, 0.0), 0)


def factorial_bounds(data: AnalysisData, codes: list[np.ndarray], importance: Importance) -> SuggestedBounds:
    """Bounds in the shape a forest's analysis gives them (``SuggestedBounds``, marked exact)."""
    y = data.y if data.direction == "min" else -data.y  # lower is better below
    best = int(np.argsort(y, kind="stable")[0])
    span = float(np.ptp(y)) or 1.0
    sizes = [int(c.max()) + 1 for c in codes]
    cell = np.ravel_multi_index(codes, sizes)
    means = np.bincount(cell, weights=y) / np.bincount(cell)
    per_cell = len(y) // len(means)
    noise = float(np.sqrt(np.mean((y - means[cell]) ** 2) * per_cell / max(per_cell - 1, 1))) if per_cell > 1 else 0.0
    # The region: the cells whose mean a replicate's noise cannot tell from the best cell's, or close to it.
    near = means <= means.min() + max(NEAR * span, 2.0 * noise / math.sqrt(per_cell))
    top = np.flatnonzero(near[cell])
    ranges, categories, unit_ranges, unimportant = {}, {}, {}, {}
    explained = sum(importance.single_mean.values()) + sum(importance.pair_mean.values())
    for i, axis in enumerate(data.axes):
        column = data.X[:, i]
        kept = np.unique(column[top])
        unit_ranges[axis.name] = (float(kept.min()), float(kept.max()))
        others = np.all([codes[j] == codes[j][best] for j in range(len(codes)) if j != i], axis=0)
        line = np.bincount(codes[i][others], weights=y[others]) / np.maximum(np.bincount(codes[i][others]), 1)
        if float(np.ptp(line)) < FLAT * span:
            unimportant[axis.name] = None  # the verdicts take the best run's own value
        if axis.kind == "categorical":
            k = len(axis.categories)
            categories[axis.name] = [axis.categories[min(int(u * k), k - 1)] for u in kept]
        elif axis.values:  # a number searched at a few values: the values kept, none between them
            categories[axis.name] = [v for v in axis.values if np.any(np.isclose(axis.to_unit([v]), kept))]
        else:
            ranges[axis.name] = (axis.from_unit(kept.min()), axis.from_unit(kept.max()))
    return SuggestedBounds(
        ranges, categories, unit_ranges, min(1.0, explained), 0.0, len(y), unimportant, True, {}, exact=True
    )
