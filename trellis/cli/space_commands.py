"""``trellis importance`` and ``trellis bounds``: the search-space analysis for scripts, CI and checks."""

from __future__ import annotations

import argparse
import json
import sys

from trellis.cli.arguments import budget_argument, experiment_name, fraction, non_negative_int, store_ok, trees
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def _load(args: argparse.Namespace):
    from mlflow import MlflowClient

    from trellis.search.analysis.budgets import at_budget, budget_choice
    from trellis.search.analysis.design import prepare
    from trellis.search.analysis.objective import metric_direction
    from trellis.tracking.histories import read_histories
    from trellis.tracking.reader import read_runs
    from trellis.tracking.sql import experiment_ids_by_name
    from trellis.tracking.uris import is_database_uri

    if not store_ok(args.tracking_uri, must_exist=True):
        raise SystemExit(2)
    if is_database_uri(args.tracking_uri):
        experiments = experiment_ids_by_name(args.tracking_uri)
    else:
        experiments = {
            e.name: e.experiment_id for e in MlflowClient(tracking_uri=args.tracking_uri).search_experiments()
        }
    if args.experiment not in experiments:
        names = ", ".join(experiments)
        raise SystemExit(f"error: no experiment {args.experiment!r} at {args.tracking_uri} (have: {names})")
    table = read_runs(args.tracking_uri, [experiments[args.experiment]])
    trials = table.trials
    if args.search:
        wanted = [s for s in args.search.split(",") if s]
        unknown = [s for s in wanted if s not in set(trials["search_id"].astype(str))]
        if unknown or not wanted:
            raise SystemExit(f"error: no search {(unknown or [args.search])[0]!r} in experiment {args.experiment!r}")
        trials = trials[trials["search_id"].isin(wanted)]
    direction = args.direction or metric_direction(trials, args.metric)
    choice = budget_choice(trials, args.metric, None if args.budget == "all" else args.budget)
    history = read_histories(args.tracking_uri, list(choice.beyond), [args.metric]) if choice.beyond else None
    trials, budget_notes = at_budget(trials, args.metric, choice, history)
    params = args.params.split(",") if args.params else None
    try:
        data = prepare(table, trials, args.metric, direction, params, args.best_quantile)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    if not data.axes:
        raise SystemExit("error: no parameter varies across these runs")
    data.notes.update(budget_notes)
    return table, data, trials


def cmd_importance(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from trellis.search.analysis.bounds import runs_needed
    from trellis.search.analysis.factorial import factorial_importance, levels_of
    from trellis.search.analysis.fanova import FastFANOVA
    from trellis.search.analysis.report import active_masks, sampled

    if args.engine == "fanova":
        from trellis.extras import require

        require("--engine fanova", "fanova")  # said before the store is read
    table, data, trials = _load(args)
    if args.engine == "fanova":
        return _reference_importance(args, data)
    codes = levels_of(data)
    if codes is None:  # the forests' sample, as the search-space page takes it (the note says how many are out)
        data = sampled(data, args.max_runs, args.seed)
    if codes is not None:  # a balanced grid: the exact ANOVA, as the search-space page shows it
        imp = factorial_importance(data, codes)
        if not args.pairs:
            imp = replace(imp, pair_mean={}, pair_std={})
        data.notes["runs of a balanced full-factorial grid, analysed exactly (ANOVA, no forest)"] = len(data.y)
    else:
        active = active_masks(trials, data)
        fan = FastFANOVA(data.X, data.y, data.names, n_trees=args.trees, seed=args.seed, active=active)
        imp = fan.importance(pairs=True)  # as the page: its singles come from the same trees with pairs
        if not args.pairs:
            imp = replace(imp, pair_mean={}, pair_std={})
    if args.json:
        out = {
            "metric": data.metric,
            "direction": data.direction,
            "runs": len(data.y),
            "trees": imp.n_trees_used,
            "exact": codes is not None,
            "singles": {n: {"mean": imp.single_mean[n], "std": imp.single_std[n]} for n in imp.names},
            "pairs": [{"params": list(p), "mean": m, "std": imp.pair_std[p]} for p, m in imp.pair_mean.items()],
            "notes": data.notes,
        }
        print(json.dumps(out, indent=2))
        return 0
    how = "exact ANOVA of a balanced grid" if codes is not None else f"{imp.n_trees_used} trees"
    print(f"fANOVA importance of {data.metric} ({data.direction}) over {len(data.y)} runs, {how}")
    for label, mean, std in imp.ranked():
        print(f"  {label:<40} {mean:7.3f} ± {std:.3f}  {'█' * int(round(mean * 40))}")
    for note, count in data.notes.items():
        print(f"  note: {count} {note}")
    if codes is None and len(data.y) < runs_needed(len(data.names)):
        print(f"  note: too few runs to rank: {len(data.y)} runs (trusted from {runs_needed(len(data.names))})")
    return 0


def _reference_importance(args: argparse.Namespace, data) -> int:
    """The same question answered by the ``fanova`` package (the ``fanova`` extra): slower, no spread."""
    from itertools import combinations

    from trellis.search.analysis.fanova_reference import reference_importance

    pairs = list(combinations(data.names, 2)) if args.pairs else []
    shares = reference_importance(data.X, data.y, data.names, n_trees=args.trees, seed=args.seed, pairs=pairs)
    if args.json:
        singles = {n: {"mean": shares[n]} for n in data.names}
        pair_rows = [{"params": list(p), "mean": shares[p]} for p in pairs]
        out = {"metric": data.metric, "direction": data.direction, "runs": len(data.y), "engine": "fanova"}
        print(json.dumps({**out, "singles": singles, "pairs": pair_rows, "notes": data.notes}, indent=2))
        return 0
    print(f"fANOVA importance of {data.metric} ({data.direction}) over {len(data.y)} runs (the fanova package)")
    for key, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        label = " × ".join(key) if isinstance(key, tuple) else key
        print(f"  {label:<40} {share:7.3f}  {'█' * int(round(share * 40))}")
    return 0


def cmd_bounds(args: argparse.Namespace) -> int:
    """The space page's analysis and its one verdict per parameter (``trellis.search.analysis.verdicts``)."""
    import yaml

    from trellis.search.analysis.refine import prior_from_verdicts, refined_space
    from trellis.search.analysis.report import analyse
    from trellis.tracking.reader import spaces_of

    table, data, trials = _load(args)
    trials = trials[trials["run_id"].isin(data.run_ids)]
    report = analyse(
        table,
        trials,
        data.metric,
        data.direction,
        data.names,
        n_trees=args.trees,
        seed=args.seed,
        marginals=False,
        budget=None,
        max_runs=args.max_runs or 10**12,
    )  # fmt: skip  (the runs are at one budget already)
    bounds, verdicts = report.bounds, report.verdicts or {}
    if bounds is None:
        raise SystemExit(f"error: {report.problem}")
    space, dropped = refined_space(verdicts, report.data, spaces_of(table))
    prior_space, _, prior = prior_from_verdicts(verdicts, report.data, spaces_of(table))
    if args.json:
        out = {
            "metric": data.metric,
            "direction": data.direction,
            "runs": bounds.n_runs,
            "r2": bounds.r2,
            "r2_std": bounds.r2_std,
            "verdicts": {n: v.to_plain() for n, v in verdicts.items()},
            "space": space if any(v.action != "keep" for v in verdicts.values()) else None,
            "dropped": dropped,
            "fix": {n: v.value for n, v in verdicts.items() if v.action == "fix"},
            "prior": {"space": prior_space, "prior": prior},  # a prior-guided relaunch's two sections
            "not_offered": report.problem,
        }
        print(json.dumps(out, indent=2))
        return 0
    r2 = "n/a" if bounds.r2 is None else f"{bounds.r2:.3f} ± {bounds.r2_std:.3f}"
    print(f"# Suggested bounds for {data.metric} ({data.direction}) from {bounds.n_runs} runs.")
    print(f"# Random forest 10-fold cross-validated R^2: {r2} (how far to trust these ranges).")
    for name, verdict in verdicts.items():
        print(f"#   {name:<20} {verdict.headline}")
    if args.prior:  # the control page's default relaunch: the ranges kept (widened), a prior from the verdicts
        print("# A prior-guided relaunch: the ranges kept (widened where a verdict widens), the verdicts as a prior.")
        sys.stdout.write(yaml.safe_dump({"space": prior_space, "prior": prior}, sort_keys=False))
        return 0
    sys.stdout.write("\n".join(report.refined_yaml.splitlines()[1:]) + "\n")  # its header is said above
    return 0


def add_commands(sub) -> None:
    for name, func, helptext in (
        ("importance", cmd_importance, "fANOVA importance of each parameter (and pair) for a metric"),
        ("bounds", cmd_bounds, "random-forest suggested bounds, printed as a search-config space"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
        p.add_argument(
            "--experiment", type=experiment_name, required=True, help="experiment name (Trellis' or any other tool's)"
        )
        p.add_argument("--metric", required=True)
        p.add_argument("--direction", choices=["max", "min"], help="default: what the search recorded, else a guess")
        p.add_argument("--search", help="only these search ids (comma-separated)")
        p.add_argument("--params", help="only these parameters (comma-separated)")
        p.add_argument("--best-quantile", type=fraction, help="only the best fraction of runs, e.g. 0.25")
        p.add_argument("--trees", type=trees, default=64)  # the space page's own
        p.add_argument("--seed", type=non_negative_int, default=0)
        p.add_argument(
            "--budget",
            type=budget_argument,
            default="auto",
            help="compare runs at this budget (epochs, steps): auto (the largest enough runs reached, as the "
            "search-space page does), a number, or all (every run as it ended)",
        )
        p.add_argument("--json", action="store_true")
        p.add_argument(
            "--max-runs",
            type=non_negative_int,
            default=4000,
            help="fit the forests on a seeded sample of this many runs, as the search-space page does (0: all)",
        )
        if name == "bounds":
            p.add_argument(
                "--prior",
                action="store_true",
                help="print a prior-guided relaunch's space and prior: sections instead of hard bounds",
            )
        if name == "importance":
            p.add_argument("--pairs", action="store_true", help="also every pair of parameters")
            p.add_argument(
                "--engine",
                choices=["trellis", "fanova"],
                default="trellis",
                help="trellis (fast, with spread over trees) or the reference fanova package (the 'fanova' extra)",
            )
        p.set_defaults(func=func)
