"""The control panel's guided loop against plain TPE, on the same total number of trials B.

Per workload and seed, both into a temporary SQLite MLflow store, 1 worker per search:

- baseline: TPE, B trials on the original space;
- guided: TPE, 0.4 B trials on the original space (same seed, so they are the baseline's first 0.4 B
  trials: a paired comparison), then a relaunch built by the relaunch form's own code path
  (``trellis.search.control.relaunch``): ``form_from_config`` with the best trial, ``fill_from_space`` with the
  verdicts' refined space (``trellis.search.analysis.verdicts``: narrowed, widened and fixed parameters, when
  the forest's R² lets the app offer one), warm start on, ``config_from_form`` with a new seed, ``validate_launch``; the
  bounds and shares are what the search-space page computes (``trellis.search.analysis.report.analyse``) from the
  store. The relaunch runs in-process for 0.6 B trials.

Printed per workload: each arm's final best (median and IQR over seeds), the trial at which the guided loop
first matches the baseline's final best of the same seed (median; "never" counts as B + 1) against the
target 0.6 B, and how many relaunch trials repeated a parent configuration (should be 0). Best-so-far
curves (median and IQR band per arm) go to ``benchmarks/out/guided_loop_<workload>.png``.

    python benchmarks/guided_loop.py [--seeds 10] [--budget 30] [--workloads sparse_bowl,digits_mlp]

Workloads: ``sparse_bowl`` (``trellis.examples.synthetic:sparse_bowl``: 9 parameters, 4 without effect, optimum
loss 0) and ``digits_mlp`` (``trellis.examples.digits_mlp:train`` on 300 training images for 3 epochs: plain TPE
does not saturate there; validation on the usual 449 images).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
GUIDED_FIRST = 0.4  # share of the budget the first (broad) search gets

WORKLOADS: dict[str, dict[str, Any]] = {
    "sparse_bowl": {
        "trial": "trellis.examples.synthetic:sparse_bowl",
        "objective": {"metric": "loss", "direction": "min"},
        "budget_max": 1,
        "space": {
            "x1": {"type": "float", "low": 0.0, "high": 1.0},
            "x2": {"type": "float", "low": 0.0, "high": 1.0},
            "x3": {"type": "float", "low": 0.0, "high": 1.0},
            "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
            "kind": {"type": "categorical", "choices": ["a", "b", "c", "d"]},
            **{f"u{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(1, 5)},
        },
    },
    "digits_mlp": {
        "trial": "trellis.examples.digits_mlp:train",
        "objective": {"metric": "val_accuracy", "direction": "max"},
        "budget_max": 3,
        "space": {
            "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
            "hidden": {"type": "int", "low": 8, "high": 256, "log": True},
            "layers": {"type": "int", "low": 1, "high": 3},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            "activation": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
            "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": "sgd"}},
            "batch_size": 32,
            "train_size": 300,
        },
    },
}


@dataclass
class GuidedSeed:
    curve: list[float]
    parent_prefix_matches: bool  # the parent's trials were the baseline's first trials
    bounds_offered: bool
    r2: float | None
    fixed: list[str]
    searched: dict[str, Any]
    problems: list[tuple[str, str]] = field(default_factory=list)
    warm_started: int = 0  # parent trials inside the refined space, told to the relaunch's TPE
    duplicates: int = 0  # relaunch trials whose searched values a parent trial already ran
    child_trials: int = 0


def raw_config(workload: str, name: str, seed: int, trials: int, uri: str, n_startup: int) -> dict[str, Any]:
    w = WORKLOADS[workload]
    return {
        "name": name,
        "objective": dict(w["objective"]),
        "space": w["space"],
        "algorithm": {"name": "tpe", "seed": seed, "n_startup_trials": n_startup},
        "budget": {"resource": "epochs", "min": 1, "max": w["budget_max"]},
        "termination": {"max_trials": trials},
        "executor": {"kind": "local", "workers": 1},
        "trial": {"function": w["trial"]},
        "tracking": {"uri": uri, "experiment": name},
    }


def best_so_far(values: list[float], direction: str) -> list[float]:
    out, best = [], math.nan
    for v in values:
        if v is not None and math.isfinite(v) and (math.isnan(best) or (v > best if direction == "max" else v < best)):
            best = v
        out.append(best)
    return out


def trial_values(result: Any) -> list[float]:
    return [t.value if t.value is not None else math.nan for t in sorted(result.trials, key=lambda t: t.number)]


def run_baseline(workload: str, seed: int, budget: int, uri: str, n_startup: int) -> tuple[list[float], Any]:
    from trellis.search.config import parse_config
    from trellis.search.engine.runner import run_search

    config = parse_config(raw_config(workload, f"{workload}-s{seed}-baseline", seed, budget, uri, n_startup))
    result = run_search(config)
    return trial_values(result), result


def run_guided(
    workload: str,
    seed: int,
    budget: int,
    uri: str,
    n_startup: int,
    baseline: list[float],
    always_bounds: bool = False,
) -> GuidedSeed:
    from trellis.search.analysis.bounds import untrusted_reason
    from trellis.search.analysis.refine import refined_space
    from trellis.search.analysis.report import analyse
    from trellis.search.config import parse_config
    from trellis.search.control.policy import ServerPolicy
    from trellis.search.control.relaunch import (
        config_from_form,
        fill_from_space,
        form_from_config,
        validate_launch,
    )
    from trellis.search.engine.runner import run_search
    from trellis.search.engine.warm_start import config_key
    from trellis.tracking import schema
    from trellis.tracking.reader import read_runs, spaces_of

    w = WORKLOADS[workload]
    metric, direction = w["objective"]["metric"], w["objective"]["direction"]
    first = round(GUIDED_FIRST * budget)
    parent_config = parse_config(raw_config(workload, f"{workload}-s{seed}-guided", seed, first, uri, n_startup))
    parent = run_search(parent_config)
    parent_values = trial_values(parent)

    # What the search-space page computes from the parent's runs in the store: fANOVA shares, suggested bounds.
    table = read_runs(uri, [parent.experiment_id])
    trials = table.trials[table.trials["search_id"] == parent.search_id]
    report = analyse(table, trials, metric, direction)
    offered = report.bounds is not None and untrusted_reason(report.bounds) is None

    # The relaunch form, as the page fills it: best trial, refined ranges, unimportant parameters fixed.
    parent_dict = parent_config.to_dict()
    best = dict(parent.best_params or {})
    form = form_from_config(parent_dict, best)
    if report.verdicts and (offered or always_bounds):  # the verdicts: narrowed, widened and fixed parameters
        form = fill_from_space(form, *refined_space(report.verdicts, report.data, spaces_of(table)))
    form["warm_start"] = True
    form["termination"]["max_trials"] = budget - first
    form["workers"] = 1
    raw, form_problems = config_from_form(parent_dict, form, parent.search_id, seed + 10_000)
    policy = ServerPolicy(extra_trials=frozenset({w["trial"]}))  # the operator's --allow-trial
    config, problems = validate_launch(raw, form_problems, policy, w["trial"])

    out = GuidedSeed(
        curve=[],
        parent_prefix_matches=bool(np.allclose(parent_values, baseline[:first], equal_nan=True)),
        bounds_offered=offered,
        r2=report.bounds.r2 if report.bounds is not None else None,
        fixed=[r["name"] for r in form["rows"] if r["action"] == "fix" and isinstance(w["space"][r["name"]], dict)],
        searched={r["name"]: _range(r) for r in form["rows"] if r["action"] == "search"},
        problems=problems,
    )
    if config is None:  # the form's own path refused what it built: a finding, reported, not hidden
        out.curve = best_so_far(parent_values + [math.nan] * (budget - first), direction)
        return out
    child = run_search(config)
    parent_keys = {config_key(config.space, t.params) for t in parent.trials}
    out.duplicates = sum(config_key(config.space, t.params) in parent_keys for t in child.trials)
    out.child_trials = len(child.trials)
    out.warm_started = int(float(_search_tags(uri, child.search_id).get(schema.WARM_START_TRIALS, 0)))
    out.curve = best_so_far(parent_values + trial_values(child), direction)
    return out


def _range(row: dict[str, Any]) -> str:
    if row["type"] == "categorical":
        return f"{{{row['choices']}}}"
    return f"{row['low']:.3g}..{row['high']:.3g}" if row["type"] == "float" else f"{row['low']}..{row['high']}"


def _search_tags(uri: str, search_id: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri).get_run(search_id).data.tags


# -- summary ----------------------------------------------------------------------------------------
def reach_trial(curve: list[float], target: float, direction: str) -> int | None:
    """The first trial (1-based) whose best so far is at least as good as ``target``; None: never."""
    for i, v in enumerate(curve):
        if math.isfinite(v) and (v >= target if direction == "max" else v <= target):
            return i + 1
    return None


def med_iqr(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    q1, med, q3 = np.nanquantile(a, [0.25, 0.5, 0.75])
    return f"{med:.4g} (IQR {q1:.4g}..{q3:.4g})"


def summarise(
    workload: str,
    budget: int,
    base: list[list[float]],
    guided: list[GuidedSeed],
    seconds: float,
    variant: list[str] | None = None,
) -> None:
    w = WORKLOADS[workload]
    metric, direction = w["objective"]["metric"], w["objective"]["direction"]
    n, first, target = len(base), round(GUIDED_FIRST * budget), round(0.6 * budget)
    base_final = [c[-1] for c in base]
    guided_final = [g.curve[-1] for g in guided]
    reach = [reach_trial(g.curve, b, direction) for g, b in zip(guided, base_final)]
    reach_n = [budget + 1 if r is None else r for r in reach]
    better = sum((g > b if direction == "max" else g < b) for g, b in zip(guided_final, base_final))
    ties = sum(g == b for g, b in zip(guided_final, base_final))
    within = sum(r is not None and r <= target for r in reach)
    print(f"\n== {workload}: {metric} ({direction}), {n} seeds, B = {budget} trials per arm ({seconds:.0f} s)")
    if variant:
        print(f"  DIAGNOSTIC VARIANT: {', '.join(variant)} (not the relaunch form as the app fills it)")
    print(f"  baseline TPE, final best          : {med_iqr(base_final)}")
    print(f"  baseline TPE, best at trial {target:<3}   : {med_iqr([c[target - 1] for c in base])}")
    print(f"  guided ({first} + {budget - first} relaunch), final best : {med_iqr(guided_final)}")
    print(f"  guided final vs baseline final    : better {better}, equal {ties}, worse {n - better - ties} (of {n})")
    per_seed = ", ".join("never" if r is None else str(r) for r in reach)
    print(
        f"  trial where guided reaches the baseline's final best: median {np.median(reach_n):g}"
        f" (never = {budget + 1}); per seed: {per_seed}"
    )
    print(
        f"    target <= {target} (0.6 B): met in {within} of {n} seeds; median "
        f"{'meets' if np.median(reach_n) <= target else 'MISSES'} it"
    )
    dup = sum(g.duplicates for g in guided)
    print(f"  relaunch trials repeating a parent configuration: {dup} of {sum(g.child_trials for g in guided)}")
    refused = [g for g in guided if g.problems]
    if refused:
        print(f"  REFUSED by validate_launch in {len(refused)} seeds: {refused[0].problems}")
    prefix = sum(g.parent_prefix_matches for g in guided)
    print(f"  parent = baseline's first {first} trials (same seed): {prefix} of {n} seeds")
    r2 = [g.r2 for g in guided if g.r2 is not None]
    print(
        f"  suggested bounds offered (forest R^2 >= 0): {sum(g.bounds_offered for g in guided)} of {n};"
        f" R^2 median {np.median(r2) if r2 else float('nan'):.2f}"
    )
    print(f"  warm-start trials told to the relaunch: median {np.median([g.warm_started for g in guided]):g}")
    fixed: dict[str, int] = {}
    for g in guided:
        for name in g.fixed:
            fixed[name] = fixed.get(name, 0) + 1
    print(
        "  fixed by the verdicts, seeds: "
        + (", ".join(f"{k} {v}" for k, v in sorted(fixed.items(), key=lambda kv: -kv[1])) or "none")
    )
    print(f"  relaunch space of seed 0: {guided[0].searched}")


def plot(
    workload: str, budget: int, base: list[list[float]], guided: list[GuidedSeed], suffix: str = ""
) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (matplotlib is not installed: no plot)")
        return None
    w = WORKLOADS[workload]
    x = np.arange(1, budget + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, curves, colour in (
        ("baseline: TPE, B trials", base, "tab:blue"),
        (
            f"guided: TPE {round(GUIDED_FIRST * budget)} + relaunch {budget - round(GUIDED_FIRST * budget)}",
            [g.curve for g in guided],
            "tab:orange",
        ),
    ):
        a = np.asarray(curves, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-NaN columns before a first finite value
            q1, med, q3 = np.nanquantile(a, [0.25, 0.5, 0.75], axis=0)
        ax.plot(x, med, color=colour, label=f"{label} (median)")
        ax.fill_between(x, q1, q3, color=colour, alpha=0.2, linewidth=0)
    ax.axvline(GUIDED_FIRST * budget + 0.5, color="grey", linestyle=":", label="relaunch")
    ax.axvline(0.6 * budget, color="grey", linestyle="--", label="target: 0.6 B")
    if workload == "sparse_bowl":
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"best {w['objective']['metric']} so far ({w['objective']['direction']})")
    ax.set_title(f"{workload}: best so far over {len(base)} seeds (median, IQR band)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"guided_loop_{workload}{suffix}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=30, help="B: trials per arm")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--n-startup", type=int, default=10, help="TPE's random trials before its model (all arms)")
    parser.add_argument(
        "--always-bounds",
        action="store_true",
        help="diagnostic: apply the suggested bounds even where the app would not offer them (forest R^2 < 0)",
    )
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or args.seeds < 1 or args.budget < 5:
        parser.error(f"unknown workloads {unknown}" if unknown else "need --seeds >= 1 and --budget >= 5")
    variant = ["always_bounds"] if args.always_bounds else []  # a diagnostic run: said in the summary and plot name
    quiet()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # checkpoints land here
        for workload in workloads:
            uri = f"sqlite:///{Path(tmp) / workload}.db"
            started = time.perf_counter()
            base, guided = [], []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                values, _ = run_baseline(workload, seed, args.budget, uri, args.n_startup)
                base.append(best_so_far(values, WORKLOADS[workload]["objective"]["direction"]))
                guided.append(run_guided(workload, seed, args.budget, uri, args.n_startup, values, args.always_bounds))
                print(
                    f"[{workload} seed {seed}] baseline {base[-1][-1]:.4g}, guided {guided[-1].curve[-1]:.4g}"
                    f" ({time.perf_counter() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            summarise(workload, args.budget, base, guided, time.perf_counter() - started, variant)
            path = plot(workload, args.budget, base, guided, "".join(f"_{v}" for v in variant))
            if path:
                print(f"  plot: {path}")
            sys.stdout.flush()


def quiet() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401  (it sets up its loggers on import: quiet them after)

    for name in ("alembic", "mlflow", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


if __name__ == "__main__":
    main()
