"""``trellis agent``, ``trellis search submit`` (launch for an agent) and ``trellis search edit``."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import threading

from trellis.cli.arguments import positive_int, store_ok
from trellis.cli.search_commands import load_for_run
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def _default_uri() -> str:
    return os.environ.get("TRELLIS_TRACKING_URI", DEFAULT_TRACKING_URI)


def cmd_agent(args: argparse.Namespace) -> int:
    from trellis.search.control.agent import Agent
    from trellis.search.control.policy import ServerPolicy

    if not store_ok(args.tracking_uri, must_exist=False):
        return 2
    policy = ServerPolicy.from_env(
        extra_trials=frozenset(args.allow_trial) or None, store_trials=args.allow_store_trials or None
    )
    agent = Agent(args.tracking_uri, max_searches=args.max_searches, poll_s=args.poll, policy=policy)
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    at_once = f"up to {args.max_searches} search(es) at once"
    print(f"agent {agent.token} watching {args.tracking_uri} ({at_once})", flush=True)
    agent.run(stop)
    print("agent stopped")
    return 0


def cmd_search_submit(args: argparse.Namespace) -> int:
    from trellis.search.control.queue import submit_search
    from trellis.tracking.retry import StoreUnavailable
    from trellis.tracking.writer import ExperimentUnusable

    config = load_for_run(args.config, {"tracking.uri": args.tracking_uri} if args.tracking_uri else {})
    if config is None:
        return 2
    try:
        search_id = submit_search(config, launched_by=getpass.getuser())
    except (ExperimentUnusable, StoreUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"search {search_id} waits for an agent (trellis agent --tracking-uri {config.tracking.uri})")
    return 0


def cmd_search_edit(args: argparse.Namespace) -> int:
    from trellis.cli.search_commands import _named_search
    from trellis.search.control.policy import ServerPolicy
    from trellis.search.control.queue import request_edit

    limits = {
        k: v
        for k, v in (("max_trials", args.max_trials), ("max_time_s", args.max_time_s), ("workers", args.workers))
        if v is not None
    }
    if not limits:
        print("error: nothing to edit: give --max-trials, --max-time-s or --workers", file=sys.stderr)
        return 2
    problems = ServerPolicy.from_env().edit_problems(limits)
    if problems:
        print(f"error: {problems[0][0]}: {problems[0][1]}", file=sys.stderr)
        return 2
    found = _named_search(args, lambda client, sid: request_edit(client, sid, limits))
    if found is None:
        return 2
    print(f"asked search {found[0]} to apply {limits}: its runner picks it up within a few seconds")
    return 0


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_commands(sub, search) -> None:
    agent = sub.add_parser("agent", help="run the searches launched from the app (any number of agents per store)")
    agent.add_argument("--tracking-uri", default=_default_uri())
    agent.add_argument("--max-searches", type=positive_int, default=1, help="searches this agent runs at once")
    agent.add_argument("--poll", type=_positive_number, default=2.0, help="seconds between looks for work")
    agent.add_argument(
        "--allow-trial",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a trial this agent may run besides the registered ones (repeatable)",
    )
    agent.add_argument(
        "--allow-store-trials",
        action="store_true",
        help="also run relaunches of any trial a search in the store already ran",
    )
    agent.set_defaults(func=cmd_agent)
    submit = search.add_parser("submit", help="record a search for an agent to run, and return at once")
    submit.add_argument("config")
    submit.add_argument("--tracking-uri", help="override tracking.uri")
    submit.set_defaults(func=cmd_search_submit)
    edit = search.add_parser("edit", help="change a running search's max trials, max time or workers")
    edit.add_argument("search_id")
    edit.add_argument("--tracking-uri", default=_default_uri())
    edit.add_argument("--max-trials", type=positive_int)
    edit.add_argument("--max-time-s", type=_positive_number)
    edit.add_argument("--workers", type=positive_int)
    edit.set_defaults(func=cmd_search_edit)
