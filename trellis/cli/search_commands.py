"""``trellis search run|resume|stop|validate``."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from trellis.cli.arguments import experiment_name, positive_int, store_ok
from trellis.search.config import ConfigError, SearchConfig, load_config
from trellis.search.registry import EXECUTORS
from trellis.tracking.retry import StoreUnavailable
from trellis.tracking.schema import SearchState
from trellis.tracking.stores import store_for
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def ui_hint(uri: str) -> str:
    """How to browse a store in the MLflow UI: a command that works as printed (this Python's own mlflow, no
    activated venv needed) for a database store, else the server's URL."""
    return store_for(uri).browse_hint()


def run_config(config: SearchConfig, quiet: bool = False, resume: str | None = None) -> int:
    from tqdm import tqdm

    from trellis.search.engine.resume import ResumeError
    from trellis.search.engine.runner import Progress, SearchRunner
    from trellis.tracking.writer import ExperimentUnusable

    bar = None if quiet else tqdm(total=config.termination.max_trials, desc=config.name, unit="trial", mininterval=0.5)

    def on_progress(p: Progress) -> None:
        if bar is None:
            return
        if bar.total is None and p.limit:
            bar.total = p.limit
        bar.n = p.ended
        best = "-" if p.best_value is None else f"{p.best_value:.4g}"
        bar.set_postfix_str(f"running={p.running} failed={p.failed} best={best}", refresh=False)
        bar.update(0)  # redraws at most every mininterval

    def on_started(search_id: str) -> None:
        uri = config.tracking.uri
        print(f"search {search_id} {'resumed' if resume else 'started'} ({config.name}, {config.algorithm.name})")
        print(f"  stop it from anywhere:  trellis search stop {search_id} --tracking-uri {uri}")
        print(f"  then continue it:       trellis search resume {search_id} --tracking-uri {uri}", flush=True)

    try:
        runner = SearchRunner(config, on_progress=on_progress, resume=resume, on_started=on_started)
        result = runner.run()
    except KeyboardInterrupt:  # Ctrl-C while the store opens, or a second one while cleaning up
        print("\ninterrupted", file=sys.stderr)
        return 130
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ResumeError, ConfigError, ExperimentUnusable) as exc:  # ConfigError: what only this machine can tell
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    return print_result(config, result)


def print_result(config: SearchConfig, result) -> int:
    """How a search ended, in a few lines; the exit code it means."""
    p = result.progress
    print(
        f"search {result.search_id} {result.state} ({result.stop_reason}): {p.completed} completed, "
        f"{p.failed} failed, {p.killed} killed"
    )
    if p.best_value is not None:
        print(f"best {config.objective.metric} = {p.best_value:.6g} (trial {p.best_trial}): {result.best_params}")
    print(f"MLflow: {result.tracking_uri}  experiment {config.tracking.experiment!r} (id {result.experiment_id})")
    print(f"  browse: {ui_hint(result.tracking_uri)}")
    if result.state == SearchState.KILLED:
        print(f"  continue it: trellis search resume {result.search_id} --tracking-uri {result.tracking_uri}")
        return 130
    if (p.failed or p.killed) and not p.completed:  # all failed, or all timed out: the search did not do its work
        how = (
            "failed"
            if not p.killed
            else "was killed (timeout_s, max_time_s)"
            if not p.failed
            else "failed or was killed"
        )
        print(f"error: every trial {how}; the first lines of their errors are in MLflow (tag trellis.error)")
        return 1
    if p.failed > p.completed:
        print(f"error: most trials failed ({p.failed} of {p.started}); their errors are in MLflow (tag trellis.error)")
        return 1
    return 0


def load_for_run(path: str, overrides: dict) -> SearchConfig | None:
    """The config a run or a submit starts from, its store usable; None after printing why not."""
    try:
        config = load_config(path, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return config if store_ok(config.tracking.uri, must_exist=False) else None


def cmd_search_run(args: argparse.Namespace) -> int:
    overrides = {}
    if args.tracking_uri:
        overrides["tracking.uri"] = args.tracking_uri
    if args.experiment:
        overrides["tracking.experiment"] = args.experiment
    if args.workers:
        overrides["executor.workers"] = args.workers
    if args.max_trials:
        overrides["termination.max_trials"] = args.max_trials
    config = load_for_run(args.config, overrides)
    if config is None:
        return 2
    cpus = os.cpu_count() or 1
    if "remote" not in EXECUTORS[config.executor.kind].provides and config.executor.workers > cpus:
        print(f"warning: {config.executor.workers} local workers on {cpus} CPUs: trials will compete for them")
    return run_config(config, quiet=args.quiet)


def _named_search(args: argparse.Namespace, action) -> tuple[str, object] | None:
    """Open the store (it must exist), resolve the id or prefix, run ``action(client, id)``; None after
    printing one line when any of it fails."""
    from mlflow import MlflowClient

    from trellis.search.engine.resume import ResumeError, resolve_search_id

    if not store_ok(args.tracking_uri, must_exist=True):
        return None
    try:
        client = MlflowClient(tracking_uri=args.tracking_uri)
        search_id = resolve_search_id(client, args.search_id)
        return search_id, action(client, search_id)
    except ResumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_search_resume(args: argparse.Namespace) -> int:
    from trellis.search.engine.resume import recorded_config

    found = _named_search(args, recorded_config)
    if found is None:
        return 2
    search_id, config = found
    config = replace(config, tracking=replace(config.tracking, uri=args.tracking_uri))
    if args.workers:
        config = replace(config, executor=replace(config.executor, workers=args.workers))
    return run_config(config, quiet=args.quiet, resume=search_id)


def cmd_search_stop(args: argparse.Namespace) -> int:
    from trellis.search.control.queue import cancel_or_stop

    found = _named_search(args, cancel_or_stop)
    if found is None:
        return 2
    if found[1] == "cancelled":
        print(f"cancelled search {found[0]}: it was still waiting for an agent")
    else:
        print(f"asked search {found[0]} to stop: its runner ends the running trials within a few seconds")
    return 0


def cmd_search_validate(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: ok ({config.algorithm.name}, {len(config.space)} parameters)")
    return 0


def add_commands(sub):
    """The ``search`` commands; returns their subparsers, for the commands other modules add."""
    search = sub.add_parser("search", help="run and manage searches").add_subparsers(dest="action", required=True)
    run = search.add_parser("run", help="run the search a config file describes")
    run.add_argument("config", help="YAML or JSON search config")
    run.add_argument("--tracking-uri", help="override tracking.uri")
    run.add_argument("--experiment", type=experiment_name, help="override tracking.experiment")
    run.add_argument("--workers", type=positive_int, help="override executor.workers")
    run.add_argument("--max-trials", type=positive_int, help="override termination.max_trials")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_search_run)
    default_uri = os.environ.get("TRELLIS_TRACKING_URI", DEFAULT_TRACKING_URI)
    resume = search.add_parser("resume", help="continue an interrupted search without rerunning finished trials")
    resume.add_argument("search_id", help="the search (parent) run id")
    resume.add_argument("--tracking-uri", default=default_uri)
    resume.add_argument("--workers", type=positive_int, help="override executor.workers")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    resume.set_defaults(func=cmd_search_resume)
    stop = search.add_parser("stop", help="ask a running search to stop cleanly (it stays resumable)")
    stop.add_argument("search_id", help="the search (parent) run id")
    stop.add_argument("--tracking-uri", default=default_uri)
    stop.set_defaults(func=cmd_search_stop)
    validate = search.add_parser("validate", help="check a config file without running anything")
    validate.add_argument("config")
    validate.set_defaults(func=cmd_search_validate)
    return search
