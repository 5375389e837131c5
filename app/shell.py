"""The frame around every page: navigation, the experiment/search picker (kept in the URL), shared stores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from trellis.app import health
from trellis.app.context import AppContext
from trellis.app.url_checks import EXPERIMENT_ID, MAX_EXPERIMENTS, MAX_SEARCHES, SEARCH_ID
from trellis.layouts.choices import search_choices
from trellis.layouts.live import live_step, next_version
from trellis.search.control.fixes import FixError, decode_fix
from trellis.tracking import schema
from trellis.tracking.links import experiment_url
from trellis.tracking.retry import unavailable_reason

LIVE_TICK_MS = 4000  # how often an open page asks whether the store changed (a cheap query)


def parse_query(search: str | None) -> tuple[list[str], list[str]]:
    """``?exp=1,2&search=abc`` -> (["1", "2"], ["abc"])."""
    query = parse_qs((search or "").lstrip("?"))

    def items(key: str, valid) -> list[str]:  # the server refused a page with bad values; drop any left
        return [v for value in query.get(key, []) for v in value.split(",") if v and valid.fullmatch(v)]

    return items("exp", EXPERIMENT_ID)[:MAX_EXPERIMENTS], items("search", SEARCH_ID)[:MAX_SEARCHES]


def query_fix(search: str | None) -> tuple[str, dict] | None:
    """``?search=S&fix=...`` (a diagnosis' "relaunch with this fix" link) -> (S, the config change), else None
    (the server refused a bad ``fix``; one left over is ignored)."""
    query = parse_qs((search or "").lstrip("?"))
    searches = parse_query(search)[1]
    if len(searches) != 1 or not query.get("fix"):
        return None
    try:
        return searches[0], decode_fix(query["fix"][0])
    except FixError:
        return None


def fix_link_search(search: str | None) -> str | None:
    found = query_fix(search)
    return found[0] if found else None


def query_objective(search: str | None) -> str | None:
    """``?exp=1&objective=val_loss`` -> "val_loss": the objective the pages share, None when not chosen."""
    values = parse_qs((search or "").lstrip("?")).get("objective")
    return values[0] if values else None


def build_query(
    experiments: list[str] | None, searches: list[str] | None, objective: str | None = None, fix: str | None = None
) -> str:
    parts = {}
    if experiments:
        parts["exp"] = ",".join(experiments)
    if searches:
        parts["search"] = ",".join(searches)
    if objective:
        parts["objective"] = objective
    if fix:
        parts["fix"] = fix
    return "?" + urlencode(parts, safe=",:") if parts else ""


def kept_fix(search: str | None, searches: list[str]) -> str | None:
    """The ``fix`` of a "relaunch with this fix" link, kept in the URL while its one search stays picked."""
    found = query_fix(search)
    if found is None or searches != [found[0]]:
        return None
    return parse_qs((search or "").lstrip("?"))["fix"][0]


def with_objective(search: str | None, objective: str | None) -> str:
    """The query ``search`` with its objective replaced (the pages' metric pickers write it)."""
    exps, searches = parse_query(search)
    return build_query(exps, searches, objective)


def default_experiments(context: AppContext) -> list[str]:
    """With nothing in the URL: the most recently updated experiment with runs to show: evaluations, not only
    searches waiting for an agent (a search just launched makes its experiment the newest, with nothing in it)."""
    for option in context.experiments():
        runs = context.client.search_runs([option["value"]], max_results=20)
        if any(r.data.tags.get(schema.TYPE) != "search" for r in runs):
            return [option["value"]]
    return []


def layout(context: AppContext, pages: Sequence[Any]) -> html.Div:
    """The shell around every page; ``pages``: the page table's rows (``trellis.app.page_table``)."""
    try:
        experiments, down = context.experiments(), None
    except Exception as exc:  # a store that does not answer: the page still opens, and says why
        down = unavailable_reason(exc)
        if down is None:
            raise
        experiments = []
    nav = [dbc.NavItem(dbc.NavLink(page.label, href=page.path, id=page.nav_id, active="exact")) for page in pages]
    if context.mlflow_ui_url:
        nav.append(
            dbc.NavItem(dbc.NavLink("MLflow UI ↗", id="nav-mlflow", href=context.mlflow_ui_url, target="_blank"))
        )
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Store(id="selection", data={"experiments": [], "searches": []}),
            dcc.Store(id="selected-runs", storage_type="session", data=[]),
            # Live pages: the tick polls the store's fingerprint; data-version changes only when it changed.
            dcc.Interval(id="live-tick", interval=LIVE_TICK_MS),
            dcc.Store(id="live-seen"),
            dcc.Store(id="data-version"),
            dbc.Navbar(
                dbc.Container([dbc.NavbarBrand("Trellis", href="/"), dbc.Nav(nav, navbar=True)], fluid=True),
                color="dark",
                dark=True,
                className="mb-3",
            ),
            dbc.Container(
                [
                    *health.components(context, down),
                    dbc.Row(
                        [
                            dbc.Col(
                                dcc.Dropdown(
                                    id="exp-picker",
                                    multi=True,
                                    placeholder="Experiments…",
                                    options=experiments,
                                ),
                                md=5,
                            ),
                            dbc.Col(
                                dcc.Dropdown(
                                    id="search-picker",
                                    multi=True,
                                    placeholder="All searches and runs (or pick searches to compare)",
                                ),
                                md=5,
                            ),
                            dbc.Col(
                                dbc.Button("Reload", id="reload", color="secondary", outline=True, size="sm"),
                                md=1,
                                className="d-flex align-items-center",
                            ),
                            dbc.Col(
                                html.A("in MLflow ↗", id="exp-link", target="_blank", className="small"),
                                md=1,
                                className="d-flex align-items-center",
                            ),
                        ],
                        className="g-2 mb-3",
                    ),
                    html.Div(id="page"),
                ],
                fluid=True,
            ),
        ]
    )


def register(app: Dash, context: AppContext, pages: Sequence[Any]) -> None:
    by_path = {page.path: page for page in pages}

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def route(pathname: str | None):
        page = by_path.get(pathname or "/")
        if page is None:
            return dbc.Alert(f"No page at {pathname}. Try the Overview.", color="warning")
        return page.layout(context)

    @app.callback(Output("exp-picker", "options"), Input("reload", "n_clicks"), prevent_initial_call=True)
    def experiment_options(_):
        return context.experiments()

    @app.callback(
        Output("exp-picker", "value"),
        Output("search-picker", "options"),
        Output("search-picker", "value"),
        Output("url", "search"),
        Output("selection", "data"),
        Output("exp-link", "href"),
        Input("url", "search"),
        Input("exp-picker", "value"),
        Input("search-picker", "value"),
        Input("reload", "n_clicks"),
        State("selection", "data"),
    )
    def sync_selection(search, exps, searches, _reload, current):
        """The URL holds the selection, so a link shows the same runs; the pickers edit it.

        Search options are computed here, with the value, because a Dash dropdown drops a value that is
        not among its options yet.
        """
        if ctx.triggered_id in (None, "url", "reload"):
            new_exps, new_searches = parse_query(search)
            if not new_exps:
                new_exps = default_experiments(context)
        else:
            new_exps, new_searches = exps or [], searches or []
        view = context.view(new_exps)
        options, new_searches = search_choices(view.table.trials, view.labels, new_searches)
        query = build_query(new_exps, new_searches, query_objective(search), kept_fix(search, new_searches))
        link = experiment_url(context.mlflow_ui_url, new_exps[0]) if new_exps and context.mlflow_ui_url else None
        selection = {"experiments": new_exps, "searches": new_searches}
        # Only the objective in the URL changed (a page's metric picker wrote it): the runs shown stay.
        unchanged = selection == current and ctx.triggered_id == "url"
        return (
            new_exps if new_exps != (exps or []) else no_update,
            options,
            new_searches if new_searches != (searches or []) else no_update,
            query if query != (search or "") else no_update,
            no_update if unchanged else selection,
            link,
        )

    _register_live(app, context)

    # The page links keep the query (one callback for all: one request per URL change, not one per link).
    # The navigation keeps the query (the selection) in the browser: no request per page view for it.
    app.clientside_callback(
        f"function(search) {{ return {json.dumps([page.path for page in pages])}.map(p => p + (search || '')); }}",
        [Output(page.nav_id, "href") for page in pages],
        Input("url", "search"),
    )


def store_fingerprint(context: AppContext, experiments: list[str]) -> list | None:
    """The chosen experiments' fingerprint (None when there is none to poll: no experiment, no database)."""
    if not experiments:
        return None
    state = context.store_state(experiments)  # the fingerprint the pages' callbacks read their runs by
    return None if state is None else list(state)


def _register_live(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("live-seen", "data"),
        Output("data-version", "data"),
        Input("live-tick", "n_intervals"),
        Input("selection", "data"),
        State("live-seen", "data"),
        State("data-version", "data"),
    )
    def poll(_tick, selection, seen, version):
        """Every tick: has the store changed under the chosen experiments? Only then do the pages redraw."""
        experiments = (selection or {}).get("experiments") or []
        step = live_step(seen, experiments, store_fingerprint(context, experiments), ctx.triggered_id == "live-tick")
        return (
            step.seen if step.seen != seen else no_update,
            next_version(version) if step.changed else no_update,
        )

    @app.callback(
        Output("search-picker", "options", allow_duplicate=True),
        Input("data-version", "data"),
        State("selection", "data"),
        State("search-picker", "options"),
        prevent_initial_call=True,
    )
    def live_search_options(_version, selection, current):
        """New searches in the chosen experiments join the picker; the user's choice and the URL stay."""
        view = context.view(selection["experiments"])
        options = search_choices(view.table.trials, view.labels, selection["searches"]).options
        return options if options != current else no_update
