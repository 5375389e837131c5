"""Optimization overview page: counts, best so far, distributions, trade-off with Pareto front, selection."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update

from trellis.app.context import AppContext
from trellis.app.diagnosis import register_panel
from trellis.app.responses import register_shared
from trellis.app.shell import query_objective, with_objective
from trellis.layouts import dense
from trellis.layouts import overview as ov
from trellis.layouts.choices import direction_of, overview_defaults, table_metrics
from trellis.layouts.labels import long_value_tooltips, rerun_column
from trellis.layouts.live import kept_choice
from trellis.layouts.selection import hidden_note, in_view
from trellis.layouts.style import GRAPH_CONFIG
from trellis.search.analysis.objective import user_metrics
from trellis.tracking.links import compare_url


def _metric_select(id_: str, label: str) -> dbc.Col:
    return dbc.Col([dbc.Label(label, className="small mb-0"), dcc.Dropdown(id=id_, clearable=False)], md=2)


def _direction(id_: str) -> dbc.Col:
    return dbc.Col(
        dbc.RadioItems(
            id=id_,
            options=[{"label": "max", "value": "max"}, {"label": "min", "value": "min"}],
            value="max",
            inline=True,
            className="small mt-4",
        ),
        md=1,
    )


def layout(context: AppContext) -> html.Div:
    """The page as one declarative component tree, read top to bottom like the page (long by nature)."""
    return html.Div(
        [
            html.Div(id="ov-diagnosis"),  # the search diagnosis (app.diagnosis), filled by its own callback
            html.Div(id="ov-counts", className="mb-2"),
            dbc.Row(
                [
                    _metric_select("ov-objective", "Objective"),
                    _direction("ov-objective-dir"),
                    _metric_select("ov-x", "Trade-off x"),
                    _direction("ov-x-dir"),
                    _metric_select("ov-y", "Trade-off y"),
                    _direction("ov-y-dir"),
                    _metric_select("ov-dist", "Distribution of"),
                ],
                className="g-2 mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(dcc.Graph(id="ov-best", config=GRAPH_CONFIG), md=6),
                    dbc.Col(dcc.Graph(id="ov-tradeoff", config=GRAPH_CONFIG), md=6),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(dcc.Graph(id="ov-distribution", config=GRAPH_CONFIG), md=6),
                    dbc.Col(
                        html.Div(
                            id="ov-help",
                            className="small text-muted mt-4",
                            children="Box- or lasso-select points on the trade-off plot, or click one, "
                            "to add runs to the selection; the Learning curves page shows them.",
                        ),
                        md=6,
                    ),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.InputGroup(
                            [
                                dbc.InputGroupText("Top"),
                                dbc.Input(id="ov-k", type="number", value=5, min=1, step=1),
                                dbc.Button("Select top-K", id="ov-topk"),
                            ],
                            size="sm",
                        ),
                        md=3,
                    ),
                    dbc.Col(
                        dbc.Button("Clear selection", id="ov-clear", size="sm", color="secondary", outline=True), md=2
                    ),
                    dbc.Col(
                        dbc.Button(
                            "Export runs as CSV",
                            id="ov-export",
                            title="the selected runs, or every run shown when none is selected",
                            size="sm",
                            color="secondary",
                            outline=True,
                        ),
                        md=2,
                    ),
                    dbc.Col(
                        html.A("Compare selected in MLflow ↗", id="ov-compare", target="_blank", className="small"),
                        md=3,
                        className="d-flex align-items-center",
                    ),
                    dcc.Download(id="ov-download"),
                ],
                className="g-2 my-2",
            ),
            html.H6(id="ov-selected-title", className="mt-2"),
            dash_table.DataTable(
                id="ov-table",
                sort_action="native",
                page_size=15,
                markdown_options={"link_target": "_blank"},
                tooltip_duration=None,
                style_table={"overflowX": "auto"},
                style_cell={"fontSize": 12, "maxWidth": 220, "textOverflow": "ellipsis", "overflow": "hidden"},
            ),
        ]
    )


def _counts_card(info: ov.CountsInfo, metric: str | None, context: AppContext) -> dbc.Row:
    badges = [
        dbc.Badge(
            f"{status} {n}",
            color={"FINISHED": "success", "FAILED": "danger", "RUNNING": "info", "KILLED": "warning"}.get(
                status, "secondary"
            ),
            className="me-1",
        )
        for status, n in info.by_status.items()
    ]
    best = "—" if info.best_value is None else f"{info.best_value:.5g}"
    skipped = ", ".join(f"{n} {what}" for what, n in info.skipped.items())
    return dbc.Row(
        [
            dbc.Col(
                html.Div([html.Div("Runs", className="small text-muted"), html.H4(str(info.total), id="ov-total")]),
                md=1,
            ),
            dbc.Col(html.Div([html.Div("Searches", className="small text-muted"), html.H4(str(info.searches))]), md=1),
            dbc.Col(html.Div([html.Div("By status", className="small text-muted"), html.Div(badges)]), md=4),
            dbc.Col(
                html.Div(
                    [
                        html.Div(f"Best {metric or ''}", className="small text-muted"),
                        html.H4(best, id="ov-best-value"),
                        html.Div("final value of each completed run", className="small text-muted"),
                    ]
                ),
                md=2,
            ),
            dbc.Col(
                html.Div(
                    [
                        html.Div("Left out of plots", className="small text-muted"),
                        html.Div(skipped or "nothing", id="ov-skipped", className="small"),
                    ]
                ),
                md=4,
            ),
        ]
    )


def register(app: Dash, context: AppContext) -> None:
    # Read-only callbacks of the selection's runs: users viewing the same runs share their answers.
    for register_part in (_register_metric_choices, _register_render, _register_select_runs, _register_selected_table):
        register_shared(app, register_part, context)
    register_shared(app, register_panel, context, "ov-diagnosis")
    _register_export(app, context)


def _register_metric_choices(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ov-objective", "options"),
        Output("ov-objective", "value"),
        Output("ov-x", "options"),
        Output("ov-x", "value"),
        Output("ov-y", "options"),
        Output("ov-y", "value"),
        Output("ov-dist", "options"),
        Output("ov-dist", "value"),
        Input("selection", "data"),
        Input("data-version", "data"),
        State("url", "search"),
        State("ov-objective", "options"),
        State("ov-objective", "value"),
        State("ov-x", "value"),
        State("ov-y", "value"),
        State("ov-dist", "value"),
    )
    def metric_choices(selection, _version, search, old, *current):
        view = context.view(selection["experiments"], selection["searches"])
        metrics = user_metrics(view.table.metrics)
        d = overview_defaults(view.trials, metrics, query_objective(search))
        defaults = (d.objective, d.x, d.y, d.distribution)
        if ctx.triggered_id != "data-version":
            return metrics, d.objective, metrics, d.x, metrics, d.y, metrics, d.distribution
        # The store changed under the page: new metrics join the pickers, the user's choices stay.
        same = metrics == (old or [])
        out = []
        for value, default in zip(current, defaults, strict=True):
            value_now = kept_choice(value, old, metrics, default)
            out += [no_update if same else metrics, no_update if value_now == value else value_now]
        return tuple(out)

    # Each direction follows its metric (what the search recorded, else the name); the user may then flip it.
    # One callback for the three (one request per page view, not three): only a changed metric's direction moves.
    pickers = ("ov-objective", "ov-x", "ov-y")

    @app.callback(
        [Output(f"{metric_id}-dir", "value") for metric_id in pickers],
        [Input(metric_id, "value") for metric_id in pickers],
        State("selection", "data"),
    )
    def follow_metrics(objective, x, y, selection):
        changed = {p.split(".")[0] for p in ctx.triggered_prop_ids} if ctx.triggered_id else set(pickers)
        trials = context.view(selection["experiments"], selection["searches"]).trials
        return [
            direction_of(trials, metric) if metric_id in changed else no_update
            for metric_id, metric in zip(pickers, (objective, x, y), strict=True)
        ]

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("ov-objective", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def share_objective(objective, search):
        """The objective goes in the URL, so the other pages (and a shared link) start from it."""
        query = with_objective(search, objective)
        return query if query != (search or "") else no_update


def _register_render(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ov-counts", "children"),
        Output("ov-best", "figure"),
        Output("ov-distribution", "figure"),
        Output("ov-tradeoff", "figure"),
        Input("selection", "data"),
        Input("ov-objective", "value"),
        Input("ov-objective-dir", "value"),
        Input("ov-x", "value"),
        Input("ov-x-dir", "value"),
        Input("ov-y", "value"),
        Input("ov-y-dir", "value"),
        Input("ov-dist", "value"),
        Input("reload", "n_clicks"),
        Input("selected-runs", "data"),
        Input("data-version", "data"),
    )
    def render(selection, objective, obj_dir, x, x_dir, y, y_dir, dist, _, selected, _version):
        view = context.view(selection["experiments"], selection["searches"])
        return render_overview(view, objective, obj_dir, x, x_dir, y, y_dir, dist, context, selected)


def _register_select_runs(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("selected-runs", "data"),
        Input("ov-tradeoff", "selectedData"),
        Input("ov-tradeoff", "clickData"),
        Input("ov-topk", "n_clicks"),
        Input("ov-clear", "n_clicks"),
        State("ov-k", "value"),
        State("ov-objective", "value"),
        State("ov-objective-dir", "value"),
        State("ov-x", "value"),
        State("ov-y", "value"),
        State("selection", "data"),
        State("selected-runs", "data"),
        prevent_initial_call=True,
    )
    def select_runs(selected, clicked, _topk, _clear, k, objective, direction, x, y, selection, current):
        trigger = ctx.triggered_id
        if trigger == "ov-clear":
            return []
        if trigger == "ov-topk":
            view = context.view(selection["experiments"], selection["searches"])
            return ov.top_k(view.trials, objective, direction, int(k or 5))
        if trigger == "ov-tradeoff":
            prop = ctx.triggered[0]["prop_id"].split(".")[-1]
            event = selected if prop == "selectedData" else clicked
            box = dense.box_of(event) if prop == "selectedData" else None
            view = context.view(selection["experiments"], selection["searches"]) if box else None
            if box and view is not None and dense.is_dense(len(view.trials)):  # drawn as density: every run counts
                return ov.runs_in_box(view.trials, x or objective, y or objective, box, objective, direction)
            if not event or not event.get("points"):
                # The graph reports "nothing selected" (no event, or no points) when it redraws, also when a
                # new selection drops plotly's own box: keep the selection (Clear empties it).
                return no_update
            ids = ov.run_ids_from_selection(event)
            if prop == "clickData":
                return list(dict.fromkeys([*(current or []), *ids]))
            return ids
        return no_update


def _register_selected_table(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ov-table", "data"),
        Output("ov-table", "columns"),
        Output("ov-selected-title", "children"),
        Output("ov-compare", "href"),
        Output("ov-table", "tooltip_data"),
        Input("selected-runs", "data"),
        Input("selection", "data"),
        Input("ov-objective", "value"),
        Input("data-version", "data"),
    )
    def selected_table(run_ids, selection, objective, _version):
        view = context.view(selection["experiments"], selection["searches"])
        run_ids, hidden = in_view(run_ids, view.trials["run_id"])
        metrics = table_metrics(view.table.metrics, objective)
        rows, columns = ov.selected_rows(
            view.table.runs, run_ids, view.table.params, metrics, context.run_link, view.labels
        )
        rows, columns = rerun_column(rows, columns, view.table.runs, context.tracking_uri)
        title = f"Selected runs ({len(rows)})" if rows else "No runs selected yet"
        if hidden:
            title = [title, html.Span(f" · {hidden_note(hidden)}", id="ov-selection-hidden", className="text-muted")]
        exps = sorted(view.table.runs.loc[view.table.runs["run_id"].isin(run_ids or []), "experiment_id"].unique())
        href = compare_url(context.mlflow_ui_url, exps, run_ids) if rows and context.mlflow_ui_url else None
        return rows, columns, title, href, long_value_tooltips(rows)


def _register_export(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ov-download", "data"),
        Input("ov-export", "n_clicks"),
        State("selection", "data"),
        State("selected-runs", "data"),
        prevent_initial_call=True,
    )
    def export(_, selection, selected):
        view = context.view(selection["experiments"], selection["searches"])
        frame = ov.export_runs(view.table.runs, view.trials["run_id"].tolist(), selected)
        return dcc.send_data_frame(frame.to_csv, "trellis-runs.csv", index=False)


def render_overview(view, objective, obj_dir, x, x_dir, y, y_dir, dist, context: AppContext, selected=None):
    """Everything the overview draws for one view (a plain function: the benchmark times it)."""
    trials, labels = view.trials, view.labels
    selected, _ = in_view(selected, trials["run_id"])
    plotted = [objective, dist or objective, x or objective, y or objective]
    counts = ov.counts_info(trials, objective, obj_dir or "max", ov.left_out(trials, plotted, view.table.skipped))
    if not objective:
        empty = ov.empty_figure("No metrics in these runs")
        return _counts_card(counts, objective, context), empty, empty, empty
    best = ov.best_so_far_plot(ov.best_so_far_info(trials, objective, obj_dir, labels), selected)
    distribution = ov.distribution_plot(ov.distribution_info(trials, dist or objective, labels))
    tradeoff_info = ov.tradeoff_info(trials, x or objective, y or objective, x_dir, y_dir, labels, selected)
    tradeoff = ov.tradeoff_plot(tradeoff_info, selected)
    for fig in (best, distribution, tradeoff):
        fig["layout"].update(uirevision="keep", height=380)
    return _counts_card(counts, objective, context), best, distribution, tradeoff
