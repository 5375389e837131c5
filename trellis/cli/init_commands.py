"""``trellis init --trial module:function`` (or ``--script path.py``): a working config from the trial itself.

A dry run records what the trial reads and reports (``trellis.search.engine.scaffold``); with a terminal attached each
proposed range is shown for confirming or editing, otherwise the flags decide. The file written is validated
as ``trellis search validate`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from trellis.cli.arguments import positive_int
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def _sample(path: str | None) -> dict[str, Any] | None:
    """A script's JSON config sample: its ``params`` (or the whole mapping when it has none)."""
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: --sample {path}: {exc}", file=sys.stderr)
        return None
    if not isinstance(raw, dict):
        print(f"error: --sample {path}: must be a JSON object", file=sys.stderr)
        return None
    params = raw.get("params", raw)
    return params if isinstance(params, dict) else {}


def _ask(prompt: str) -> str:
    try:
        return input(prompt)
    except EOFError:
        return ""


def _edit_interactively(s) -> None:
    """Show each proposal; Enter keeps it, anything else replaces it (``scaffold.parse_answer``)."""
    from trellis.search.engine.scaffold import LOSS_LIKE, parse_answer

    print("Each parameter's proposed range: Enter keeps it; or LOW HIGH [log], a,b,c, 'fixed VALUE', '-' to drop.")
    for name in list(s.space):
        while True:
            shown = json.dumps(s.space[name])
            try:
                answer = parse_answer(_ask(f"  {name} {shown}: "), s.space[name])
            except ValueError as exc:
                print(f"    {exc}")
                continue
            if answer is None:
                del s.space[name]
            else:
                s.space[name] = answer
            break
    metric = _ask(f"objective metric [{s.objective[0]}]: ").strip() or s.objective[0]
    default_way = s.objective[1] if metric == s.objective[0] else ("min" if LOSS_LIKE.search(metric.lower()) else "max")
    way = _ask(f"direction (max/min) [{default_way}]: ").strip() or default_way
    s.record = [m for m in (s.objective[0], *s.record) if m != metric]
    s.objective = (metric, way if way in ("max", "min") else default_way)


def config_yaml(config: dict[str, Any]) -> str:
    """The config as YAML, one line per parameter (``lr: {type: float, low: 0.0001, high: 0.01, log: true}``)."""
    import yaml

    parts = []
    for key, value in config.items():
        if key != "space":
            flow = None if isinstance(value, dict | list) else False  # a bare value: `name: x`, not `{name: x}`
            parts.append(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=flow, width=110))
            continue
        lines = [
            yaml.safe_dump({name: spec}, sort_keys=False, default_flow_style=True, width=10_000).strip()[1:-1]
            for name, spec in value.items()
        ]
        parts.append("space:\n" + "".join(f"  {line}\n" for line in lines))
    return "".join(parts)


def cmd_init(args: argparse.Namespace) -> int:
    from trellis.search.config import ConfigError, load_config
    from trellis.search.engine.scaffold import ParamFound, ScaffoldError, config_for, run_probe, scaffold

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"error: {out} exists (--force to overwrite it, or --out another file)", file=sys.stderr)
        return 2
    if args.trial and (args.trial.count(":") != 1 or not all(args.trial.split(":"))):
        print(
            f"error: --trial {args.trial!r}: give it as module:function (examples.synthetic:quadratic)", file=sys.stderr
        )
        return 2
    if args.script and not Path(args.script).is_file():
        print(f"error: --script {args.script}: no such file", file=sys.stderr)
        return 2
    sample = _sample(args.sample)
    if sample is None:
        return 2
    print("dry run of the trial (one budget unit) to see what it reads and reports...", file=sys.stderr)
    try:
        probe = run_probe(function=args.trial, script=args.script, sample=sample, workdir=os.getcwd())
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if probe.error and not probe.params:
        print(f"error: the dry run failed before reading any parameter: {probe.error}", file=sys.stderr)
        return 1
    if probe.error:
        print(f"warning: the dry run failed ({probe.error}); the config holds what it saw until then", file=sys.stderr)
    if args.trial:
        trial = {"function": args.trial}
        name = args.name or args.trial.replace(":", "-").split(".")[-1].replace("_", "-")
    else:
        script = Path(args.script).resolve()
        relative = os.path.relpath(script, out.resolve().parent)  # a config's script is relative to the config
        trial = {"script": str(script) if relative.startswith("..") else relative}
        name = args.name or script.stem.replace("_", "-")
    seen = {p.name for p in probe.params}
    extra = [ParamFound(k, v) for k, v in (sample or {}).items() if k not in seen]  # a sample's keys all count
    found = scaffold(replace(probe, params=probe.params + extra), name, trial, args.objective, args.direction)
    if sys.stdin.isatty() and not args.no_input:
        _edit_interactively(found)
    if not found.space:
        print("error: the trial read no parameter with a usable default: nothing to search", file=sys.stderr)
        return 1
    config = config_for(found, args.budget, args.max_trials, args.workers, args.tracking_uri)
    skipped = f"\n# read but left out (no default to start from): {', '.join(found.skipped)}" if found.skipped else ""
    header = (
        f"# Written by `trellis init` from a dry run of {args.trial or args.script}: the parameters it reads, their\n"
        f"# defaults turned into ranges, and the metrics it reports ({', '.join(probe.metrics) or 'none seen'})."
        f"{skipped}\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + config_yaml(config))
    try:
        load_config(out)
    except ConfigError as exc:
        print(f"error: {out} was written but does not validate yet; edit it:\n{exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {out}: {len(found.space)} parameters ({', '.join(found.space)}), objective {found.objective[0]} "
        f"({found.objective[1]}){', record ' + ', '.join(found.record) if found.record else ''}"
    )
    print(f"  check it: trellis search validate {out}")
    print(f"  run it:   trellis search run {out}")
    return 0


def add_commands(sub) -> None:
    init = sub.add_parser("init", help="write a search config from a dry run of a trial")
    what = init.add_mutually_exclusive_group(required=True)
    what.add_argument("--trial", help="a function trial, module:function")
    what.add_argument("--script", help="a script trial (python SCRIPT CONFIG.json)")
    init.add_argument("--sample", help="a script's JSON config sample: its params are the defaults")
    init.add_argument("--out", default="search.yaml", help="the config file to write (default search.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite --out")
    init.add_argument("--name", help="search name (default: from the trial)")
    init.add_argument("--objective", help="objective metric (default: the first val_* metric it reports)")
    init.add_argument("--direction", choices=["max", "min"], help="default: min for losses, errors, times")
    init.add_argument("--budget", type=positive_int, default=10, help="budget.max, epochs (default 10)")
    init.add_argument("--max-trials", type=positive_int, default=20, help="termination.max_trials (default 20)")
    init.add_argument("--workers", type=positive_int, default=2, help="executor.workers (default 2)")
    init.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="tracking.uri")
    init.add_argument("--no-input", action="store_true", help="never ask, even with a terminal attached")
    init.set_defaults(func=cmd_init)
