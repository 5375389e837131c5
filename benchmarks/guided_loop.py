"""The control panel's guided loop against plain TPE, on the same total number of trials B, paired by seed.

Per workload, seed and B, into a temporary SQLite MLflow store, one worker per search, four arms:

- ``plain``: TPE, B trials on the original space;
- ``continue``: TPE for 0.4 B trials (the same seed: they are plain TPE's first 0.4 B trials), then a relaunch
  with no refinement, warm-started from all of them, for 0.6 B trials: the split alone;
- ``bounds``: the same parent, relaunched with hard bounds: the relaunch form's *Fill* with guidance
  ``bounds`` (narrowed, widened and fixed parameters of the verdicts, ``trellis.search.analysis.verdicts``),
  warm-started from the parent's trials inside them;
- ``prior``: the same parent, relaunched as the control page does by default: the original space (widened where
  a verdict widens) and a prior from the verdicts (``prior_from_verdicts``, ``trellis.search.prior``: densities on
  the narrowed regions and fixed values, each weighted by how sure the analysis is, decaying as piBO's), TPE
  told every parent trial.

Every relaunch goes through the form's own code path (``form_from_config``, the fill, ``config_from_form`` with
a new seed, ``validate_launch``); the verdicts are what the search-space page computes from the store
(``trellis.search.analysis.report.analyse``).

Printed per workload and B: per arm the trial at which it first reaches plain TPE's final best of the same seed
(median and IQR; "never" counts as B + 1) against the target 0.6 B, its final best (median and IQR), and wins,
ties and losses against plain TPE with a two-sided paired sign test. Best-so-far curves (median and IQR band
per arm) go to ``benchmarks/out/guided_loop_<workload>_B<B>.png``; each seed's curves to
``benchmarks/out/guided_loop/`` (JSON), so runs split over processes (``--seeds 0-9`` and ``--seeds 10-19``)
are summarised together with ``--summary``.

    python benchmarks/guided_loop.py [--seeds 0-19] [--budgets 30,60] [--workloads sparse_bowl,digits_mlp,gbm_diabetes]
    python benchmarks/guided_loop.py --summary

Workloads: ``sparse_bowl`` (``trellis.examples.synthetic:sparse_bowl``: 9 parameters, 4 without effect, optimum
loss 0), ``digits_mlp`` (``trellis.examples.digits_mlp:train`` on 300 training images for 3 epochs: plain TPE
does not saturate there; validation on the usual 449 images) and ``gbm_diabetes``
(``trellis.examples.gbm_diabetes:train``: scikit-learn's histogram gradient boosting on its bundled diabetes
data, validation R²).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
RECORDS = OUT / "guided_loop"
GUIDED_FIRST = 0.4  # share of the budget the first (broad) search gets
ARMS = ("plain", "continue", "bounds", "prior")

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
    "gbm_diabetes": {
        "trial": "trellis.examples.gbm_diabetes:train",
        "objective": {"metric": "val_r2", "direction": "max"},
        "budget_max": 3,
        "space": {
            "learning_rate": {"type": "float", "low": 0.005, "high": 0.5, "log": True},
            "max_leaf_nodes": {"type": "int", "low": 2, "high": 64, "log": True},
            "min_samples_leaf": {"type": "int", "low": 1, "high": 100, "log": True},
            "l2_regularization": {"type": "float", "low": 1e-4, "high": 10.0, "log": True},
            "max_features": {"type": "float", "low": 0.1, "high": 1.0},
            "max_bins": {"type": "int", "low": 8, "high": 255, "log": True},
        },
    },
}


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


def run_plain(workload: str, seed: int, budget: int, uri: str, n_startup: int) -> list[float]:
    from trellis.search.config import parse_config
    from trellis.search.engine.runner import run_search

    config = parse_config(raw_config(workload, f"{workload}-s{seed}-plain", seed, budget, uri, n_startup))
    return trial_values(run_search(config))


def run_relaunches(workload: str, seed: int, budget: int, uri: str, n_startup: int, plain: list[float]) -> dict:
    """The parent (0.4 B trials) and its three relaunches (0.6 B each): curves and what each relaunch was."""
    from trellis.search.analysis.bounds import untrusted_reason
    from trellis.search.analysis.refine import prior_from_verdicts, refined_space
    from trellis.search.analysis.report import analyse
    from trellis.search.config import parse_config
    from trellis.search.control.relaunch import fill_from_space, fill_with_prior, form_from_config
    from trellis.search.engine.runner import run_search
    from trellis.search.engine.warm_start import config_key
    from trellis.tracking.reader import read_runs, spaces_of

    w = WORKLOADS[workload]
    metric, direction = w["objective"]["metric"], w["objective"]["direction"]
    first = round(GUIDED_FIRST * budget)
    parent_config = parse_config(raw_config(workload, f"{workload}-s{seed}-B{budget}", seed, first, uri, n_startup))
    parent = run_search(parent_config)
    parent_values = trial_values(parent)
    # What the search-space page computes from the parent's runs in the store: the verdicts.
    table = read_runs(uri, [parent.experiment_id])
    trials = table.trials[table.trials["search_id"] == parent.search_id]
    report = analyse(table, trials, metric, direction)
    trusted = report.bounds is not None and untrusted_reason(report.bounds) is None
    verdicts = report.verdicts or {}
    base = form_from_config(parent_config.to_dict(), dict(parent.best_params or {}))
    forms = {"continue": base}
    if any(v.action != "keep" for v in verdicts.values()):  # as the control page fills either guidance
        forms["bounds"] = fill_from_space(base, *refined_space(verdicts, report.data, spaces_of(table)))
        forms["prior"] = fill_with_prior(base, *prior_from_verdicts(verdicts, report.data, spaces_of(table)))
    else:
        forms["bounds"] = forms["prior"] = base
    record: dict[str, Any] = {
        "parent_prefix_matches": bool(np.allclose(parent_values, plain[:first], equal_nan=True)),
        "trusted": trusted,
        "r2": report.bounds.r2 if report.bounds is not None else None,
        "verdicts": {n: v.action for n, v in verdicts.items()},
        "prior": forms["prior"].get("prior"),
        "curves": {},
        "duplicates": {},
        "problems": {},
    }
    parent_keys = {config_key(parent_config.space, t.params) for t in parent.trials}
    for arm, form in forms.items():
        config, problems = relaunch_config(parent_config, parent.search_id, form, budget - first, seed, w["trial"])
        if config is None:  # the form's own path refused what it built: a finding, reported, not hidden
            record["problems"][arm] = problems
            record["curves"][arm] = best_so_far(parent_values + [math.nan] * (budget - first), direction)
            continue
        child = run_search(config)
        record["duplicates"][arm] = sum(config_key(parent_config.space, t.params) in parent_keys for t in child.trials)
        record["curves"][arm] = best_so_far(parent_values + trial_values(child), direction)
    return record


def relaunch_config(parent_config: Any, parent_id: str, form: dict, trials: int, seed: int, trial: str):
    from trellis.search.control.policy import ServerPolicy
    from trellis.search.control.relaunch import config_from_form, validate_launch

    form = {**form, "warm_start": True, "workers": 1, "termination": {**form["termination"], "max_trials": trials}}
    raw, form_problems = config_from_form(parent_config.to_dict(), form, parent_id, seed + 10_000)
    policy = ServerPolicy(extra_trials=frozenset({trial}))  # the operator's --allow-trial
    return validate_launch(raw, form_problems, policy, trial)


# -- summary ----------------------------------------------------------------------------------------
def reach_trial(curve: list[float], target: float, direction: str) -> int | None:
    """The first trial (1-based) whose best so far is at least as good as ``target``; None: never."""
    for i, v in enumerate(curve):
        if math.isfinite(v) and (v >= target if direction == "max" else v <= target):
            return i + 1
    return None


def med_iqr(values: list[float], digits: int = 4) -> str:
    a = np.asarray(values, dtype=float)
    q1, med, q3 = np.nanquantile(a, [0.25, 0.5, 0.75])
    return f"{med:.{digits}g} ({q1:.{digits}g}..{q3:.{digits}g})"


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test on the paired seeds (ties left out)."""
    from scipy.stats import binomtest

    n = wins + losses
    return 1.0 if n == 0 else float(binomtest(wins, n, 0.5).pvalue)


def load_records(workload: str, budget: int) -> list[dict]:
    files = sorted(RECORDS.glob(f"{workload}_B{budget}_s*.json"), key=lambda f: int(f.stem.rsplit("_s", 1)[1]))
    return [json.loads(f.read_text()) for f in files]


def summarise(workload: str, budget: int, records: list[dict]) -> list[str]:
    """The table's lines for one workload and B (also returned, for the README)."""
    w = WORKLOADS[workload]
    metric, direction = w["objective"]["metric"], w["objective"]["direction"]
    n, first, target = len(records), round(GUIDED_FIRST * budget), round(0.6 * budget)
    plain_final = [r["curves"]["plain"][-1] for r in records]
    lines = [
        f"{workload}, B = {budget} ({metric}, {direction}; {n} seeds; relaunch after {first} trials; target: reach"
        f" plain TPE's final best by trial {target})",
        f"  {'arm':<9} {'trials to plain final: median (IQR)':<36} {'met':>6}  {'final best: median (IQR)':<30}"
        f" {'W/T/L vs plain':<15} {'sign p':>7}",
    ]
    better = (lambda a, b: a > b) if direction == "max" else (lambda a, b: a < b)
    for arm in ARMS:
        curves = [r["curves"][arm] for r in records]
        reach = [reach_trial(c, p, direction) for c, p in zip(curves, plain_final)]
        reach_n = [budget + 1 if r is None else r for r in reach]
        met = sum(r is not None and r <= target for r in reach)
        finals = [c[-1] for c in curves]
        wins = sum(better(f, p) for f, p in zip(finals, plain_final))
        losses = sum(better(p, f) for f, p in zip(finals, plain_final))
        ties = n - wins - losses
        verdict = "" if arm == "plain" else f"{wins}/{ties}/{losses}"
        p = "" if arm == "plain" else f"{sign_test(wins, losses):.3f}"
        lines.append(
            f"  {arm:<9} {med_iqr(reach_n, 3):<36} {met:>3}/{n:<2}  {med_iqr(finals):<30} {verdict:<15} {p:>7}"
        )
    prefix = sum(r["parent_prefix_matches"] for r in records)
    trusted = sum(r["trusted"] for r in records)
    dup = {arm: sum(r["duplicates"].get(arm, 0) for r in records) for arm in ARMS[1:]}
    refused = {arm: sum(arm in r["problems"] for r in records) for arm in ARMS[1:]}
    lines.append(
        f"  parents = plain TPE's first {first} trials: {prefix}/{n};"
        f" analysis trusted (enough runs, forest R² >= 0.2): {trusted}/{n};"
        f" relaunch trials repeating a parent configuration: {dup}; refused by validate_launch: {refused}"
    )
    return lines


def plot(workload: str, budget: int, records: list[dict]) -> Path | None:
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
    colours = {"plain": "tab:blue", "continue": "tab:grey", "bounds": "tab:green", "prior": "tab:orange"}
    start = max(1, round(GUIDED_FIRST * budget) - 3)  # from just before the relaunch: where the arms differ
    shown: list[float] = []
    for arm in ARMS:
        a = np.asarray([r["curves"][arm] for r in records], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-NaN columns before a first finite value
            q1, med, q3 = np.nanquantile(a, [0.25, 0.5, 0.75], axis=0)
        ax.plot(x, med, color=colours[arm], label=f"{arm} (median)")
        ax.fill_between(x, q1, q3, color=colours[arm], alpha=0.12, linewidth=0)
        shown += [v for v in (*q1[start - 1 :], *q3[start - 1 :]) if np.isfinite(v) and v > 0]
    ax.axvline(GUIDED_FIRST * budget + 0.5, color="grey", linestyle=":", label="relaunch")
    ax.axvline(0.6 * budget, color="grey", linestyle="--", label="target: 0.6 B")
    if workload == "sparse_bowl":
        ax.set_yscale("log")
    if shown:
        low, high = min(shown), max(shown)
        pad = (high - low) * 0.08 if workload != "sparse_bowl" else 0
        ax.set_ylim(
            low / 1.3 if workload == "sparse_bowl" else low - pad,
            high * 1.3 if workload == "sparse_bowl" else high + pad,
        )
    ax.set_xlim(start, budget)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"best {w['objective']['metric']} so far ({w['objective']['direction']})")
    ax.set_title(f"{workload}, B = {budget}: best so far over {len(records)} seeds (median, IQR band)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"guided_loop_{workload}_B{budget}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-", 1)
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",") if s.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0-19", help="a range (0-19) or a list (0,3,5)")
    parser.add_argument("--budgets", default="30,60", help="B values: trials per arm")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--n-startup", type=int, default=10, help="TPE's random trials before its model (all arms)")
    parser.add_argument("--summary", action="store_true", help="only summarise the records already written")
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    budgets = sorted(int(b) for b in args.budgets.split(",") if b)
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or min(budgets) < 5:
        parser.error(f"unknown workloads {unknown}" if unknown else "need budgets >= 5")
    quiet()
    if not args.summary:
        RECORDS.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(tmp)  # checkpoints land here
            for workload in workloads:
                for seed in seeds_of(args.seeds):
                    run_seed(workload, seed, budgets, f"sqlite:///{Path(tmp) / workload}_s{seed}.db", args.n_startup)
    for workload in workloads:
        for budget in budgets:
            records = load_records(workload, budget)
            if not records:
                continue
            print("\n" + "\n".join(summarise(workload, budget, records)))
            path = plot(workload, budget, records)
            if path:
                print(f"  plot: {path}")
            sys.stdout.flush()


def run_seed(workload: str, seed: int, budgets: list[int], uri: str, n_startup: int) -> None:
    t0 = time.perf_counter()
    direction = WORKLOADS[workload]["objective"]["direction"]
    values = run_plain(workload, seed, max(budgets), uri, n_startup)  # B = 30's plain TPE is B = 60's first 30
    for budget in budgets:
        record = run_relaunches(workload, seed, budget, uri, n_startup, values)
        record["curves"]["plain"] = best_so_far(values[:budget], direction)
        record["seed"] = seed
        (RECORDS / f"{workload}_B{budget}_s{seed}.json").write_text(json.dumps(record, default=str))
        finals = {arm: round(c[-1], 4) for arm, c in record["curves"].items()}
        print(
            f"[{workload} seed {seed} B {budget}] {finals} ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
            flush=True,
        )


def quiet() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401  (it sets up its loggers on import: quiet them after)

    for name in ("alembic", "mlflow", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


if __name__ == "__main__":
    main()
