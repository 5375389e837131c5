"""When the store or the shared cache fails: one status line above every page, and recovery by itself.

A callback that fails because the MLflow store does not answer (a stopped database, a lock held too long, a
lost connection, a tracking server down) answers 200 with the reason in the status line (Dash's error
handler sets it with ``set_props``), instead of a 500 or a page that silently shows "Runs 0". While the
message is up the status line asks the store again every few seconds; once it answers, the message goes and
the page reads its data again (the shell's Reload), without restarting the app. A shared cache (Redis) that
does not answer is noted there too: the app goes on with each worker's own cache.
"""

from __future__ import annotations

import logging
import time

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html, no_update, set_props

from trellis.app.context import AppContext
from trellis.tracking.cache import shown_url
from trellis.tracking.retry import unavailable_reason

STATUS_ID = "trellis-status"
TICK_ID = "health-tick"
DOWN_ID = "store-down"
HEALTHY_MS = 30_000  # how often an open page checks the shared cache (and the store) when all is well
RETRY_MS = 3_000  # how often it asks a store that did not answer
log = logging.getLogger(__name__)


def fail_fast_over_http(environ) -> None:
    """For an app process (gunicorn's workers): an MLflow tracking server that is down is said on the page
    within seconds, where MLflow's default retries keep each request waiting about 4 minutes (longer
    than gunicorn's worker timeout: the worker would be killed and the page get a 502). Values already set in
    the environment win."""
    environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def store_alert(uri: str, reason: str) -> dbc.Alert:
    return dbc.Alert(
        [
            html.B("Store unavailable: "),
            f"the MLflow store at {shown_url(uri)} is not answering: {reason}; retrying every "
            f"{RETRY_MS // 1000} s (the page reads its data again once it answers).",
        ],
        color="danger",
        id="store-down-alert",
        className="mb-2 py-2 small",
    )


def cache_note(problem: str) -> dbc.Alert:
    return dbc.Alert(f"Note: {problem}.", color="warning", id="cache-down-note", className="mb-2 py-1 small")


def status_children(context: AppContext, store_reason: str | None) -> list:
    shown = [store_alert(context.tracking_uri, store_reason)] if store_reason else []
    cache_problem = context.cache.store.problem()
    return [*shown, cache_note(cache_problem)] if cache_problem else shown


def components(context: AppContext, store_reason: str | None) -> list:
    """The shell's status line, its check timer and whether the store was found down (for the page layout)."""
    return [
        dcc.Interval(id=TICK_ID, interval=RETRY_MS if store_reason else HEALTHY_MS),
        dcc.Store(id=DOWN_ID, data=bool(store_reason)),
        html.Div(status_children(context, store_reason), id=STATUS_ID),
    ]


def probe(context: AppContext) -> str | None:
    """Why the store does not answer now, or None: a read of MLflow's experiments table (what a page needs
    first); through the MLflow client when the store is a server."""
    try:
        context.store.check_answers(context.client)
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        return reason
    return None


def error_handler(context: AppContext):
    """Dash's ``on_error`` for every callback: a store outage is shown in the status line (the response is a
    200 carrying it; the callback's own outputs stay as they were); any other error is raised as before."""

    said = {"reason": None, "at": 0.0}  # one log line per outage and minute, not one per page and tick

    def on_error(exc: Exception):
        reason = unavailable_reason(exc)
        if reason is None:
            raise exc
        if reason != said["reason"] or time.monotonic() - said["at"] > 60:
            said.update(reason=reason, at=time.monotonic())
            log.warning("store at %s not answering: %s", shown_url(context.tracking_uri), reason)
        set_props(STATUS_ID, {"children": status_children(context, reason)})
        set_props(TICK_ID, {"interval": RETRY_MS})
        set_props(DOWN_ID, {"data": True})
        return None  # no update of the failed callback's outputs

    return on_error


def register(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output(STATUS_ID, "children"),
        Output(TICK_ID, "interval"),
        Output(DOWN_ID, "data"),
        Output("exp-picker", "options", allow_duplicate=True),
        Output("reload", "n_clicks", allow_duplicate=True),
        Input(TICK_ID, "n_intervals"),
        State(DOWN_ID, "data"),
        State("reload", "n_clicks"),
        prevent_initial_call=True,
    )
    def check(_tick, was_down, clicks):
        """The store and the cache, now. A store that answers again: the message goes and the shell's Reload is
        pressed, so every callback that failed meanwhile reads its data again. The experiment picker's options
        come in the same answer: a page opened while the store was down has none, and a picker drops a value it
        does not offer (the Reload's choice from the URL would be lost)."""
        reason = probe(context)
        options = no_update
        if reason is None and was_down:
            try:
                options = context.experiments()
            except Exception as exc:
                reason = unavailable_reason(exc)
                if reason is None:
                    raise
        children = status_children(context, reason)
        if reason is not None:
            return children, RETRY_MS, True, no_update, no_update
        if was_down:
            log.warning("store at %s answers again", shown_url(context.tracking_uri))
        return children, HEALTHY_MS, False, options, (clicks or 0) + 1 if was_down else no_update
