"""``trellis`` command line: searches (``search_commands``), the search-space analysis (``space_commands``),
the demo and the app (``app_commands``; it and ``user_commands``, the users file, are the only modules here
that import ``app``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from trellis.cli import (
    agent_commands,
    analysis_commands,
    app_commands,
    diagnose_commands,
    init_commands,
    link_commands,
    pareto_commands,
    rerun_commands,
    search_commands,
    space_commands,
    user_commands,
)
from trellis.extras import MissingExtra


def _quiet_libraries() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow  # noqa: F401 - mlflow sets its logger levels on import; override them afterwards

    for name in ("alembic", "mlflow", "optuna", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow logs each database error it re-raises; Trellis retries them and says so once (tracking.retry)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    if os.environ.get("TRELLIS_DEBUG", "") not in ("1", "true", "yes"):
        _one_line_log_records()


def _one_line_log_records() -> None:
    """Every log record of this command as one line: a store outage is one line per error, not a dozen
    tracebacks from MLflow and SQLAlchemy scrolling past Trellis' own line (``TRELLIS_DEBUG=1`` keeps them)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "trellis_one_line", False):
        return

    def one_line(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is logging's to report
            return record
        if record.exc_info or "\n" in text:
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None and str(exc).splitlines() and str(exc).splitlines()[0] not in text:
                text = f"{text}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            record.msg = " ".join(line.strip() for line in text.splitlines() if line.strip())[:400]
            record.args, record.exc_info, record.exc_text = None, None, None
        return record

    one_line.trellis_one_line = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(one_line)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trellis", description="Hyperparameter searches logged to MLflow.")
    sub = parser.add_subparsers(dest="command", required=True)
    search = search_commands.add_commands(sub)
    agent_commands.add_commands(sub, search)
    app_commands.add_commands(sub)
    space_commands.add_commands(sub)
    diagnose_commands.add_commands(sub)
    analysis_commands.add_commands(sub)
    link_commands.add_commands(sub)
    pareto_commands.add_commands(sub)
    user_commands.add_commands(sub)
    rerun_commands.add_commands(sub)
    init_commands.add_commands(sub)
    return parser


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        # A SIGTERM outside a search's own handling (while it prints its result, say) ends the command as
        # Ctrl-C does, with code 130, instead of killing it mid-line.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        _quiet_libraries()
        code = args.func(args)
    except MissingExtra as exc:  # an optional part is not installed: the one line naming what to install
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:  # Ctrl-C before a search started (imports, opening the store): no traceback
        print("\ninterrupted", file=sys.stderr)
        code = 130
    if code == 130 and in_main_thread:
        # Interrupted, cleaned up and said so: a further signal while the interpreter shuts down (Python puts
        # back the default handlers then) must not turn the exit into a kill.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    return code
