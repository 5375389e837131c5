"""The page URL's query (``?exp=1,2&search=<id>&objective=<metric>``), checked before any page is served: a
bad value is a 400 (an unknown experiment a 404) with a message saying which, never a 500 or a page that
silently shows nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from html import escape

from trellis.search.control.fixes import FixError, decode_fix
from trellis.tracking.limits import metric_problem

MAX_EXPERIMENTS = 50
MAX_SEARCHES = 200
EXPERIMENT_ID = re.compile(r"[0-9]{1,18}")
SEARCH_ID = re.compile(r"[0-9a-f]{1,32}|experiment:[0-9]{1,18}")


def split(values: Sequence[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


def query_problems(args: Mapping[str, Sequence[str]]) -> list[str]:
    """What is wrong with a page query, one line each (empty when it is fine). Pure: no store."""
    problems = []
    exps, searches = split(args.get("exp", [])), split(args.get("search", []))
    if len(exps) > MAX_EXPERIMENTS:
        problems.append(f"exp: at most {MAX_EXPERIMENTS} experiments, got {len(exps)}")
    problems += [f"exp: {_shown(e)} is not an experiment id (a number)" for e in exps if not EXPERIMENT_ID.fullmatch(e)]
    if len(searches) > MAX_SEARCHES:
        problems.append(f"search: at most {MAX_SEARCHES} searches, got {len(searches)}")
    bad = [s for s in searches[:MAX_SEARCHES] if not SEARCH_ID.fullmatch(s)]
    problems += [f"search: {_shown(s)} is not a search id" for s in bad]
    for fix in args.get("fix", [])[:1]:
        try:
            decode_fix(fix)
        except FixError as exc:
            problems.append(f"fix: {exc}")
    for objective in args.get("objective", [])[:1]:
        reason = metric_problem(objective, 0.0, 0)
        if reason:
            problems.append(f"objective: {reason}")
    return problems[:10]


def missing_experiments(args: Mapping[str, Sequence[str]], exists: Callable[[str], bool]) -> list[str]:
    return [f"exp: no experiment {e} in this store" for e in split(args.get("exp", [])) if not exists(e)]


def missing_searches(args: Mapping[str, Sequence[str]], exists: Callable[[str, list[str]], bool]) -> list[str]:
    """Searches of the query that are not in its experiments (or, without ``exp``, in no readable one)."""
    exps = split(args.get("exp", []))
    where = f"experiment {', '.join(exps)}" if exps else "this store"
    return [f"search: no search {_shown(s)} in {where}" for s in split(args.get("search", [])) if not exists(s, exps)]


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def error_page(problems: list[str]) -> str:
    items = "".join(f"<li><code>{escape(p)}</code></li>" for p in problems)
    return (
        "<!doctype html><title>Trellis: bad link</title>"
        "<body style='font-family: sans-serif; margin: 2em'>"
        f"<h1>This link cannot be shown</h1><ul>{items}</ul>"
        "<p><a href='/'>Open the overview</a> and pick experiments there.</p></body>"
    )


def install_url_checks(
    server,
    page_paths: set[str],
    exists: Callable[[str], bool],
    search_exists: Callable[[str, list[str]], bool] | None = None,
) -> None:
    """Before a page is served: its query checked (400), its experiments and searches looked up (404), and a
    path that is no page a 404 too (Dash would serve any path)."""
    from flask import Response, request

    def page(problems: list[str], status: int) -> Response:
        return Response(error_page(problems), status, {"Content-Type": "text/html; charset=utf-8"})

    @server.before_request
    def _check_page_url():
        if request.method != "GET" or request.path.startswith(("/_", "/assets/")):
            return None
        if request.path not in page_paths:
            return page([f"no page at {request.path}"], 404)
        args = request.args.to_dict(flat=False)
        problems = query_problems(args)
        if problems:
            return page(problems, 400)
        missing = missing_experiments(args, exists)
        if not missing and search_exists is not None:
            missing = missing_searches(args, search_exists)
        return page(missing, 404) if missing else None
