"""Suggested bounds on functions with known optima: how much of each range they keep, and whether they keep
the optimum, against the bounds Trellis suggested before (``bounds_v1``, the per-tree best-leaf boxes, kept
below as it was), on the same runs in the same process.

Each function has two parameters that matter and two that do not (log and linear, int and float, and a
categorical whose best value is known); runs are uniform random samples of the space (as ``random`` draws
them), with a little noise on the loss. Printed per function and seed, for both methods: the fraction of its
sampled range (in its own scale; for a categorical, of its choices) each parameter keeps, whether every
optimum is inside, and which parameters are flagged as without effect (suggested to be fixed). Targets
(issue 16): optimum inside every bound, each important parameter ≤ 25% of its range at 400 runs, the
parameters without effect flagged rather than narrowed.

    python benchmarks/bounds.py [--runs 400] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trellis.search import space  # noqa: E402
from trellis.search.analysis.design import AnalysisData, Axis  # noqa: E402

TARGET_KEPT = 0.25
NOISE = 0.005  # sd of the loss' noise (the loss spans about 0 .. 0.5)


@dataclass
class Truth:
    """A function of named raw values with a known optimum; ``important`` are the parameters it depends on."""

    name: str
    axes: list[Axis]
    optimum: dict[str, Any]
    important: set[str]

    def loss(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return LOSSES[self.name](values)


def _u(value: float, low: float, high: float, log: bool = False) -> float:
    return float(space.to_unit(value, low, high, log))


LOSSES = {
    # x, y matter (linear floats); u, v do not.
    "bowl_float": lambda p: ((p["x"] - 0.3) / 2) ** 2 + ((p["y"] - 7.5) / 10) ** 2,
    # lr (log float) and units (log int) matter; dropout (linear float) and batch (log int) do not.
    "bowl_log": lambda p: (
        ((np.log10(p["lr"]) - math.log10(3e-3)) / 4) ** 2 + 0.6 * ((np.log2(p["units"]) - 6) / 6) ** 2
    ),
    # layers (linear int) and x (linear float, optimum near the edge) matter; k (int), w (log float) do not.
    "bowl_int": lambda p: ((p["layers"] - 24) / 31) ** 2 + (p["x"] - 0.9) ** 2,
    # optimizer (categorical, adam best) and lr (log) matter; u (float) and act (categorical) do not.
    "categorical": lambda p: (
        np.select(
            [p["optimizer"] == "sgd", p["optimizer"] == "rmsprop", p["optimizer"] == "adagrad"], [0.15, 0.05, 0.1], 0.0
        )
        + ((np.log10(p["lr"]) + 2) / 5) ** 2
    ),
}

TRUTHS = [
    Truth(
        "bowl_float",
        [
            Axis("x", "float", -1.0, 1.0),
            Axis("y", "float", 0.0, 10.0),
            Axis("u", "float", 0.0, 1.0),
            Axis("v", "float", -5.0, 5.0),
        ],  # fmt: skip
        {"x": 0.3, "y": 7.5},
        {"x", "y"},
    ),
    Truth(
        "bowl_log",
        [
            Axis("lr", "float", 1e-5, 1e-1, log=True),
            Axis("units", "int", 8, 512, log=True),
            Axis("dropout", "float", 0.0, 0.7),
            Axis("batch", "int", 16, 256, log=True),
        ],  # fmt: skip
        {"lr": 3e-3, "units": 64},
        {"lr", "units"},
    ),
    Truth(
        "bowl_int",
        [
            Axis("layers", "int", 1, 32),
            Axis("x", "float", 0.0, 1.0),
            Axis("k", "int", 0, 100),
            Axis("w", "float", 1e-3, 1.0, log=True),
        ],  # fmt: skip
        {"layers": 24, "x": 0.9},
        {"layers", "x"},
    ),
    Truth(
        "categorical",
        [
            Axis("optimizer", "categorical", categories=["sgd", "adam", "rmsprop", "adagrad"]),
            Axis("lr", "float", 1e-5, 1.0, log=True),
            Axis("u", "float", 0.0, 1.0),
            Axis("act", "categorical", categories=["relu", "tanh", "gelu"]),
        ],  # fmt: skip
        {"optimizer": "adam", "lr": 1e-2},
        {"optimizer", "lr"},
    ),
]


def sample(truth: Truth, n: int, seed: int) -> AnalysisData:
    """``n`` uniform random runs of the space (ints drawn as whole numbers), as the analysis sees them."""
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for axis in truth.axes:
        if axis.kind == "categorical":
            values[axis.name] = np.array(axis.categories, dtype=object)[rng.integers(len(axis.categories), size=n)]
        elif axis.kind == "int":
            lo, hi = (axis.low - 0.5, axis.high + 0.5) if not axis.log else (axis.low, axis.high + 1)
            raw = np.array([space.from_unit(u, lo, hi, axis.log) for u in rng.random(n)])
            values[axis.name] = np.clip(np.floor(raw) if axis.log else np.round(raw), axis.low, axis.high)
        else:
            values[axis.name] = np.array([axis.from_unit(u) for u in rng.random(n)])
    y = truth.loss(values) + NOISE * rng.standard_normal(n)
    X = np.column_stack([a.to_unit(values[a.name]) for a in truth.axes])
    return AnalysisData(list(truth.axes), X, y, [f"r{i:04d}" for i in range(n)], "loss", "min")


@dataclass
class Scored:
    kept: dict[str, float]  # fraction of the sampled range (own scale) or of the choices
    inside: bool  # every optimum value inside its bound
    flagged: set[str]  # parameters flagged as without effect
    margin: float  # the closest an optimum value comes to an end of its range (fraction of the range)


def score(truth: Truth, ranges: dict, categories: dict, flagged: set[str]) -> Scored:
    kept, inside, margin = {}, True, 1.0
    for axis in truth.axes:
        if axis.kind == "categorical":
            chosen = categories[axis.name]
            kept[axis.name] = len(chosen) / len(axis.categories)
            inside &= axis.name not in truth.optimum or truth.optimum[axis.name] in chosen
            continue
        low, high = ranges[axis.name]
        unit_low, unit_high = (float(axis.to_unit(np.array([v]))[0]) for v in (low, high))
        kept[axis.name] = unit_high - unit_low
        if axis.name in truth.optimum:
            inside &= bool(low <= truth.optimum[axis.name] <= high)
            best = float(axis.to_unit(np.array([truth.optimum[axis.name]]))[0])
            margin = min(margin, best - unit_low, unit_high - best)
    return Scored(kept, inside, flagged, margin)


def meets_targets(truth: Truth, s: Scored) -> bool:
    numeric = {a.name for a in truth.axes if a.kind != "categorical"}
    narrow = all(s.kept[n] <= TARGET_KEPT for n in truth.important & numeric)
    return s.inside and narrow and s.flagged == {a.name for a in truth.axes} - truth.important


# -- the bounds before issue 16, unchanged (per tree, the best leaf's box; medians over the trees) -------------
def bounds_v1(data: AnalysisData, n_trees: int = 100, seed: int = 0) -> tuple[dict, dict]:
    from sklearn.ensemble import RandomForestRegressor

    from trellis.search.analysis.fanova import leaf_boxes

    n, d = data.X.shape
    forest = RandomForestRegressor(
        n_estimators=n_trees, min_samples_leaf=max(2, round(0.03 * n)), max_features=1.0, random_state=seed, n_jobs=-1
    ).fit(data.X, data.y)
    lows, highs = [], []
    for tree in forest.estimators_:
        parts = leaf_boxes(tree, d)
        best = int(np.argmax(parts.value) if data.direction == "max" else np.argmin(parts.value))
        lows.append(parts.lo[best])
        highs.append(parts.hi[best])
    lows, highs = np.array(lows), np.array(highs)
    ranges, categories = {}, {}
    for i, axis in enumerate(data.axes):
        lo, hi = float(np.median(lows[:, i])), float(np.median(highs[:, i]))
        if lo >= hi:
            centres = (lows[:, i] + highs[:, i]) / 2
            lo, hi = float(np.quantile(centres, 0.25)), float(np.quantile(centres, 0.75))
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
    return ranges, categories


def run(truth: Truth, n: int, seed: int) -> tuple[Scored, Scored, float, float]:
    from trellis.search.analysis.bounds import suggest_bounds

    data = sample(truth, n, seed)
    t0 = time.perf_counter()
    old = score(truth, *bounds_v1(data, seed=0), set())
    t1 = time.perf_counter()
    b = suggest_bounds(data, seed=0)
    t2 = time.perf_counter()
    new = score(truth, b.ranges, b.categories, set(b.unimportant))
    return old, new, t1 - t0, t2 - t1


def _row(label: str, truth: Truth, s: Scored) -> str:
    kept = "  ".join(f"{a.name}{'*' if a.name in truth.important else ''} {s.kept[a.name]:4.2f}" for a in truth.axes)
    flagged = ",".join(sorted(s.flagged)) or "-"
    verdict = "meets" if meets_targets(truth, s) else "misses"
    inside = f"{'yes' if s.inside else 'NO '} ({s.margin:+.2f})"
    return f"  {label:<3} {kept}   optimum inside: {inside}  flagged: {flagged:<14} {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"Suggested bounds at {args.runs} uniform random runs; * = matters; kept = fraction of the range kept")
    print(f"(own scale; of the choices for a categorical). Target: optimum inside, kept ≤ {TARGET_KEPT} for *,")
    print("the others flagged as without effect (old: the bounds before issue 16, which flag nothing).")
    print("(+0.05): the optimum's distance to the nearest end of its range, as a fraction of the range.")
    totals = {"old": 0, "new": 0}
    times = {"old": 0.0, "new": 0.0}
    for truth in TRUTHS:
        for seed in seeds:
            old, new, t_old, t_new = run(truth, args.runs, seed)
            print(f"{truth.name} seed {seed}")
            print(_row("old", truth, old))
            print(_row("new", truth, new))
            totals["old"] += meets_targets(truth, old)
            totals["new"] += meets_targets(truth, new)
            times["old"] += t_old
            times["new"] += t_new
    cases = len(TRUTHS) * len(seeds)
    print(f"targets met: old {totals['old']}/{cases}, new {totals['new']}/{cases}")
    per_case = times["old"] / cases
    print(f"time: new (with its 10-fold R²) / old = {times['new'] / times['old']:.1f} (old {per_case:.2f} s per case)")


if __name__ == "__main__":
    main()
