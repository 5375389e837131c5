"""fANOVA importance: accuracy against analytic variance shares, and speed, Trellis vs the ``fanova`` package.

Accuracy: the functions of ``benchmarks/importance_functions.py`` (Ishigami, Sobol's G-function, an
additive function, a pure interaction, a categorical with a conditional parameter), sampled at 200, 800
and 3000 uniform random runs for several seeds. For each, the max and mean absolute error over every
single and pair share, for
- Trellis (``FastFANOVA``, boosted ensembles, conditional parameters analysed where they are set),
- the per-tree forest estimate, the ``fanova`` package's own method (Trellis' exact implementation of it,
  ``method="forest"``, which the tests check against the package): singles and pairs,
- the ``fanova`` package itself: singles only (one pair takes it minutes at 800 runs; ``--package-pairs``
  adds the pairs whose truth is not 0).

Speed: Ishigami plus three ignored parameters, 1k runs x 6 parameters, singles and all 15 pairs; the
package is timed on its singles and one pair, its time for 15 pairs extrapolated (printed as such).

    python benchmarks/importance.py [--runs 200 800 3000] [--seeds 2] [--functions ishigami ...]
                                    [--package-pairs] [--no-package] [--no-speed]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks.importance_functions import SUITE, Sample, ishigami  # noqa: E402


def _shares(imp) -> dict:
    return {**imp.single_mean, **imp.pair_mean}


def _package(sample: Sample, pairs: bool) -> dict:
    from trellis.search.analysis.fanova_reference import reference_importance

    wanted = [k for k, v in sample.truth.items() if isinstance(k, tuple) and v > 0] if pairs else []
    return reference_importance(sample.X, sample.y, sample.names, n_trees=64, seed=0, pairs=wanted)


def accuracy(functions: list[str], sizes: list[int], seeds: int, package: bool, package_pairs: bool) -> None:
    from trellis.search.analysis.fanova import FastFANOVA

    print("Error against the analytic shares: max / mean absolute error over every single and pair share")
    print(f"({seeds} seeds each; package: singles{' and the non-zero pairs' if package_pairs else ' only'})")
    head = (
        f"{'function':12} {'runs':>5}   {'Trellis':>13}   {'per-tree forest':>15}   {'fanova package':>14}   Trellis s"
    )
    print(head)
    for name in functions:
        for n in sizes:
            ours, forest, pkg, ours_on_pkg, wall = [], [], [], [], []
            for seed in range(seeds):
                s = SUITE[name](n, seed)
                t0 = time.perf_counter()
                got = _shares(FastFANOVA(s.X, s.y, s.names, seed=0, active=s.active).importance())
                wall.append(time.perf_counter() - t0)
                ours.append(s.errors(got))
                fst = _shares(FastFANOVA(s.X, s.y, s.names, seed=0, method="forest").importance())
                forest.append(s.errors(fst))
                if package:
                    ref = _package(s, package_pairs)
                    keys = list(ref)
                    pkg.append(np.array([abs(ref[k] - s.truth.get(k, 0.0)) for k in keys]))
                    ours_on_pkg.append(np.array([abs(got[k] - s.truth.get(k, 0.0)) for k in keys]))
            o, f = np.concatenate(ours), np.concatenate(forest)
            p = f"{np.concatenate(pkg).max():.3f} / {np.concatenate(pkg).mean():.3f}" if package else "-"
            print(
                f"{name:12} {n:5d}   {o.max():.3f} / {o.mean():.3f}   {f.max():7.3f} / {f.mean():.3f}   {p:>14}   "
                f"{np.mean(wall):6.2f}",
                flush=True,
            )
            if package:
                op = np.concatenate(ours_on_pkg)
                print(f"{'':12} {'':5}   on the package's shares: Trellis {op.max():.3f} / {op.mean():.3f}")


def speed(runs: int, package: bool) -> None:
    from trellis.search.analysis.fanova import FastFANOVA
    from trellis.search.analysis.fanova_reference import load_fanova, unit_config_space

    names = ["x1", "x2", "x3", "x4", "x5", "x6"]
    base = ishigami(runs, 0)
    X = np.column_stack([base.X, np.random.default_rng(1).uniform(size=(runs, 3))])
    c0, t0 = time.process_time(), time.perf_counter()
    ours = FastFANOVA(X, base.y, names, seed=0)
    c_fit, t_fit = time.process_time(), time.perf_counter()
    ours.importance(pairs=False)
    c_single, t_single = time.process_time(), time.perf_counter()
    imp = ours.importance(pairs=True)
    c_pairs, t_pairs = time.process_time(), time.perf_counter()
    ours_singles_s = (t_fit - t0) + (t_single - t_fit)
    ours_total_s = (t_fit - t0) + (t_pairs - t_single)
    ours_total_cpu = (c_fit - c0) + (c_pairs - c_single)
    got = _shares(imp)
    truth = {**base.truth}
    worst = max(abs(got.get(k, 0.0) - truth.get(k, 0.0)) for k in names + list(imp.pair_mean))
    print(f"\nSpeed: Ishigami + 3 ignored parameters, {runs} runs x 6 parameters")
    print(f"  Trellis        : singles {ours_singles_s:7.2f} s, + all 15 pairs {ours_total_s:8.2f} s wall")
    print(f"                   singles + all 15 pairs {ours_total_cpu:.2f} s of CPU, all threads (target <= 2 s)")
    print(f"  Trellis max error over the 21 shares: {worst:.3f}")
    if not package:
        return
    fANOVA = load_fanova()
    t0 = time.perf_counter()
    ref = fANOVA(X, base.y, config_space=unit_config_space(names), n_trees=64, seed=0)
    for i in range(6):
        ref.quantify_importance((i,))
    ref_singles_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref.quantify_importance((0, 2))
    ref_total_s = ref_singles_s + (time.perf_counter() - t0) * 15
    print(
        f"  fanova package : singles {ref_singles_s:7.2f} s, + all 15 pairs {ref_total_s:8.1f} s (extrapolated from 1)"
    )
    print(f"  ratio Trellis / package: singles + pairs {ours_total_s / ref_total_s:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, nargs="+", default=[200, 800, 3000])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--functions", nargs="+", default=list(SUITE), choices=list(SUITE))
    parser.add_argument("--package-pairs", action="store_true")
    parser.add_argument("--no-package", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--speed-runs", type=int, default=1000)
    args = parser.parse_args()
    logging.getLogger("fanova").setLevel(logging.ERROR)
    accuracy(args.functions, args.runs, args.seeds, not args.no_package, args.package_pairs)
    if not args.no_speed:
        speed(args.speed_runs, not args.no_package)


if __name__ == "__main__":
    main()
