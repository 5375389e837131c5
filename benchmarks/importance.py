"""fANOVA importance: Trellis' implementation vs the ``fanova`` package, same data, same number of trees.

Data: the Ishigami function on x1..x3 plus three parameters it ignores (1k runs x 6 parameters), whose
variance shares are known: x1 0.314, x2 0.442, x3 0, x1*x3 0.244, everything else 0.

The package needs about a minute per pair here, so by default it is timed on two pairs (x1*x3 and
x2*x5) and its time for all 15 pairs is extrapolated (printed as such); ``--all-pairs`` times all 15.

    python benchmarks/importance.py [--runs 1000] [--trees 64] [--all-pairs]
"""

from __future__ import annotations

import argparse
import logging
import time
from itertools import combinations

import numpy as np

NAMES = ["x1", "x2", "x3", "x4", "x5", "x6"]
TRUTH = {"x1": 0.3139, "x2": 0.4424, "x3": 0.0, "x4": 0.0, "x5": 0.0, "x6": 0.0, ("x1", "x3"): 0.2437}


def ishigami6(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    unit = np.random.default_rng(seed).uniform(size=(n, 6))
    x = -np.pi + 2 * np.pi * unit[:, :3]
    return unit, np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])


def max_error(got: dict) -> float:
    keys = [k for k in got if k in TRUTH or isinstance(k, tuple)]
    return max(abs(got[k] - TRUTH.get(k, 0.0)) for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--trees", type=int, default=64)
    parser.add_argument("--all-pairs", action="store_true")
    args = parser.parse_args()
    logging.getLogger("fanova").setLevel(logging.ERROR)
    from search.analysis.fanova import FastFANOVA
    from search.analysis.fanova_reference import load_fanova, unit_config_space

    X, y = ishigami6(args.runs)
    all_pairs = list(combinations(range(6), 2))

    t0 = time.perf_counter()
    ours = FastFANOVA(X, y, NAMES, n_trees=args.trees, seed=0)
    t_fit = time.perf_counter()
    imp_single = ours.importance(pairs=False)
    t_single = time.perf_counter()
    imp = ours.importance(pairs=True)
    t_pairs = time.perf_counter()
    ours_singles_s = (t_fit - t0) + (t_single - t_fit)
    ours_total_s = (t_fit - t0) + (t_pairs - t_single)
    ours_got = {**imp.single_mean, **imp.pair_mean}
    assert imp_single.single_mean == imp.single_mean

    fANOVA = load_fanova()
    t0 = time.perf_counter()
    ref = fANOVA(X, y, config_space=unit_config_space(NAMES), n_trees=args.trees, seed=0)
    ref_got = {}
    for i, name in enumerate(NAMES):
        ref_got[name] = float(ref.quantify_importance((i,))[(i,)]["individual importance"])
    ref_singles_s = time.perf_counter() - t0
    timed = all_pairs if args.all_pairs else [(0, 2), (1, 4)]
    t0 = time.perf_counter()
    for i, j in timed:
        ref_got[(NAMES[i], NAMES[j])] = float(ref.quantify_importance((i, j))[(i, j)]["individual importance"])
    ref_pairs_s = (time.perf_counter() - t0) * len(all_pairs) / len(timed)
    ref_total_s = ref_singles_s + ref_pairs_s

    print(f"Ishigami + 3 ignored parameters: {args.runs} runs x 6 parameters, {args.trees} trees each")
    print(
        f"  fanova package : singles {ref_singles_s:7.2f} s, + all 15 pairs {ref_total_s:8.1f} s"
        + ("" if args.all_pairs else f"  (pairs extrapolated from {len(timed)} of 15)")
    )
    print(f"  Trellis        : singles {ours_singles_s:7.2f} s, + all 15 pairs {ours_total_s:8.2f} s")
    print(
        f"ratio Trellis / package: singles {ours_singles_s / ref_singles_s:.3f}, singles + pairs "
        f"{ours_total_s / ref_total_s:.4f}  (target <= 0.01)"
    )
    shared = {k: ours_got[k] for k in ref_got}
    print(
        f"accuracy vs the known shares (max abs error over {len(shared)} shares both computed): "
        f"package {max_error(ref_got):.3f}, Trellis {max_error(shared):.3f}; Trellis over all 21: "
        f"{max_error(ours_got):.3f}"
    )
    for key in ["x1", "x2", "x3", ("x1", "x3")]:
        label = key if isinstance(key, str) else " x ".join(key)
        print(f"  {label:8} truth {TRUTH[key]:.3f}  package {ref_got[key]:.3f}  Trellis {ours_got[key]:.3f}")


if __name__ == "__main__":
    main()
