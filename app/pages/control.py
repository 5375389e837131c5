"""The control page: the searches of the chosen experiments (live while any is scheduled or running, with their
relaunch lineage), stop / resume / edit of a picked one, and the relaunch form (``control_relaunch``)."""

from __future__ import annotations

import time

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update

from trellis.app.context import AppContext
from trellis.app.pages import control_relaunch
from trellis.app.pages.control_relaunch import signed_in_refusal
from trellis.app.shell import fix_link_search
from trellis.layouts import control as lc
from trellis.search.control.queue import SEARCH_RUNS, cancel_or_stop, request_edit, request_resume
from trellis.search.engine.resume import ResumeError
from trellis.tracking import agents


def _number(id_: str, label: str, md: int = 2, **kwargs) -> dbc.Col:
    return dbc.Col(
        [dbc.Label(label, className="small mb-0"), dbc.Input(id=id_, type="number", min=1, size="sm", **kwargs)], md=md
    )


def layout(context: AppContext) -> html.Div:
    return html.Div(
        [
            dcc.Interval(id="ctl-tick", interval=lc.FAST_TICK_MS),
            dcc.Store(id="ctl-refresh"),  # an action wrote something: read the searches again now
            html.H5("Searches"),
            html.Div(id="ctl-count", className="small text-muted mb-1"),
            html.Div(id="ctl-agents", className="small mb-1"),
            dash_table.DataTable(
                id="ctl-table",
                columns=[{"name": label, "id": key} for key, label in lc.TABLE_COLUMNS],
                style_cell={"fontSize": 12, "textAlign": "left", "whiteSpace": "pre"},
                style_data_conditional=lc.status_styles(),
                page_size=20,
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("Search", className="small mb-0"),
                            dcc.Dropdown(id="ctl-pick", placeholder="Pick a search (or click its row)…"),
                        ],
                        md=5,
                    ),
                    dbc.Col(
                        [
                            dbc.Button("Stop", id="ctl-stop", color="danger", size="sm", className="me-2"),
                            dbc.Button("Resume", id="ctl-resume", color="success", size="sm"),
                        ],
                        md=3,
                        className="d-flex align-items-end",
                    ),
                    dbc.Col(html.Div(id="ctl-picked-status", className="small mt-4"), md=4),
                ],
                className="g-2 mt-2",
            ),
            dbc.Row(
                [
                    _number("ctl-edit-trials", "Max trials", step=1),
                    _number("ctl-edit-time", "Max time (s)"),
                    _number("ctl-edit-workers", "Workers", step=1),
                    dbc.Col(
                        dbc.Button("Apply", id="ctl-edit-apply", size="sm", outline=True),
                        md=2,
                        className="d-flex align-items-end",
                    ),
                ],
                className="g-2 mt-1",
            ),
            html.Div(id="ctl-action-msg", className="mt-2"),
            control_relaunch.section(),
        ],
        id="control-page",
    )


def register(app: Dash, context: AppContext) -> None:
    _register_table(app, context)
    _register_agents(app, context)
    _register_pick(app, context)
    _register_actions(app, context)
    control_relaunch.register(app, context)


def searches_table(context: AppContext, experiments: list[str]) -> list[dict]:
    """The table rows of the chosen experiments' searches: one query for the search runs, and the ended trials
    counted from the cached run table."""
    experiments = context.readable_ids(experiments)  # with sign-in: only what the user may read
    if not experiments:
        return []
    runs = context.client.search_runs(experiments, SEARCH_RUNS, max_results=1000)
    ended = lc.ended_counts(context.view(experiments).table.trials)
    return lc.table_rows([lc.search_record(r) for r in runs], ended, time.time())


def _register_table(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ctl-table", "data"),
        Output("ctl-pick", "options"),
        Output("ctl-tick", "interval"),
        Output("ctl-count", "children"),
        Input("selection", "data"),
        Input("ctl-tick", "n_intervals"),
        Input("ctl-refresh", "data"),
    )
    def refresh(selection, _tick, _refresh):
        rows = searches_table(context, (selection or {}).get("experiments", []))
        active = sum(r["status"] in lc.ACTIVE for r in rows)
        count = f"{len(rows)} searches, {active} scheduled or running" if rows else "No Trellis searches here yet."
        return rows, lc.pick_options(rows), lc.tick_interval(rows), count


def agents_line(context: AppContext, now: float | None = None) -> html.Span:
    """Whether an agent is alive to run what this page launches (``trellis.tracking.agents``)."""
    now = time.time() if now is None else now
    try:
        presence = agents.presence(context.client, now)
    except Exception as exc:  # the store hiccuped: say so, the next tick tries again
        return html.Span(f"Agents: not known ({str(exc).splitlines()[0][:120]})", className="text-muted")
    color = "text-success" if presence.alive else "text-danger"
    return html.Span(presence.sentence(now), className=color, id="ctl-agents-line")


def _register_agents(app: Dash, context: AppContext) -> None:
    @app.callback(Output("ctl-agents", "children"), Input("ctl-tick", "n_intervals"))
    def show_agents(_tick):
        return agents_line(context)


def _register_pick(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ctl-pick", "value"),
        Input("ctl-table", "active_cell"),
        Input("ctl-table", "data"),
        State("url", "search"),
        State("ctl-pick", "value"),
        prevent_initial_call=True,
    )
    def pick_row(cell, rows, url_query, current):
        if "ctl-table.active_cell" in ctx.triggered_prop_ids:
            return cell.get("row_id") if cell and cell.get("row_id") else no_update
        # A link with a diagnosis' fix names its search: picked once the table lists it (the form applies the fix).
        wanted = fix_link_search(url_query)
        if current or wanted is None or not any(isinstance(r, dict) and r.get("id") == wanted for r in rows or []):
            return no_update
        return wanted

    @app.callback(
        Output("ctl-stop", "disabled"),
        Output("ctl-stop", "children"),
        Output("ctl-resume", "disabled"),
        Output("ctl-edit-apply", "disabled"),
        Output("ctl-picked-status", "children"),
        Output("ctl-table", "style_data_conditional"),
        Input("ctl-pick", "value"),
        Input("ctl-table", "data"),
    )
    def picked(search_id, rows):
        rows = [r for r in rows or [] if isinstance(r, dict)]
        row = next((r for r in rows if search_id and r.get("id") == search_id), None)
        label = row.get("status") if row and isinstance(row.get("status"), str) else None
        allowed = lc.allowed_actions(label)
        styles = lc.status_styles()
        if row:
            styles = [{"if": {"filter_query": f'{{id}} = "{search_id}"'}, "backgroundColor": "#eef4fb"}, *styles]
        name = str(row.get("name", "")).lstrip(lc.INDENT) if row else ""
        status = html.Span([f"{name}: ", html.B(label, id="ctl-picked-label")]) if row else ""
        return not allowed["stop"], lc.stop_label(label), not allowed["resume"], not allowed["edit"], status, styles

    @app.callback(
        Output("ctl-edit-trials", "value"),
        Output("ctl-edit-time", "value"),
        Output("ctl-edit-workers", "value"),
        Input("ctl-pick", "value"),
    )
    def prefill_edit(search_id):
        if not search_id:
            return None, None, None
        try:
            return lc.edit_prefill(context.search_config(search_id).to_dict())
        except ResumeError:
            return None, None, None


def _register_actions(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ctl-action-msg", "children"),
        Output("ctl-refresh", "data"),
        Input("ctl-stop", "n_clicks"),
        Input("ctl-resume", "n_clicks"),
        Input("ctl-edit-apply", "n_clicks"),
        State("ctl-pick", "value"),
        State("ctl-edit-trials", "value"),
        State("ctl-edit-time", "value"),
        State("ctl-edit-workers", "value"),
        prevent_initial_call=True,
    )
    def act(_stop, _resume, _edit, search_id, max_trials, max_time_s, workers):
        refusal = signed_in_refusal(context, search_id)
        if refusal is not None:
            return refusal, no_update
        if not search_id:
            return dbc.Alert("Pick a search first.", color="warning"), no_update
        return _act(context, ctx.triggered_id, search_id, lc.edit_limits(max_trials, max_time_s, workers))


def _act(context: AppContext, action: str, search_id: str, limits: dict):
    """Stop, resume or edit ``search_id``: the message to show and the refresh token (None: nothing written)."""
    short = search_id[:8]
    try:
        if action == "ctl-stop":
            done = cancel_or_stop(context.client, search_id)
            text = f"search {short} cancelled" if done == "cancelled" else f"search {short} is stopping"
        elif action == "ctl-resume":
            request_resume(context.client, search_id, context.current_user() or "anonymous")
            text = f"resume of search {short} requested: an agent picks it up within seconds"
        else:
            limits = lc.changed_limits(limits, context.search_config(search_id).to_dict())
            unchanged = ("edit", "nothing to change: max trials, max time (s) and workers take positive numbers")
            problems = context.policy.edit_problems(limits) if limits else [unchanged]
            if problems:
                lines = lc.problem_lines(problems)
                return dbc.Alert([html.Div(line) for line in lines], color="danger", id="ctl-action-error"), no_update
            request_edit(context.client, search_id, limits)
            shown = ", ".join(f"{k} {v:g}" for k, v in limits.items())
            text = f"search {short}: {shown} requested (its runner applies it within seconds)"
    except ResumeError as exc:
        return dbc.Alert(str(exc).splitlines()[0], color="danger", id="ctl-action-error"), no_update
    return dbc.Alert(text, color="success", id="ctl-action-ok"), f"{action}:{search_id}:{time.time()}"
