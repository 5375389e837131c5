"""``trellis pareto``: the non-dominated trials of an experiment (or one search) and their hypervolume.

The objectives are those the search recorded (``trellis.objectives``), or ``--objectives
val_accuracy:max,latency_ms:min`` for runs of any tool. The reference point is chosen from the data and said,
or given with ``--reference``.
"""

from __future__ import annotations

import argparse
import json
import sys

from trellis.cli.arguments import experiment_name, read_experiment
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def parse_objectives(text: str) -> list[tuple[str, str]]:
    out = []
    for item in text.split(","):
        metric, _, direction = item.strip().rpartition(":")
        if not metric or direction not in ("max", "min"):
            raise argparse.ArgumentTypeError(f"write each objective as metric:max or metric:min, got {item!r}")
        out.append((metric, direction))
    if len(out) < 2:
        raise argparse.ArgumentTypeError("a trade-off needs at least two objectives")
    metrics = [m for m, _ in out]
    if len(set(metrics)) < len(metrics):
        raise argparse.ArgumentTypeError(f"each metric once, got {text!r}")
    return out


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of numbers, got {text!r}") from None


def cmd_pareto(args: argparse.Namespace) -> int:
    """The ``pareto`` analysis (``trellis.search.analysis.pareto_analysis``), as the Analyses page shows it."""
    from trellis.search.analysis.pareto_analysis import process

    table = read_experiment(args.tracking_uri, args.experiment)
    if table is None:
        return 2
    trials = table.trials
    if args.search:
        trials = trials[trials["search_id"].astype(str) == args.search]
        if trials.empty:
            print(f"error: no trials of search {args.search!r} in experiment {args.experiment!r}", file=sys.stderr)
            return 2
    objectives = ",".join(f"{m}:{d}" for m, d in args.objectives) if args.objectives else None
    reference = ",".join(repr(v) for v in args.reference) if args.reference is not None else None
    data = process(table, trials, objectives, reference)
    if data.get("problem"):
        have = ", ".join(table.metrics) or "none"
        print(f"error: {data['problem']} (metrics here: {have})", file=sys.stderr)
        return 2
    names = [(o["metric"], o["direction"]) for o in data["objectives"]]
    if args.json:
        keys = ("objectives", "pareto", "hypervolume", "reference", "reference_chosen", "trials", "importance")
        print(json.dumps({k: data[k] for k in keys}, indent=2))
        return 0
    shown = ", ".join(f"{m} ({d})" for m, d in names)
    print(f"{len(data['pareto'])} non-dominated of {data['trials']} finished trials: {shown}")
    for item in data["pareto"]:
        print(f"  {item['run_id']}  " + "  ".join(f"{m}={v:.6g}" for (m, _), v in zip(names, item["values"])))
    point = ", ".join(f"{v:.6g}" for v in data["reference"])
    print(f"hypervolume {data['hypervolume']:.6g} against reference [{point}] ({data['reference_chosen']})")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("pareto", help="the non-dominated trials of several objectives, and their hypervolume")
    p.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    p.add_argument("--experiment", type=experiment_name, required=True)
    p.add_argument("--search", help="only this search's trials (its id)")
    p.add_argument("--objectives", type=parse_objectives, help="metric:max,metric:min (default: the recorded ones)")
    p.add_argument("--reference", type=_numbers, help="the hypervolume's reference point, one value per objective")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pareto)
