"""``trellis`` command line: run searches, run the demo."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from search.config import SELF_ENDING, ConfigError, SearchConfig, load_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "configs"
DEMO_CONFIGS = ("digits_mlp_random.yaml", "digits_mlp_tpe.yaml", "digits_mlp_bohb.yaml", "digits_mlp_pbt.yaml")


def _quiet_libraries() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow  # noqa: F401 - mlflow sets its logger levels on import; override them afterwards

    for name in ("alembic", "mlflow", "optuna", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _ui_hint(uri: str) -> str:
    return f"mlflow ui --backend-store-uri {uri}" if uri.startswith(("sqlite", "postgresql", "mysql")) else uri


def run_config(config: SearchConfig, quiet: bool = False, resume: str | None = None) -> int:
    from tqdm import tqdm

    from search.runner import Progress, SearchRunner

    bar = None if quiet else tqdm(total=config.termination.max_trials, desc=config.name, unit="trial", mininterval=0.5)

    def on_progress(p: Progress) -> None:
        if bar is None:
            return
        if bar.total is None and p.limit:
            bar.total = p.limit
        ended = p.completed + p.failed + p.killed
        bar.n = ended
        best = "-" if p.best_value is None else f"{p.best_value:.4g}"
        bar.set_postfix_str(f"running={p.running} failed={p.failed} best={best}", refresh=False)
        bar.update(0)  # redraws at most every mininterval

    try:
        result = SearchRunner(config, on_progress=on_progress, resume=resume).run()
    except KeyboardInterrupt:  # Ctrl-C while the store opens, or a second one while cleaning up
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    p = result.progress
    print(f"search {result.search_id} {result.state} ({result.stop_reason}): {p.completed} completed, "
          f"{p.failed} failed, {p.killed} killed")  # fmt: skip
    if p.best_value is not None:
        print(f"best {config.objective.metric} = {p.best_value:.6g} (trial {p.best_trial}): {result.best_params}")
    print(f"MLflow: {result.tracking_uri}  experiment {config.tracking.experiment!r} (id {result.experiment_id})")
    print(f"  browse: {_ui_hint(result.tracking_uri)}")
    if result.state == "killed":
        print(f"  continue it: trellis search resume {result.search_id} --tracking-uri {result.tracking_uri}")
    return 130 if result.state == "killed" else 0


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
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_config(config, quiet=args.quiet)


def cmd_search_resume(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from search.resume import ResumeError, recorded_config

    try:
        config = recorded_config(MlflowClient(tracking_uri=args.tracking_uri), args.search_id)
    except ResumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = replace(config, tracking=replace(config.tracking, uri=args.tracking_uri))
    if args.workers:
        config = replace(config, executor=replace(config.executor, workers=args.workers))
    return run_config(config, quiet=args.quiet, resume=args.search_id)


def cmd_search_stop(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from search.resume import ResumeError, request_stop

    try:
        request_stop(MlflowClient(tracking_uri=args.tracking_uri), args.search_id)
    except ResumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"asked search {args.search_id} to stop: its runner ends the running trials within a few seconds")
    return 0


def cmd_search_validate(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: ok ({config.algorithm.name}, {len(config.space)} parameters)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Four small real searches on the digits MLP (random, TPE, BOHB, PBT) into the local store, then the app."""
    if args.rerun or _store_is_empty(args.tracking_uri):
        code = _run_demo_searches(args)
        if code:
            return code
    else:
        print(f"{args.tracking_uri} already has runs: serving them (--rerun runs the demo searches again)")
    if args.no_serve:
        return 0
    return cmd_serve(args)


def _run_demo_searches(args: argparse.Namespace) -> int:
    for name in DEMO_CONFIGS:
        config = load_config(EXAMPLES / name, {"tracking.uri": args.tracking_uri})
        if args.max_trials and config.algorithm.name not in SELF_ENDING:  # BOHB and PBT size themselves
            config = replace(config, termination=replace(config.termination, max_trials=args.max_trials))
        size = config.termination.max_trials or "its own number of"
        print(f"==> {config.name}: {config.algorithm.name} search, {size} trials")
        code = run_config(config, quiet=args.quiet)
        if code:
            return code
    print(f"\nDone. The same runs in the MLflow UI: {_ui_hint(args.tracking_uri)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from app.auth import parse_users
    from app.factory import create_app

    app = create_app(
        args.tracking_uri,
        mlflow_ui_url=args.mlflow_ui_url,
        cache=args.cache,
        users=parse_users(os.environ.get("TRELLIS_AUTH")),
    )
    print(f"Trellis on http://{args.host}:{args.port}  (MLflow store: {args.tracking_uri})")
    app.run(host=args.host, port=args.port, debug=False)
    return 0


def _store_is_empty(uri: str) -> bool:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exps = client.search_experiments()
    return not any(client.search_runs([e.experiment_id], max_results=1) for e in exps)


def _add_serve_args(parser: argparse.ArgumentParser, uri_default: str | None = "sqlite:///mlruns.db") -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--mlflow-ui-url", default=os.environ.get("TRELLIS_MLFLOW_UI", "http://127.0.0.1:5000"),
                        help="base URL of the MLflow UI, for links to runs")  # fmt: skip
    parser.add_argument("--cache", default=".trellis/cache", help="run cache folder, or redis://host:port/db")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trellis", description="Hyperparameter searches logged to MLflow.")
    sub = parser.add_subparsers(dest="command", required=True)

    search = sub.add_parser("search", help="run and manage searches").add_subparsers(dest="action", required=True)
    run = search.add_parser("run", help="run the search a config file describes")
    run.add_argument("config", help="YAML or JSON search config")
    run.add_argument("--tracking-uri", help="override tracking.uri")
    run.add_argument("--experiment", help="override tracking.experiment")
    run.add_argument("--workers", type=int, help="override executor.workers")
    run.add_argument("--max-trials", type=int, help="override termination.max_trials")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_search_run)
    default_uri = os.environ.get("TRELLIS_TRACKING_URI", "sqlite:///mlruns.db")
    resume = search.add_parser("resume", help="continue an interrupted search without rerunning finished trials")
    resume.add_argument("search_id", help="the search (parent) run id")
    resume.add_argument("--tracking-uri", default=default_uri)
    resume.add_argument("--workers", type=int, help="override executor.workers")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    resume.set_defaults(func=cmd_search_resume)
    stop = search.add_parser("stop", help="ask a running search to stop cleanly (it stays resumable)")
    stop.add_argument("search_id", help="the search (parent) run id")
    stop.add_argument("--tracking-uri", default=default_uri)
    stop.set_defaults(func=cmd_search_stop)
    validate = search.add_parser("validate", help="check a config file without running anything")
    validate.add_argument("config")
    validate.set_defaults(func=cmd_search_validate)

    demo = sub.add_parser("demo", help="run four small real searches into the local store (if empty), then serve")
    demo.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    demo.add_argument("--max-trials", type=int, help="trials per search (default: the configs')")
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--no-serve", action="store_true", help="only run the searches")
    demo.add_argument("--rerun", action="store_true", help="run the searches even if the store has runs")
    _add_serve_args(demo)
    demo.set_defaults(func=cmd_demo)

    from search.space_cli import add_commands

    add_commands(sub)

    serve = sub.add_parser("serve", help="serve the app over an MLflow store")
    serve.add_argument("--tracking-uri", default=os.environ.get("TRELLIS_TRACKING_URI", "sqlite:///mlruns.db"))
    _add_serve_args(serve)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _quiet_libraries()
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C before a search started (imports, opening the store): no traceback
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
