"""Pareto front and hypervolume of many trials: Trellis' against a brute-force reference in the same run.

    python benchmarks/pareto_speed.py [--trials 100000] [--objectives 3]

Random values (uniform in the unit cube: a small front, as a search's trials give) and a correlated set
(objectives that trade off: a large front). The target: front and hypervolume of 100k trials x 3 objectives
in at most 1 s. The brute-force reference (every trial against every other, numpy, in chunks) runs on a
subsample it can finish; the ratio is on that subsample, and the fronts must be the same.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trellis.search.pareto import hypervolume, pareto_front, reference_point


def brute_force_front(losses: np.ndarray, chunk: int = 512) -> np.ndarray:
    out = np.ones(len(losses), dtype=bool)
    for start in range(0, len(losses), chunk):
        part = losses[start : start + chunk]
        no_worse = np.all(losses[None, :, :] <= part[:, None, :], axis=2)
        better = np.any(losses[None, :, :] < part[:, None, :], axis=2)
        out[start : start + chunk] = ~np.any(no_worse & better, axis=1)
    return out


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--objectives", type=int, default=3)
    parser.add_argument("--reference-trials", type=int, default=8_000, help="the brute force's subsample")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    k = args.objectives
    directions = ["min"] * k
    sets = {
        "uniform": rng.random((args.trials, k)),
        "trade-off": (lambda u: u / np.linalg.norm(u, axis=1, keepdims=True) + 0.05 * rng.random((args.trials, k)))(
            rng.random((args.trials, k)) + 0.1
        ),
    }
    for name, values in sets.items():
        (front, t_front) = timed(pareto_front, values, directions)
        ref = reference_point(values, directions).point
        (hv, t_hv) = timed(hypervolume, values, directions, ref)
        sub = values[: args.reference_trials]
        (mine, t_mine) = timed(pareto_front, sub, directions)
        (brute, t_brute) = timed(brute_force_front, sub)
        assert np.array_equal(mine, brute), "the fronts differ"
        total = t_front + t_hv
        print(f"{name:>9}: {args.trials:,} trials x {k}: front of {front.sum():,} in {t_front:.3f} s, "
              f"hypervolume {hv:.4g} in {t_hv:.3f} s: {total:.3f} s ({total / 1.0:.2f} of the 1 s target)")  # fmt: skip
        print(f"{'':>9}  on {len(sub):,} trials: {t_mine:.4f} s vs brute force {t_brute:.3f} s "
              f"({t_mine / t_brute:.4f}x), same front ({mine.sum()} trials)")  # fmt: skip


if __name__ == "__main__":
    main()
