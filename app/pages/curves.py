"""Model analysis page: learning curves of the selected runs, several metrics at once."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from trellis.app.context import AppContext
from trellis.app.shell import query_objective
from trellis.layouts.choices import default_metrics, objective_choice
from trellis.layouts.curves import curves_info, curves_plot
from trellis.layouts.live import LOADING_DELAY_MS, kept_choice
from trellis.layouts.selection import hidden_note, in_view
from trellis.layouts.style import GRAPH_CONFIG
from trellis.search.analysis.objective import user_metrics


def layout(context: AppContext) -> html.Div:
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        [dbc.Label("Metrics", className="small mb-0"), dcc.Dropdown(id="cv-metrics", multi=True)], md=5
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Smoothing (moving average, points)", className="small mb-0"),
                            dcc.Slider(
                                id="cv-smooth",
                                min=1,
                                max=25,
                                step=1,
                                value=1,
                                marks={1: "off", 5: "5", 10: "10", 25: "25"},
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        dbc.RadioItems(
                            id="cv-x",
                            options=[{"label": "by step", "value": "step"}, {"label": "by wall time", "value": "time"}],
                            value="step",
                            inline=True,
                            className="small mt-4",
                        ),
                        md=2,
                    ),
                    dbc.Col(
                        dbc.Checklist(
                            id="cv-log",
                            options=[{"label": "log y", "value": "log"}],
                            value=[],
                            switch=True,
                            className="small mt-4",
                        ),
                        md=2,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id="cv-info", className="small text-muted"),
            dcc.Loading(dcc.Graph(id="cv-graph", config=GRAPH_CONFIG), delay_show=LOADING_DELAY_MS),
        ]
    )


def register(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("cv-metrics", "options"),
        Output("cv-metrics", "value"),
        Input("selection", "data"),
        Input("data-version", "data"),
        State("url", "search"),
        State("cv-metrics", "options"),
        State("cv-metrics", "value"),
    )
    def metric_choices(selection, _version, search, old, current):
        view = context.view(selection["experiments"], selection["searches"])
        metrics = user_metrics(view.table.metrics)
        default = default_metrics(metrics, objective_choice(view.trials, metrics, query_objective(search)))
        if ctx.triggered_id != "data-version":
            return metrics, default
        # The store changed under the page: new metrics join the picker, the user's choice stays.
        value = kept_choice(current, old, metrics, default, multi=True)
        return no_update if metrics == (old or []) else metrics, no_update if value == current else value

    @app.callback(
        Output("cv-graph", "figure"),
        Output("cv-info", "children"),
        Input("selected-runs", "data"),
        Input("cv-metrics", "value"),
        Input("cv-smooth", "value"),
        Input("cv-x", "value"),
        Input("cv-log", "value"),
        Input("selection", "data"),
        Input("data-version", "data"),
    )
    def draw(run_ids, metrics, window, x_axis, log, selection, _version):
        metrics = metrics or []
        view = context.view(selection["experiments"], selection["searches"])
        run_ids, hidden = in_view(run_ids, view.trials["run_id"])
        runs = view.table.runs[view.table.runs["run_id"].isin(run_ids)]
        histories = context.histories(runs["run_id"].tolist(), metrics)
        info = curves_info(
            histories,
            runs,
            metrics,
            x_axis=x_axis or "step",
            window=int(window or 1),
            log_y="log" in (log or []),
            search_labels=view.labels,
        )
        fig = curves_plot(info)
        fig["layout"]["uirevision"] = "keep"
        note = f"{len(runs)} selected runs, {len(histories)} points"
        if info.dropped:
            note += f"; {info.dropped} NaN/inf{' or non-positive' if info.log_y else ''} points left out"
        if hidden:
            note += f"; {hidden_note(hidden)}"
        return fig, note
