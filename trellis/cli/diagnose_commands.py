"""``trellis diagnose``: what to change in each search of an experiment, with the evidence and the fix."""

from __future__ import annotations

import argparse
import json
import sys

from trellis.cli.arguments import experiment_name, read_experiment
from trellis.tracking.uris import DEFAULT_TRACKING_URI

MAX_RUNS_SHOWN = 5  # run ids printed per finding in the text output (--json has them all)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_diagnose(args: argparse.Namespace) -> int:
    from trellis.search.analysis.diagnosis import diagnose, facts_of, history_request, not_applicable
    from trellis.tracking.histories import read_histories

    table = read_experiment(args.tracking_uri, args.experiment)
    if table is None:
        return 2
    trials = table.trials
    if args.search:
        wanted = [s for s in args.search.split(",") if s]
        known = set(table.runs["search_id"].astype(str))
        unknown = [s for s in wanted if s not in known]
        if unknown:
            return _fail(f"no search {unknown[0]!r} in experiment {args.experiment!r}")
        trials = trials[trials["search_id"].isin(wanted)]
    labels = _labels(table.runs)
    run_ids, keys = history_request(table, trials)
    history = read_histories(args.tracking_uri, run_ids, keys, max_points=100_000) if run_ids else None
    if args.metric and args.metric not in table.metrics:
        return _fail(f"no metric {args.metric!r} in these runs (have: {', '.join(table.metrics) or 'none'})")
    searches = facts_of(table, trials, labels, metric=args.metric)
    findings = diagnose(table, trials, labels, history, metric=args.metric)
    if args.json:
        out = {
            "experiment": args.experiment,
            "searches": [
                {
                    "search_id": f.search_id,
                    "label": f.label,
                    "algorithm": f.algorithm,
                    "objective": {"metric": f.metric, "direction": f.direction},
                    "trials": len(f.trials),
                    "not_applicable": not_applicable(f),
                    "findings": [x.to_dict() for x in findings if x.search_id == f.search_id],
                }
                for f in searches
            ],
        }
        print(json.dumps(out, indent=2))
        return 0
    if not searches:
        print(f"No runs with a metric to judge them by in experiment {args.experiment!r}: nothing to diagnose.")
        return 0
    for facts in searches:
        mine = [x for x in findings if x.search_id == facts.search_id]
        kind = "runs of another tool" if facts.foreign else facts.algorithm
        print(f"search {facts.label} ({kind}, {len(facts.trials)} trials, id {facts.search_id})")
        print(f"  objective: {facts.metric} ({facts.direction})")
        skipped = not_applicable(facts)
        if skipped:
            print(f"  not applicable without Trellis' lineage: {', '.join(skipped)}")
        if not mine:
            print("  no findings: nothing to change that the rules can see\n")
            continue
        for x in mine:
            print(f"  [{x.severity}] {x.title}")
            print(f"    evidence: {x.evidence}")
            print(f"    fix: {x.fix}")
            if x.config_change:
                print("    config: " + ", ".join(f"{k}: {json.dumps(v)}" for k, v in x.config_change.items()))
            if x.run_ids:
                more = f" (+{len(x.run_ids) - MAX_RUNS_SHOWN} more)" if len(x.run_ids) > MAX_RUNS_SHOWN else ""
                print(f"    runs: {', '.join(x.run_ids[:MAX_RUNS_SHOWN])}{more}")
        print()
    return 0


def _labels(runs) -> dict[str, str]:
    """``name · short id`` per search run (its Trellis name, else its run name)."""
    parents = runs[runs["kind"] == "search"]
    out = {}
    for run_id, name, run_name in zip(parents["run_id"], parents["search_name"], parents["run_name"], strict=True):
        out[str(run_id)] = f"{name or run_name or str(run_id)[:8]} · {str(run_id)[:6]}"
    return out


def add_commands(sub) -> None:
    p = sub.add_parser("diagnose", help="what to change in each search of an experiment: evidence and fix")
    p.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    p.add_argument("--experiment", type=experiment_name, required=True, help="experiment name")
    p.add_argument("--search", help="only these search ids (comma-separated)")
    p.add_argument("--metric", help="the objective of other tools' runs (default: the one their runs suggest)")
    p.add_argument("--json", action="store_true", help="machine-readable: findings with their config changes")
    p.set_defaults(func=cmd_diagnose)
