"""``trellis demo`` and ``trellis serve``: the only part of the engine's package that imports ``app``."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from trellis.cli.arguments import positive_int, store_ok
from trellis.cli.search_commands import run_config, ui_hint
from trellis.search.config import load_config
from trellis.search.registry import ALGORITHMS
from trellis.tracking.uris import DEFAULT_TRACKING_URI

EXAMPLES = Path(importlib.util.find_spec("trellis.examples").origin).parent / "configs"  # shipped in the package
DEMO_CONFIGS = (
    "digits_mlp_random.yaml",
    "digits_mlp_tpe.yaml",
    "digits_mlp_bohb.yaml",
    "digits_mlp_pbt.yaml",
    "arch_digits.yaml",  # the model overview's architectures: about 20 small CNNs
)


def cmd_demo(args: argparse.Namespace) -> int:
    """Small real searches into the local store (the digits MLP by random, TPE, BOHB and PBT; about 20 small
    CNNs for the model overview), and the app.

    The app opens at once: the searches are launched for the agent that ``serve`` starts beside it, and fill
    in live. ``--no-serve`` runs them here instead, one after the other, and returns."""
    if not store_ok(args.tracking_uri, must_exist=False):
        return 2
    if not (args.rerun or _store_is_empty(args.tracking_uri)):
        print(f"{args.tracking_uri} already has runs: serving them (--rerun launches the demo searches again)")
    elif args.no_serve:
        return _run_demo_searches(args)
    else:
        _launch_demo_searches(args)
    if args.no_serve:
        return 0
    return cmd_serve(args)


def _demo_configs(args: argparse.Namespace):
    for name in DEMO_CONFIGS:
        config = load_config(EXAMPLES / name, {"tracking.uri": args.tracking_uri})
        if args.max_trials and not ALGORITHMS[config.algorithm.name].self_ending:  # BOHB and PBT size themselves
            config = replace(config, termination=replace(config.termination, max_trials=args.max_trials))
        yield config


def _run_demo_searches(args: argparse.Namespace) -> int:
    for config in _demo_configs(args):
        size = config.termination.max_trials or "its own number of"
        print(f"==> {config.name}: {config.algorithm.name} search, {size} trials")
        code = run_config(config, quiet=args.quiet)
        if code:
            return code
    print(f"\nDone. The same runs in the MLflow UI: {ui_hint(args.tracking_uri)}")
    return 0


def _launch_demo_searches(args: argparse.Namespace) -> None:
    from trellis.search.control.queue import submit_search

    for config in _demo_configs(args):
        submit_search(config, launched_by="demo")
    print(f"==> launched {len(DEMO_CONFIGS)} demo searches: the agent beside the app runs them, the pages fill in")


def cmd_serve(args: argparse.Namespace) -> int:
    from trellis.app.auth.create import authenticator_from_env
    from trellis.app.factory import create_app
    from trellis.app.health import fail_fast_over_http

    if not store_ok(args.tracking_uri, must_exist=True):
        return 2
    try:
        auth = authenticator_from_env(os.environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(
        args.tracking_uri,
        mlflow_ui_url=args.mlflow_ui_url,
        cache=args.cache,
        auth=auth,
    )
    agent = None if args.no_agent else _start_agent(args.tracking_uri)
    fail_fast_over_http(os.environ)  # after the agent started: its searches keep MLflow's own retries
    print(f"Trellis on http://{args.host}:{args.port}  (MLflow store: {args.tracking_uri})", flush=True)
    signal.signal(signal.SIGTERM, _interrupted)  # a SIGTERM stops the agent's searches cleanly, as Ctrl-C does
    try:
        app.run(host=args.host, port=args.port, debug=False)
    finally:
        if agent is not None:
            agent.terminate()  # it ends its searches as a stop would: resumable from the app
            agent.wait(60)
    return 0


def _start_agent(tracking_uri: str):
    """``trellis agent`` beside the app, in its own process (the web server never runs a search)."""
    import subprocess

    from trellis.search.trial import die_with_parent

    cmd = [sys.executable, "-P", "-m", "trellis.cli", "agent", "--tracking-uri", tracking_uri]
    # If serve dies without its cleanup, the agent gets SIGTERM: it still ends its searches as a stop would.
    return subprocess.Popen(cmd, preexec_fn=lambda: die_with_parent(signal.SIGTERM))  # noqa: PLW1509


def _interrupted(_signum, _frame):
    raise KeyboardInterrupt


def _store_is_empty(uri: str) -> bool:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exps = client.search_experiments()
    return not any(client.search_runs([e.experiment_id], max_results=1) for e in exps)


def _add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument(
        "--mlflow-ui-url",
        default=os.environ.get("TRELLIS_MLFLOW_UI", "http://127.0.0.1:5000"),
        help="base URL of the MLflow UI, for links to runs",
    )
    parser.add_argument("--cache", default=".trellis/cache", help="run cache folder, or redis://host:port/db")
    parser.add_argument("--no-agent", action="store_true", help="do not start an agent beside the app")


def add_commands(sub) -> None:
    demo = sub.add_parser("demo", help="run four small real searches into the local store (if empty), then serve")
    demo.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    demo.add_argument("--max-trials", type=positive_int, help="trials per search (default: the configs')")
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--no-serve", action="store_true", help="only run the searches, here, then return")
    demo.add_argument("--rerun", action="store_true", help="run the searches even if the store has runs")
    _add_serve_args(demo)
    demo.set_defaults(func=cmd_demo)
    serve = sub.add_parser("serve", help="serve the app over an MLflow store")
    serve.add_argument("--tracking-uri", default=os.environ.get("TRELLIS_TRACKING_URI", DEFAULT_TRACKING_URI))
    _add_serve_args(serve)
    serve.set_defaults(func=cmd_serve)
