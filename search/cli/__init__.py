"""``trellis`` command line: searches (``search_commands``), the search-space analysis (``space_commands``),
the demo and the app (``app_commands``, the only module here that imports ``app``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from search.cli import agent_commands, app_commands, search_commands, space_commands


def _quiet_libraries() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow  # noqa: F401 - mlflow sets its logger levels on import; override them afterwards

    for name in ("alembic", "mlflow", "optuna", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trellis", description="Hyperparameter searches logged to MLflow.")
    sub = parser.add_subparsers(dest="command", required=True)
    search = search_commands.add_commands(sub)
    agent_commands.add_commands(sub, search)
    app_commands.add_commands(sub)
    space_commands.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _quiet_libraries()
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C before a search started (imports, opening the store): no traceback
        print("\ninterrupted", file=sys.stderr)
        return 130
