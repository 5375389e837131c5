"""Suggested bounds (guided-tuning dashboard, ../shared/seeds/001_*): where does the forest say to look?

Fit a random forest from hyperparameters (each on [0, 1] of its own scale) to the metric, and predict it at
the runs and at a few thousand uniform points of the space. The region to look in is where the predicted
mean comes near the best prediction: within a small fraction of the typical gap (best to median), or within
what the forest cannot tell apart (0.7 standard errors of a leaf's mean, from its out-of-bag residuals),
whichever is wider: the noisier the runs, the wider the region. A parameter whose value does not change the
prediction there (scrambling it among the best points costs under a tenth of their gain over the space) is
flagged as without effect: it keeps its whole range and is suggested to be fixed (at the best run's value),
rather than being given a narrow range by chance. Every other parameter gets the extent of the region along
its axis (5% of its points trimmed at either end; for a categorical, the choices found in it); an end within
2% of the range's edge goes to the edge.

Below a trust threshold nothing is narrowed or flagged: fewer than ``MIN_RUNS`` runs or
``RUNS_PER_PARAMETER`` per parameter, or a forest whose 10-fold cross-validated R² is under ``MIN_R2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold, cross_val_predict

from trellis.search.analysis.design import AnalysisData
from trellis.search.analysis.plain import optional_float, value_to_plain

MIN_RUNS = 20  # below this no forest is trusted to rank or narrow anything
# With the cross-validated R² as the gate: what few runs can say is shown with its fit. (2 was tried for the guided
# loop's 24-run parents: on a 9-parameter function it fixed parameters that matter; 3 stays.)
RUNS_PER_PARAMETER = 3
MIN_R2 = 0.2  # the forest's cross-validated R² under which nothing is ranked or narrowed
CANDIDATES = 4096  # uniform points of the space the forest is asked about, besides the runs
MIN_LEAF, LEAF = 4, 0.01  # the forest's smallest leaf: 4 runs, or 1% of them
NEAR_BEST = 0.01  # the region: within this fraction of the best-to-median gap of the best prediction ...
UNSURE = 0.7  # ... or within this many standard errors of a leaf's mean (the forest's out-of-bag residuals)
NO_EFFECT = 0.1  # scrambling a parameter among the best points costs under this fraction of their gain
TOP_POINTS = 64  # at least this many of the best points judge whether a parameter has an effect
TRIM = 0.05  # a range spans the region's points but this fraction of them at either end (strays)
MODE_GAP = 0.15  # an empty stretch this long (of [0, 1]) between good points separates two regions
MODE_MIN = 0.05  # a region holds at least this share of the good points (fewer: strays)
EDGE = 0.02  # a range end this close (in [0, 1]) to its edge goes to the edge
CV_MAX_RUNS = 1500  # beyond it the R² is the out-of-bag one on a seeded sample of this many runs: its standard
# error is already ~0.01 there, and ten forests on thousands of runs cost seconds of a first look


@dataclass
class SuggestedBounds:
    ranges: dict[str, tuple[float, float]]  # numeric parameters, original units
    categories: dict[str, list[Any]]
    unit_ranges: dict[str, tuple[float, float]]  # the same in [0, 1] (for drawing on axes)
    r2: float | None
    r2_std: float | None
    n_runs: int
    unimportant: dict[str, Any] = field(default_factory=dict)  # without effect here -> the best run's value
    narrowed: bool = True  # False below the trust threshold: every range is the whole one
    modes: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # separate good stretches in [0, 1]
    exact: bool = False  # from the exact ANOVA of a balanced grid (``factorial``): r2 is its explained share

    def to_plain(self) -> dict[str, Any]:
        return {
            "ranges": [[n, float(lo), float(hi)] for n, (lo, hi) in self.ranges.items()],
            "categories": [[n, [value_to_plain(c) for c in cs]] for n, cs in self.categories.items()],
            "unit_ranges": [[n, float(lo), float(hi)] for n, (lo, hi) in self.unit_ranges.items()],
            "r2": optional_float(self.r2),
            "r2_std": optional_float(self.r2_std),
            "n_runs": int(self.n_runs),
            "unimportant": [[n, value_to_plain(v)] for n, v in self.unimportant.items()],
            "narrowed": bool(self.narrowed),
            "modes": [[n, [[float(a), float(b)] for a, b in parts]] for n, parts in self.modes.items()],
            "exact": bool(self.exact),
        }

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> SuggestedBounds:
        return cls(
            {str(n): (float(lo), float(hi)) for n, lo, hi in d["ranges"]},
            {str(n): list(cs) for n, cs in d["categories"]},
            {str(n): (float(lo), float(hi)) for n, lo, hi in d["unit_ranges"]},
            optional_float(d["r2"]),
            optional_float(d["r2_std"]),
            int(d["n_runs"]),
            {str(n): v for n, v in d.get("unimportant", [])},
            bool(d.get("narrowed", True)),
            {str(n): [(float(a), float(b)) for a, b in parts] for n, parts in d.get("modes", [])},
            bool(d.get("exact", False)),
        )


def _cross_validated_r2(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[float | None, float | None]:
    """R² of the forest's out-of-fold predictions over all runs (pooled), and its spread over the folds.

    Pooled, not the mean of per-fold R²: a fold of a small search holds two or three runs, whose own mean is a
    hard baseline to beat, so per-fold R² is wildly negative at exactly the sizes a relaunch works with
    (12 runs of a smooth function: median -3.6 per fold, 0.63 pooled). Each fold's spread term uses the
    overall mean, so the folds' values scatter around the pooled one. Beyond ``CV_MAX_RUNS`` runs, the forest's
    out-of-bag predictions on a seeded sample of that many stand for the folds' (each run predicted by the trees
    that did not see it), and the spread is over five parts of the sample."""
    if len(y) > CV_MAX_RUNS:
        return _out_of_bag_r2(X, y, seed)
    folds = min(10, len(y) // 2)
    if folds < 3 or np.ptp(y) == 0:
        return None, None
    model = RandomForestRegressor(n_estimators=50, random_state=seed, n_jobs=-1)
    split = KFold(folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(model, X, y, cv=split)
    total = (y - y.mean()) ** 2
    errors = (y - predicted) ** 2
    pooled = 1.0 - errors.sum() / total.sum()
    per_fold = [1.0 - errors[test].sum() / total[test].sum() for _, test in split.split(X) if total[test].sum() > 0]
    return float(pooled), float(np.std(per_fold)) if per_fold else None


def _out_of_bag_r2(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[float | None, float | None]:
    keep = np.random.default_rng(seed).choice(len(y), CV_MAX_RUNS, replace=False)
    X, y = X[keep], y[keep]
    if np.ptp(y) == 0:
        return None, None
    leaf = max(MIN_LEAF, round(LEAF * len(y)))
    model = RandomForestRegressor(n_estimators=100, min_samples_leaf=leaf, oob_score=True, random_state=seed, n_jobs=-1)
    predicted = model.fit(X, y).oob_prediction_
    total, errors = (y - y.mean()) ** 2, (y - predicted) ** 2
    parts = np.array_split(np.arange(len(y)), 5)
    per_part = [1.0 - errors[p].sum() / total[p].sum() for p in parts if total[p].sum() > 0]
    return float(1.0 - errors.sum() / total.sum()), float(np.std(per_part)) if per_part else None


def runs_needed(n_params: int) -> int:
    return max(MIN_RUNS, RUNS_PER_PARAMETER * n_params)


def suggest_bounds(data: AnalysisData, n_trees: int = 100, seed: int = 0, with_r2: bool = True) -> SuggestedBounds:
    """Ranges to search next; the whole ranges (``narrowed`` False) below the trust threshold. ``with_r2``
    False skips the cross-validation (then only the run count decides whether to narrow)."""
    n, d = data.X.shape
    if n < 4 or d == 0:
        raise ValueError(f"need at least 4 runs and one varying parameter (have {n} runs, {d} parameters)")
    r2, r2_std = _cross_validated_r2(data.X, data.y, seed) if with_r2 else (None, None)
    trusted = n >= runs_needed(d) and (not with_r2 or (r2 is not None and r2 >= MIN_R2))
    if not trusted:
        lo, hi, flat, inside = np.zeros(d), np.ones(d), set(), np.full((1, d), 0.5)
    else:
        lo, hi, flat, inside = _region(data, n_trees, seed)
    ranges, categories, unit_ranges, unimportant, stretches = {}, {}, {}, {}, {}
    best_row = data.X[int(np.argmax(data.y) if data.direction == "max" else np.argmin(data.y))]
    for i, axis in enumerate(data.axes):
        unit_ranges[axis.name] = (float(lo[i]), float(hi[i]))
        if axis.kind == "categorical":
            k = len(axis.categories)
            codes = np.minimum((inside[:, i] * k).astype(int), k - 1)
            share = np.bincount(codes, minlength=k) / len(codes)
            kept = [c for c, part in zip(axis.categories, share) if part >= min(TRIM, share.max())]  # in the region
            categories[axis.name] = kept if trusted and i not in flat else list(axis.categories)
            if i in flat:
                unimportant[axis.name] = axis.categories[min(int(best_row[i] * k), k - 1)]
            continue
        if trusted:
            stretches[axis.name] = modes(inside[:, i])
        low, high = axis.from_unit(lo[i]), axis.from_unit(hi[i])
        if axis.kind == "int":  # the whole numbers nearest the region's ends
            low, high = (math.floor(low), math.ceil(high)) if i in flat else (round(low), round(high))
        ranges[axis.name] = (low, high)
        if i in flat:
            best = axis.from_unit(best_row[i])
            unimportant[axis.name] = int(round(best)) if axis.kind == "int" else float(f"{best:.6g}")
    return SuggestedBounds(ranges, categories, unit_ranges, r2, r2_std, n, unimportant, trusted, stretches)


def modes(points: np.ndarray) -> list[tuple[float, float]]:
    """Separate stretches of ``points`` (values in [0, 1]): split where an empty gap exceeds ``MODE_GAP``;
    stretches holding under ``MODE_MIN`` of the points are strays and left out."""
    values = np.sort(np.asarray(points, dtype=float))
    if len(values) == 0:
        return []
    parts = np.split(values, np.flatnonzero(np.diff(values) > MODE_GAP) + 1)
    return [(float(p[0]), float(p[-1])) for p in parts if len(p) >= MODE_MIN * len(values)]


def _region(data: AnalysisData, n_trees: int, seed: int) -> tuple[np.ndarray, np.ndarray, set[int], np.ndarray]:
    """Per parameter, the region's extent in [0, 1] (the whole of it for a parameter without effect), the
    parameters without effect (column indices), and the region's points."""
    n, d = data.X.shape
    sign = -1.0 if data.direction == "max" else 1.0  # lower is better below
    leaf = max(MIN_LEAF, round(LEAF * n))
    forest = RandomForestRegressor(
        n_estimators=n_trees, min_samples_leaf=leaf, max_features=1.0, oob_score=True, random_state=seed, n_jobs=-1
    ).fit(data.X, sign * data.y)
    noise = float(np.std(sign * data.y - forest.oob_prediction_))  # what the forest cannot explain
    rng = np.random.default_rng(seed)
    points = np.vstack([data.X, rng.random((CANDIDATES, d))])
    mean = forest.predict(points)
    best = float(mean.min())
    # Near the best: a small part of the typical gap, or what a leaf's mean cannot tell from the best.
    within = max(NEAR_BEST * (float(np.median(mean)) - best), UNSURE * noise / math.sqrt(leaf))
    region = mean <= best + within
    # A parameter without effect: scrambled among the best points, the prediction barely moves.
    top = np.argsort(mean)[: max(TOP_POINTS, int(region.sum()))]
    gain = float(mean[n:].mean() - mean[top].mean())
    flat = set()
    for i in range(d):
        scrambled = points[top].copy()
        scrambled[:, i] = rng.random(len(scrambled))
        if forest.predict(scrambled).mean() - mean[top].mean() < NO_EFFECT * gain:
            flat.add(i)
    lo, hi = np.quantile(points[region], TRIM, axis=0), np.quantile(points[region], 1 - TRIM, axis=0)
    lo, hi = np.where(lo <= EDGE, 0.0, lo), np.where(hi >= 1 - EDGE, 1.0, hi)
    for i in flat:
        lo[i], hi[i] = 0.0, 1.0
    return lo, hi, flat, points[region]


def untrusted_reason(bounds: SuggestedBounds) -> str | None:
    """Why the analysis must not rank, narrow or fix anything (said instead), or None when it may."""
    if bounds.exact:
        return None  # a balanced grid, analysed exactly: nothing to distrust in a fit
    n, d = bounds.n_runs, len(bounds.ranges) + len(bounds.categories)
    r2 = "n/a" if bounds.r2 is None else f"{bounds.r2:.2f}"
    head = f"too few runs to rank or narrow: {n} runs, fit R² {r2}"
    if n < runs_needed(d):
        return f"{head} (trusted from {runs_needed(d)} runs for {d} parameters, with R² ≥ {MIN_R2})"
    if bounds.r2 is None:
        return f"{head} (too few runs, or no variation in the metric, to cross-validate the forest)"
    if bounds.r2 < 0:
        return f"{head}: the forest predicts the metric worse than its mean does (cross-validated R² < 0)"
    if bounds.r2 < MIN_R2:
        return f"{head}: the forest explains too little of the metric (cross-validated R² < {MIN_R2})"
    return None
