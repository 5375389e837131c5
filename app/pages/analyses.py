"""The Analyses page: every analysis plugin (``trellis.search.analysis.registry``) over the runs picked in the
shell. Callbacks look up the inputs, ask the context for the analysis' plain data (computed once per store
state, shared by the workers) and draw it with the plugin's own ``figures`` and ``lines``."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html

from trellis.app.context import AppContext
from trellis.search.analysis.registry import ANALYSES

GRAPH_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "svg"}}


def layout(context: AppContext) -> html.Div:
    options = [{"label": a.label, "value": a.name, "title": a.description} for a in ANALYSES.values()]
    return html.Div(
        [
            html.H5("Analyses"),
            dbc.Row(
                dbc.Col(
                    dcc.Dropdown(id="an-pick", options=options, value=options[0]["value"] if options else None),
                    md=4,
                ),
                className="mb-2",
            ),
            html.Div(id="an-lines", className="small mb-2"),
            html.Div(id="an-figures"),
        ],
        id="analyses-page",
    )


def register(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("an-lines", "children"),
        Output("an-figures", "children"),
        Input("selection", "data"),
        Input("an-pick", "value"),
        Input("data-version", "data"),
    )
    def show(selection, name, _version):
        analysis = ANALYSES.get(name) if isinstance(name, str) else None
        if analysis is None:
            return "Pick an analysis.", []
        experiments = (selection or {}).get("experiments") or []
        if not experiments:
            return "Pick an experiment (top right).", []
        data = context.analysis(name, experiments, (selection or {}).get("searches") or None)
        lines = [html.Div(line) for line in analysis.lines(data)]
        return lines, [dcc.Graph(figure=f, config=GRAPH_CONFIG) for f in analysis.figures(data)]
