"""``trellis rerun RUN_ID``: run one recorded trial again from what MLflow holds (``trellis.search.engine.rerun``)."""

from __future__ import annotations

import argparse
import os
import sys

from trellis.cli.arguments import positive_int, store_ok
from trellis.tracking import schema
from trellis.tracking.retry import StoreUnavailable
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def cmd_rerun(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from trellis.search.engine.rerun import RerunError, plan_rerun
    from trellis.search.engine.runner import SearchRunner

    if not store_ok(args.tracking_uri, must_exist=True):
        return 2
    try:
        plan = plan_rerun(MlflowClient(tracking_uri=args.tracking_uri), args.run_id, budget=args.budget)
    except RerunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    config = plan.config
    seed = "none recorded" if plan.seed is None else plan.seed
    print(f"rerunning trial run {plan.run_id} (seed {seed}, budget {config.budget.max} {config.budget.resource})")
    seeds = {} if plan.seed is None else {0: plan.seed}
    try:
        result = SearchRunner(config, seeds=seeds, trial_tags={schema.RERUN_OF: plan.run_id}).run()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not result.trials:
        print("error: the rerun started no trial", file=sys.stderr)
        return 1
    trial = result.trials[0]
    metric = config.objective.metric
    now = "-" if trial.value is None else f"{trial.value:.6g}"
    was = "-" if plan.original_value is None else f"{plan.original_value:.6g}"
    print(f"new run {trial.run_id} (search {result.search_id}, experiment {config.tracking.experiment!r})")
    print(f"{metric}: {now} (original {was})")
    return 0 if result.progress.completed else 1


def add_commands(sub) -> None:
    rerun = sub.add_parser("rerun", help="run one recorded trial again: same params, config, seed and budget")
    rerun.add_argument("run_id", help="the trial's MLflow run id")
    rerun.add_argument(
        "--tracking-uri", default=os.environ.get("TRELLIS_TRACKING_URI", DEFAULT_TRACKING_URI), help="the store"
    )
    rerun.add_argument("--budget", type=positive_int, help="run to this budget instead of the recorded one")
    rerun.set_defaults(func=cmd_rerun)
