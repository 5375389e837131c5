"""Suggested bounds (guided-tuning dashboard, ../shared/seeds/001_*): where does the forest say to look?

Fit a random forest from hyperparameters to the metric; in each tree take the leaf with the best
prediction and the box its path implies; combine the boxes over trees into one range per parameter
(median of the trees' lower and upper ends; where those cross, the middle half of the trees' box
centres), or a set of categories (those inside at least half of the trees' boxes). The forest's
10-fold cross-validated R² says how far to trust the ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold, cross_val_predict

from search.analysis.design import AnalysisData
from search.analysis.fanova import leaf_boxes


@dataclass
class SuggestedBounds:
    ranges: dict[str, tuple[float, float]]  # numeric parameters, original units
    categories: dict[str, list[Any]]
    unit_ranges: dict[str, tuple[float, float]]  # the same in [0, 1] (for drawing on axes)
    r2: float | None
    r2_std: float | None
    n_runs: int


def _cross_validated_r2(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[float | None, float | None]:
    """R² of the forest's out-of-fold predictions over all runs (pooled), and its spread over the folds.

    Pooled, not the mean of per-fold R²: a fold of a small search holds two or three runs, whose own mean is a
    hard baseline to beat, so per-fold R² is wildly negative at exactly the sizes a relaunch works with
    (12 runs of a smooth function: median -3.6 per fold, 0.63 pooled). Each fold's spread term uses the
    overall mean, so the folds' values scatter around the pooled one."""
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


def suggest_bounds(data: AnalysisData, n_trees: int = 100, seed: int = 0, with_r2: bool = True) -> SuggestedBounds:
    n, d = data.X.shape
    if n < 4 or d == 0:
        raise ValueError(f"need at least 4 runs and one varying parameter (have {n} runs, {d} parameters)")
    leaf = max(2, round(0.03 * n))  # a best leaf must stand on a few runs, not one lucky point
    forest = RandomForestRegressor(
        n_estimators=n_trees, min_samples_leaf=leaf, max_features=1.0, random_state=seed, n_jobs=-1
    ).fit(data.X, data.y)
    lows, highs = [], []
    for tree in forest.estimators_:
        parts = leaf_boxes(tree, d)
        best = int(np.argmax(parts.value) if data.direction == "max" else np.argmin(parts.value))
        lows.append(parts.lo[best])
        highs.append(parts.hi[best])
    lows, highs = np.array(lows), np.array(highs)
    ranges, categories, unit_ranges = {}, {}, {}
    for i, axis in enumerate(data.axes):
        lo, hi = float(np.median(lows[:, i])), float(np.median(highs[:, i]))
        if lo >= hi:
            centres = (lows[:, i] + highs[:, i]) / 2
            lo, hi = float(np.quantile(centres, 0.25)), float(np.quantile(centres, 0.75))
        unit_ranges[axis.name] = (lo, hi)
        if axis.kind == "categorical":
            inside = [axis.categories_in(a, b) for a, b in zip(lows[:, i], highs[:, i])]
            votes = {c: sum(c in chosen for chosen in inside) for c in axis.categories}
            categories[axis.name] = [c for c in axis.categories if votes[c] >= len(inside) / 2] or [
                max(votes, key=votes.get)
            ]
            continue
        low, high = axis.from_unit(lo), axis.from_unit(hi)
        if axis.kind == "int":
            low, high = math.floor(low), math.ceil(high)
        ranges[axis.name] = (low, high)
    r2, r2_std = _cross_validated_r2(data.X, data.y, seed) if with_r2 else (None, None)
    return SuggestedBounds(ranges, categories, unit_ranges, r2, r2_std, n)


def untrusted_reason(bounds: SuggestedBounds) -> str | None:
    """Why the bounds must not be offered as a refinement, or None when they may be."""
    if bounds.r2 is None:
        return "too few runs (or no variation in the metric) to cross-validate the forest"
    if bounds.r2 < 0:
        return f"the forest predicts the metric worse than its mean does (cross-validated R² {bounds.r2:.2f} < 0)"
    return None


def refined_space(bounds: SuggestedBounds, data: AnalysisData, original: dict[str, dict] | None = None) -> dict:
    """The search-config ``space`` with the suggested ranges: inside the searched space (the recorded one, or
    the observed range for foreign runs), on the recorded scale, types and conditions kept."""
    space: dict[str, Any] = {name: dict(spec) for name, spec in (original or {}).items()}
    for axis in data.axes:
        spec = dict(space.get(axis.name, {}))
        if axis.name in bounds.categories:
            spec = {"type": "categorical", "choices": bounds.categories[axis.name], **_when(spec)}
        else:
            spec = _numeric_refinement(axis, bounds.ranges[axis.name], spec)
        space[axis.name] = spec
    return space


def _numeric_refinement(axis: Any, suggested: tuple[float, float], spec: dict) -> dict:
    kind = spec.get("type", axis.kind)
    kind = kind if kind in ("float", "int") else axis.kind
    outer_low = max(axis.low, spec["low"]) if isinstance(spec.get("low"), int | float) else axis.low
    outer_high = min(axis.high, spec["high"]) if isinstance(spec.get("high"), int | float) else axis.high
    if outer_low >= outer_high:  # the recorded space and the observed range do not overlap: trust the record
        outer_low, outer_high = spec.get("low", axis.low), spec.get("high", axis.high)
    low, high = min(max(suggested[0], outer_low), outer_high), min(max(suggested[1], outer_low), outer_high)
    if kind == "int":
        floor_, ceiling = math.ceil(outer_low), math.floor(outer_high)
        low, high = max(floor_, math.floor(low)), min(ceiling, math.ceil(high))
        if high <= low:  # a config needs high > low: widen by one, inside the space
            low, high = (low, low + 1) if low + 1 <= ceiling else (high - 1, high)
    else:
        low, high = float(f"{low:.6g}"), float(f"{high:.6g}")
        low, high = max(low, float(outer_low)), min(high, float(outer_high))  # rounding stays inside
    log = bool(spec["log"]) if "log" in spec else axis.log
    return {"type": kind, "low": low, "high": high, "log": log, **_when(spec)}


def _when(spec: dict) -> dict:
    return {"when": spec["when"]} if "when" in spec else {}
