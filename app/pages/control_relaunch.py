"""The control page's relaunch form: prefilled from the picked search's stored config, refined from the suggested
bounds or the selected runs, checked as ``trellis search validate`` and the server policy would, then launched
for an agent. The trial always comes from the parent's stored config (or an allow-listed ``trial`` key)."""

from __future__ import annotations

import secrets
from collections import Counter

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update

from trellis.app.context import AppContext
from trellis.app.pages.control_prior import register_prior_view
from trellis.app.shell import query_fix
from trellis.layouts import control as lc
from trellis.search.analysis.refine import prior_from_verdicts, refined_space
from trellis.search.control.fixes import apply_fix
from trellis.search.control.policy import trial_target
from trellis.search.control.queue import submit_search
from trellis.search.control.relaunch import (
    ACTIONS,
    config_diff,
    config_from_form,
    config_yaml,
    fill_from_runs,
    fill_from_space,
    fill_with_prior,
    form_from_config,
    validate_launch,
)
from trellis.search.engine.resume import ResumeError
from trellis.search.registry import ALGORITHMS
from trellis.tracking.reader import spaces_of
from trellis.tracking.retry import StoreUnavailable
from trellis.tracking.writer import ExperimentUnusable

# The widgets holding the form, in the order of ``trellis.layouts.control.WIDGETS``.
WIDGET_PROPS = [
    ("ctl-name", "value"),
    ("ctl-params", "data"),
    ("ctl-algo", "value"),
    ("ctl-settings", "data"),
    ("ctl-max-trials", "value"),
    ("ctl-max-time", "value"),
    ("ctl-workers", "value"),
    ("ctl-warm", "value"),
    ("ctl-seed", "value"),
    ("ctl-guide", "value"),
    ("ctl-prior", "data"),
]
SMALL_TABLE = {"fontSize": 12, "textAlign": "left", "minWidth": 60}


def signed_in_refusal(context: AppContext, search_id: str | None = None):
    """With auth on, what a request gets instead of a launch, stop, resume or edit: without a signed-in user,
    or (given the search) without the right to edit its experiment. None when the action may go ahead."""
    if not context.auth_on:
        return None
    if context.current_user() is None:
        return dbc.Alert("Sign in to launch, stop, resume or edit searches.", color="danger", id="ctl-refused")
    if search_id:
        try:
            experiment_id = context.client.get_run(search_id).info.experiment_id
        except Exception:  # an unknown or malformed id: the same answer as a search one may not touch
            experiment_id = None
        if experiment_id is None or not context.can_edit(experiment_id):
            return dbc.Alert(
                "You may not launch, stop, resume or edit searches in this experiment (its MLflow permissions).",
                color="danger",
                id="ctl-refused",
            )
    return None


def _labelled(label: str, component, md: int) -> dbc.Col:
    return dbc.Col([dbc.Label(label, className="small mb-0"), component], md=md)


def section() -> html.Div:
    """The relaunch form, the problems or the diff and YAML, and the launch button (long by nature)."""
    param_columns = [
        {"name": c, "id": c, "editable": c in lc.EDITABLE_PARAM_COLUMNS}
        | ({"presentation": "dropdown"} if c in ("action", "log") else {})
        for c in lc.PARAM_COLUMNS
    ]
    return html.Div(
        [
            html.H5("Relaunch", className="mt-4"),
            html.Div(id="ctl-parent-note", className="small text-muted mb-2"),
            dbc.Row(
                [
                    _labelled("Name", dbc.Input(id="ctl-name", size="sm"), 3),
                    _labelled(
                        "Algorithm",
                        dcc.Dropdown(id="ctl-algo", options=sorted(ALGORITHMS), clearable=False),
                        2,
                    ),
                    _labelled("Max trials", dbc.Input(id="ctl-max-trials", type="number", min=1, size="sm"), 1),
                    _labelled("Max time (s)", dbc.Input(id="ctl-max-time", type="number", min=1, size="sm"), 1),
                    _labelled("Workers", dbc.Input(id="ctl-workers", type="number", min=1, step=1, size="sm"), 1),
                    _labelled("Seed", dbc.Input(id="ctl-seed", placeholder="new random seed", size="sm"), 2),
                    dbc.Col(
                        dbc.Checklist(
                            id="ctl-warm",
                            options=[{"label": "warm start from the parent's trials", "value": "on"}],
                            value=["on"],
                            className="small mt-4",
                        ),
                        md=2,
                    ),
                ],
                className="g-2 mb-2",
            ),
            dash_table.DataTable(
                id="ctl-params",
                columns=param_columns,
                editable=True,
                dropdown={
                    "action": {"options": [{"label": a, "value": a} for a in ACTIONS], "clearable": False},
                    "log": {"options": [{"label": v, "value": v} for v in ("no", "yes")], "clearable": False},
                },
                style_cell=SMALL_TABLE,
                css=[{"selector": ".Select-menu-outer", "rule": "display: block !important"}],
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.RadioItems(
                                id="ctl-guide",
                                options=[
                                    {"label": "prior: keep the ranges, pull towards the good region", "value": "prior"},
                                    {"label": "hard bounds: cut the ranges", "value": "bounds"},
                                ],
                                value="prior",
                                inline=True,
                                className="small",
                            ),
                            dbc.Button("Fill from the analysis", id="ctl-fill-bounds", size="sm", className="me-2"),
                            dbc.Button("Fill from selected runs", id="ctl-fill-runs", size="sm", outline=True),
                        ],
                        md=6,
                    ),
                    dbc.Col(html.Div(id="ctl-fill-note", className="small"), md=6),
                ],
                className="g-2 my-2",
            ),
            dcc.Store(id="ctl-prior", data=None),  # the relaunch's prior (``prior:``), from the analysis
            html.Div(id="ctl-prior-view"),
            html.Div("Algorithm settings", className="small text-muted"),
            dash_table.DataTable(
                id="ctl-settings",
                columns=[{"name": "setting", "id": "key", "editable": False}, {"name": "value", "id": "value"}],
                editable=True,
                style_cell=SMALL_TABLE,
                style_table={"maxWidth": 420},
            ),
            html.Div(id="ctl-problems", className="mt-3"),
            html.Div(id="ctl-diff", className="mt-2"),
            html.Pre(id="ctl-yaml", className="small bg-light p-2 mt-2", style={"maxHeight": 320}),
            dbc.Button("Download YAML", id="ctl-download-btn", size="sm", outline=True, className="me-2"),
            dbc.Button("Launch", id="ctl-launch", size="sm", color="primary"),
            dcc.Download(id="ctl-download"),
            html.Div(id="ctl-launch-msg", className="mt-2"),
            dcc.Store(id="ctl-extra", data={}),  # an allow-listed trial another client may name; empty here
        ]
    )


def _widgets(values) -> dict:
    return dict(zip(lc.WIDGETS, values, strict=True))


def _candidate(context: AppContext, search_id: str, widgets: dict, extra: dict | None, seed: int):
    """(parent config dict, the relaunch's config or None, problems) for the form the widgets show."""
    parent_config = context.search_config(search_id)
    parent = parent_config.to_dict()
    form = lc.form_from_widgets(form_from_config(parent), widgets, extra if isinstance(extra, dict) else None)
    raw, form_problems = config_from_form(parent, form, search_id, seed)
    raw["tracking"] = {**(raw.get("tracking") or {}), "uri": context.tracking_uri}  # this server's store
    config, problems = validate_launch(raw, form_problems, context.policy, trial_target(parent_config.trial))
    return parent, config, problems


def _problems_alert(problems) -> dbc.Alert:
    lines = lc.problem_lines(problems)
    return dbc.Alert(
        [html.Div("Not launchable:", className="fw-bold"), html.Ul([html.Li(line) for line in lines])],
        color="danger",
        id="ctl-problems-alert",
    )


def _analysis(context: AppContext, selection: dict, search_id: str, metric: str, direction: str):
    """The search-space report of this search's runs with its verdicts (the space page's and ``trellis bounds``'
    own, ``trellis.search.analysis.verdicts``) and what they say in short, or None and why not."""
    exps = (selection or {}).get("experiments", [])
    report = context.space_report({"experiments": exps, "searches": [search_id]}, metric, direction, None, None)
    verdicts = report.verdicts or {}
    if not any(v.action != "keep" for v in verdicts.values()):
        why = report.problem or "every parameter keeps its range (no narrower region, no edge, nothing to fix)"
        return None, f"Nothing to refine: {why}."
    counts = Counter(v.action for v in verdicts.values() if v.action != "keep")
    said = ", ".join(f"{count} {'to ' if action == 'fix' else ''}{action}" for action, count in sorted(counts.items()))
    bounds = report.bounds
    fit = "R² n/a" if bounds is None or bounds.r2 is None else f"cross-validated R² {bounds.r2:.2f}"
    trust = f"; nothing narrowed or fixed: {report.problem}" if report.problem else ""
    return report, f"{said}; {fit}{trust}"


def _from_analysis(
    context: AppContext, form: dict, selection: dict, search_id: str, metric: str, direction: str, guidance: str
):
    """The form filled from the verdicts: hard bounds, or (the default) the parent's ranges and a prior."""
    report, why = _analysis(context, selection, search_id, metric, direction)
    if report is None:
        return None, why
    table = context.view((selection or {}).get("experiments", []), [search_id]).table
    if guidance == "bounds":
        filled = fill_from_space(form, *refined_space(report.verdicts, report.data, spaces_of(table)))
        return filled, f"Hard bounds from the verdicts of the search-space analysis ({why})."
    filled = fill_with_prior(form, *prior_from_verdicts(report.verdicts, report.data, spaces_of(table)))
    pulled = len(filled["prior"]["parameters"])
    if not pulled:
        return filled, f"Prior: nothing sure to pull towards ({why}); the relaunch continues on the parent's space."
    return filled, f"Prior from the verdicts of the search-space analysis, on {pulled} parameters ({why})."


def _from_runs(context: AppContext, form: dict, selection: dict, selected: list | None):
    runs = lc.selected_params(context.view((selection or {}).get("experiments", [])).trials, selected)
    if not runs:
        return None, "No selected runs in this view: select some on the Overview or brush the Search space."
    return fill_from_runs(form, runs), f"Ranges from {len(runs)} selected runs."


def register(app: Dash, context: AppContext) -> None:
    _register_fill(app, context)
    register_prior_view(app, context)
    _register_preview(app, context)
    _register_launch(app, context)


def _register_fill(app: Dash, context: AppContext) -> None:
    @app.callback(
        *[Output(i, p) for i, p in WIDGET_PROPS],
        Output("ctl-fill-note", "children"),
        Output("ctl-parent-note", "children"),
        Input("ctl-pick", "value"),
        Input("ctl-fill-bounds", "n_clicks"),
        Input("ctl-fill-runs", "n_clicks"),
        Input("ctl-algo", "value"),
        Input("ctl-guide", "value"),
        *[State(i, p) for i, p in WIDGET_PROPS],
        State("selection", "data"),
        State("selected-runs", "data"),
        State("url", "search"),
    )
    def fill(search_id, _bounds, _runs, algorithm, guidance, *state):
        *values, selection, selected, url_query = state
        unchanged = [no_update] * len(WIDGET_PROPS)
        if not search_id:
            return *unchanged, "", "Pick a search above to relaunch it with a refined space."
        trigger = ctx.triggered_id
        widgets = _widgets(values)
        if trigger == "ctl-algo":
            table = widgets["settings"]
            settings = lc.settings_table(algorithm, lc.settings_from_table(table), lc.early_from_table(table))
            return *unchanged[:3], settings, *unchanged[4:], no_update, no_update
        try:
            config = context.search_config(search_id)
        except ResumeError as exc:
            return *unchanged, "", dbc.Alert(str(exc).splitlines()[0], color="warning")
        parent = config.to_dict()
        metric, direction = config.objective.metric, config.objective.direction
        trials = context.view((selection or {}).get("experiments", []), [search_id]).trials
        best = lc.best_params(trials, search_id, metric, direction)
        if trigger in ("ctl-fill-bounds", "ctl-fill-runs", "ctl-guide"):
            form = lc.form_from_widgets(form_from_config(parent), widgets)
            if trigger == "ctl-fill-runs":
                filled, note = _from_runs(context, form, selection, selected)
            else:  # from the parent's own rows: switching guidance undoes the other's ranges
                form["rows"] = form_from_config(parent, best)["rows"]
                guide = guidance if guidance in ("prior", "bounds") else "prior"
                filled, note = _from_analysis(context, form, selection, search_id, metric, direction, guide)
            if filled is None:
                return *unchanged, dbc.Alert(note, color="warning", className="py-1 mb-0"), no_update
            shown = lc.widgets_from_form(filled)
            changed = ("params", "guidance", "prior")
            out = [shown[k] if k in changed else no_update for k in lc.WIDGETS]
            return *out, html.Span(note, className="text-success"), no_update
        fix = query_fix(url_query)
        fixed = fix is not None and fix[0] == search_id
        form = form_from_config(apply_fix(parent, fix[1]) if fixed else parent, best)
        form["seed"] = secrets.randbelow(2**31)  # drawn once: the preview, the YAML and the launch agree
        fill_note = ""
        if not fixed:  # by default a relaunch is prior-guided from the analysis, when it has something to say
            filled, said = _from_analysis(context, form, selection, search_id, metric, direction, "prior")
            if filled is not None:
                form, fill_note = filled, html.Span(said, className="text-success")
            else:  # nothing sure: the relaunch starts as the parent's, a warm-started continuation
                fill_note = f"{said} No prior: as it stands the relaunch continues from the parent's trials."
        widgets = lc.widgets_from_form(form)
        note = f"From search {config.name} ({search_id[:8]}): its trial ({trial_target(config.trial)}) and store."
        if fixed:
            changes = ", ".join(f"{k}: {v}" for k, v in fix[1].items())
            note = [
                note,
                html.Div(f"With the search diagnosis' fix: {changes}", id="ctl-fix-note", className="text-success"),
            ]
        return *[widgets[k] for k in lc.WIDGETS], fill_note, note


def _register_preview(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ctl-problems", "children"),
        Output("ctl-diff", "children"),
        Output("ctl-yaml", "children"),
        Output("ctl-launch", "disabled"),
        Output("ctl-download-btn", "disabled"),
        Input("ctl-pick", "value"),
        *[Input(i, p) for i, p in WIDGET_PROPS],
        State("ctl-extra", "data"),
    )
    def preview(search_id, *values):
        *values, extra = values
        if not search_id or not values[1]:
            return "", "", "", True, True
        try:
            parent, config, problems = _candidate(context, search_id, _widgets(values), extra, secrets.randbelow(2**31))
        except ResumeError as exc:
            return dbc.Alert(str(exc).splitlines()[0], color="warning"), "", "", True, True
        if problems:
            return _problems_alert(problems), "", "", True, True
        diff = lc.diff_rows(config_diff(parent, config.to_dict()))
        table = dash_table.DataTable(
            id="ctl-diff-table",
            data=diff,
            columns=[{"name": n, "id": n} for n in ("key", "parent", "relaunch")],
            style_cell=SMALL_TABLE,
        )
        note = html.Div("Against the parent (a blank seed is drawn anew at launch):", className="small text-muted")
        return "", [note, table], config_yaml(config), False, False

    @app.callback(
        Output("ctl-download", "data"),
        Input("ctl-download-btn", "n_clicks"),
        State("ctl-yaml", "children"),
        State("ctl-name", "value"),
        prevent_initial_call=True,
    )
    def download(_, text, name):
        if not text:
            return no_update
        return {"content": str(text), "filename": f"{name or 'search'}.yaml", "type": "text/yaml"}


def _register_launch(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ctl-launch-msg", "children"),
        Output("ctl-refresh", "data", allow_duplicate=True),
        Input("ctl-launch", "n_clicks"),
        State("ctl-pick", "value"),
        *[State(i, p) for i, p in WIDGET_PROPS],
        State("ctl-extra", "data"),
        prevent_initial_call=True,
        running=[(Output("ctl-launch", "disabled"), True, False)],  # a double click launches once
    )
    def launch(_, search_id, *values):
        *values, extra = values
        refusal = signed_in_refusal(context, search_id)
        if refusal is not None:
            return refusal, no_update
        if not search_id:
            return dbc.Alert("Pick the search to relaunch first.", color="warning"), no_update
        try:
            _, config, problems = _candidate(context, search_id, _widgets(values), extra, secrets.randbelow(2**31))
        except ResumeError as exc:
            return dbc.Alert(str(exc).splitlines()[0], color="danger"), no_update
        if problems:  # the preview said so already; nothing is written
            return _problems_alert(problems), no_update
        try:
            new_id = submit_search(config, launched_by=context.current_user() or "anonymous")
        except (ExperimentUnusable, StoreUnavailable) as exc:  # said on the page; no run is left waiting
            return dbc.Alert(str(exc).splitlines()[0], color="danger"), no_update
        experiment = context.client.get_run(new_id).info.experiment_id
        link = html.A(new_id, href=f"/?exp={experiment}&search={new_id}", id="ctl-launched-link")
        return dbc.Alert(["launched ", link, " (an agent starts it)"], color="success", id="ctl-launched"), new_id
