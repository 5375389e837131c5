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
    return out


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of numbers, got {text!r}") from None


def cmd_pareto(args: argparse.Namespace) -> int:
    import numpy as np

    from trellis.search.analysis.pareto_analysis import objectives_of
    from trellis.search.pareto import as_losses, hypervolume, pareto_front, reference_point

    table = read_experiment(args.tracking_uri, args.experiment)
    if table is None:
        return 2
    trials, runs = table.trials, table.runs
    if args.search:
        trials = trials[trials["search_id"].astype(str) == args.search]
        runs = runs[runs["run_id"].astype(str) == args.search]
        if trials.empty:
            print(f"error: no trials of search {args.search!r} in experiment {args.experiment!r}", file=sys.stderr)
            return 2
    objectives = args.objectives or objectives_of(runs, trials)
    if not objectives:
        have = ", ".join(table.metrics) or "none"
        print(f"error: no recorded objectives: give --objectives metric:max,metric:min (metrics: {have})",
              file=sys.stderr)  # fmt: skip
        return 2
    missing = [m for m, _ in objectives if f"metrics.{m}" not in trials]
    if missing:
        print(f"error: no metric {missing[0]!r} in these runs (have: {', '.join(table.metrics)})", file=sys.stderr)
        return 2
    directions = [d for _, d in objectives]
    finished = trials[trials["status"] == "FINISHED"] if "status" in trials else trials
    values = finished[[f"metrics.{m}" for m, _ in objectives]].to_numpy(dtype=float)
    usable = np.all(np.isfinite(values), axis=1)
    if not usable.any():
        print("error: no finished trial has a finite value for every objective", file=sys.stderr)
        return 2
    values, ids = values[usable], finished["run_id"].astype(str).to_numpy()[usable]
    if args.reference is not None:
        if len(args.reference) != len(objectives):
            print(f"error: --reference: one value per objective ({len(objectives)})", file=sys.stderr)
            return 2
        reference, how = np.array(args.reference, dtype=float), "given with --reference"
    else:
        reference, how = reference_point(values, directions)
    front = pareto_front(values, directions)
    order = np.lexsort(as_losses(values[front], directions).T[::-1])  # best first on the first objective
    pareto = [{"run_id": str(r), "values": [float(v) for v in row]}
              for r, row in zip(ids[front][order], values[front][order], strict=True)]  # fmt: skip
    hv = hypervolume(values, directions, reference)
    if args.json:
        out = {
            "objectives": [{"metric": m, "direction": d} for m, d in objectives],
            "pareto": pareto,
            "hypervolume": hv,
            "reference": [float(v) for v in reference],
            "reference_chosen": how,
            "trials": int(len(values)),
        }
        print(json.dumps(out, indent=2))
        return 0
    names = ", ".join(f"{m} ({d})" for m, d in objectives)
    print(f"{len(pareto)} non-dominated of {len(values)} finished trials: {names}")
    for item in pareto:
        print(f"  {item['run_id']}  " + "  ".join(f"{m}={v:.6g}" for (m, _), v in zip(objectives, item["values"])))
    print(f"hypervolume {hv:.6g} against reference [{', '.join(f'{v:.6g}' for v in reference)}] ({how})")
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
