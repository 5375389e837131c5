"""``trellis analysis list`` and ``trellis analysis show NAME``: every analysis plugin from the command line
(``trellis.search.analysis.registry``), in words or as its plain data (``--json``)."""

from __future__ import annotations

import argparse
import json
import sys

from trellis.cli.arguments import experiment_name, read_experiment
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def cmd_list(args: argparse.Namespace) -> int:
    from trellis.search.analysis.registry import ANALYSES

    for analysis in ANALYSES.values():
        takes = f" (inputs: {', '.join(analysis.inputs)})" if analysis.inputs else ""
        print(f"{analysis.name:<24} {analysis.label}" + (f": {analysis.description}" if analysis.description else "")
              + takes)  # fmt: skip
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from trellis.search.analysis.registry import ANALYSES, run_analysis

    analysis = ANALYSES.get(args.name)
    if analysis is None:
        print(f"error: no analysis {args.name!r} (have: {', '.join(ANALYSES)})", file=sys.stderr)
        return 2
    inputs = {}
    for item in args.input or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --input {item!r}: write it as KEY=VALUE", file=sys.stderr)
            return 2
        inputs[key.strip()] = value.strip()
    unknown = sorted(set(inputs) - set(analysis.inputs))
    if unknown:
        takes = ", ".join(analysis.inputs) or "none"
        print(f"error: --input {unknown[0]}: analysis {analysis.name!r} takes no such input (it takes: {takes})",
              file=sys.stderr)  # fmt: skip
        return 2
    table = read_experiment(args.tracking_uri, args.experiment)
    if table is None:
        return 2
    trials = table.trials
    if args.search:
        trials = trials[trials["search_id"].astype(str).isin(args.search.split(","))]
    data = run_analysis(analysis.name, table, trials, inputs)
    if args.json:
        print(json.dumps({"analysis": analysis.name, "experiment": args.experiment, "data": data}, indent=2))
        return 0
    print(f"{analysis.label} of experiment {args.experiment!r}")
    for line in analysis.lines(data):
        print(f"  {line}")
    return 0


def add_commands(sub) -> None:
    parser = sub.add_parser("analysis", help="run an analysis plugin over an experiment's runs")
    commands = parser.add_subparsers(dest="analysis_command", required=True)
    listed = commands.add_parser("list", help="the analyses this install has")
    listed.set_defaults(func=cmd_list)
    show = commands.add_parser("show", help="one analysis over an experiment, in words (or --json)")
    show.add_argument("name")
    show.add_argument(
        "--experiment", type=experiment_name, required=True, help="experiment name (Trellis' or any other tool's)"
    )
    show.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    show.add_argument("--search", help="only these search ids (comma-separated)")
    show.add_argument("--json", action="store_true", help="the analysis' plain data")
    show.add_argument(
        "--input",
        action="append",
        metavar="KEY=VALUE",
        help="an input the analysis takes (e.g. metric=val_loss; `analysis list` names them)",
    )
    show.set_defaults(func=cmd_show)
