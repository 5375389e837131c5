"""``trellis demo`` and ``trellis serve``: the only part of the engine's package that imports ``app``."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from trellis.cli.agent_keeper import AgentKeeper
from trellis.cli.arguments import cache_spec, port, positive_int, store_ok
from trellis.cli.search_commands import run_config, ui_hint
from trellis.extras import require
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
    for extra in ("torch", "bohb"):  # the demo trains torch models and runs a BOHB search
        require("trellis demo", extra)
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
    from trellis.app.health import fail_fast_over_http

    if not store_ok(args.tracking_uri, must_exist=True):
        return 2
    if args.allow_trial:  # the app's launch policy and its agent (a child: it inherits it) read the same list
        known = [t for t in os.environ.get("TRELLIS_ALLOWED_TRIALS", "").split(",") if t]
        os.environ["TRELLIS_ALLOWED_TRIALS"] = ",".join(dict.fromkeys([*known, *args.allow_trial]))
    try:
        auth = authenticator_from_env(os.environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = None if args.workers else _one_process_app(args, auth)
    agent = None if args.no_agent else AgentKeeper(args.tracking_uri)
    fail_fast_over_http(os.environ)  # after the agent started: its searches keep MLflow's own retries
    signal.signal(signal.SIGTERM, _interrupted)  # a SIGTERM stops the agent's searches cleanly, as Ctrl-C does
    try:
        if args.workers:
            return _gunicorn(args)
        print(f"Trellis on http://{args.host}:{args.port}  (MLflow store: {args.tracking_uri})", flush=True)
        app.run(host=args.host, port=args.port, debug=False)
    finally:
        if agent is not None:
            agent.stop()  # it ends its searches as a stop would: resumable from the app
    return 0


def _one_process_app(args: argparse.Namespace, auth):
    from trellis.app.factory import create_app

    return create_app(args.tracking_uri, mlflow_ui_url=args.mlflow_ui_url, cache=args.cache, auth=auth)


def _gunicorn(args: argparse.Namespace) -> int:
    """The app under gunicorn, ``--workers`` processes; its settings ship in ``trellis.app.gunicorn_conf``."""
    import subprocess

    from trellis.app import gunicorn_conf

    env = {
        **os.environ,
        "TRELLIS_TRACKING_URI": args.tracking_uri,
        "TRELLIS_CACHE": args.cache,
        "TRELLIS_BIND": f"{args.host}:{args.port}",
        "TRELLIS_WORKERS": str(args.workers),
    }
    if args.mlflow_ui_url:
        env["TRELLIS_MLFLOW_UI"] = args.mlflow_ui_url
    cmd = [sys.executable, "-P", "-m", "gunicorn", "-c", gunicorn_conf.__file__, "trellis.app.wsgi:server"]
    print(
        f"Trellis on http://{args.host}:{args.port}, {args.workers} gunicorn workers "
        f"(MLflow store: {args.tracking_uri})",
        flush=True,
    )
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached gunicorn too (same process group); a SIGTERM only us
        proc.terminate()
        proc.wait(60)
        return 0


def _interrupted(_signum, _frame):
    raise KeyboardInterrupt


def _store_is_empty(uri: str) -> bool:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exps = client.search_experiments()
    return not any(client.search_runs([e.experiment_id], max_results=1) for e in exps)


def _add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port, default=8050)
    parser.add_argument(
        "--mlflow-ui-url",
        default=os.environ.get("TRELLIS_MLFLOW_UI", "http://127.0.0.1:5000"),
        help="base URL of the MLflow UI, for links to runs",
    )
    parser.add_argument(
        "--cache", type=cache_spec, default=".trellis/cache", help="run cache folder, or redis://host:port/db"
    )
    parser.add_argument("--no-agent", action="store_true", help="do not start an agent beside the app")
    parser.add_argument(
        "--allow-trial",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a trial of yours that the control page may launch and the agent beside the app may run, besides "
        "the registered ones (repeatable; adds to TRELLIS_ALLOWED_TRIALS)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        help="serve with gunicorn (it comes with MLflow) and this many worker processes; default: one process",
    )


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
