"""``trellis link``: a link to the Trellis app in an experiment's MLflow description, for experiments Trellis did
not write (its own search runs carry theirs from the start when the app's public URL is set)."""

from __future__ import annotations

import argparse
import os
import sys

from trellis.cli.arguments import experiment_name, store_ok
from trellis.tracking.links import (
    MLFLOW_NOTE,
    PUBLIC_URL_ENV,
    app_url_problem,
    trellis_note_line,
    trellis_urls,
    with_trellis_note,
)
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_link(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    app_url = (args.app_url or os.environ.get(PUBLIC_URL_ENV) or "").strip()
    if not app_url:
        return _error(f"no app URL: give --app-url https://trellis.example.org or set {PUBLIC_URL_ENV}")
    problem = app_url_problem(app_url)
    if problem:
        return _error(problem)
    if not store_ok(args.tracking_uri, must_exist=True):
        return 2
    client = MlflowClient(tracking_uri=args.tracking_uri)
    try:
        exp = client.get_experiment_by_name(args.experiment)
        if exp is None or exp.lifecycle_stage == "deleted":
            return _error(f"no experiment {args.experiment!r} at {args.tracking_uri}")
        before = exp.tags.get(MLFLOW_NOTE)
        after = with_trellis_note(before, trellis_note_line(app_url, exp.experiment_id))
        if after != before:
            client.set_experiment_tag(exp.experiment_id, MLFLOW_NOTE, after)
    except Exception as exc:  # the store's own words, on one line (a refusal, a permission, a lost server)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _error(f"could not update the description of {args.experiment!r}: {first}")
    verb = "already links" if after == before else "now links"
    overview = trellis_urls(app_url, exp.experiment_id)["overview"]
    print(f"{args.experiment!r} (experiment {exp.experiment_id}) {verb} to {overview}")
    return 0


def add_commands(sub) -> None:
    link = sub.add_parser(
        "link",
        help="add a link to the Trellis app to an experiment's MLflow description",
        description="Adds a line linking the experiment's Trellis views (overview, search space, learning curves) "
        "to its description in MLflow, keeping the text there; run twice, it stays one line.",
    )
    link.add_argument("--experiment", type=experiment_name, required=True, help="the experiment's name")
    link.add_argument("--tracking-uri", default=os.environ.get("TRELLIS_TRACKING_URI", DEFAULT_TRACKING_URI))
    link.add_argument("--app-url", help=f"the app's public URL (default: ${PUBLIC_URL_ENV})")
    link.set_defaults(func=cmd_link)
