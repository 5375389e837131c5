"""The Analyses page: every analysis plugin (``trellis.search.analysis.registry``) over the runs picked in the
shell. Callbacks look up the inputs, ask the context for the analysis' plain data (computed once per store
state, shared by the workers) and draw it with the plugin's own ``figures`` and ``lines``."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, ctx, dcc, html

from trellis.app.context import AppContext
from trellis.search.analysis.registry import ANALYSES

GRAPH_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "svg"}}
HINTS = {  # what an analysis input takes, shown in its empty field
    "objectives": "e.g. val_accuracy:max,latency_ms:min (default: what the searches recorded)",
    "reference": "one number per objective, e.g. 0,100 (default: from the data)",
    "metric": "a metric (default: the recorded objective)",
    "direction": "max or min (default: the recorded one)",
}
MAX_INPUT = 500  # characters of one input (the callback checks refuse longer bodies anyway)


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
            html.Div(id="an-inputs", className="mb-2"),
            html.Div(id="an-lines", className="small mb-2"),
            html.Div(id="an-figures"),
        ],
        id="analyses-page",
    )


def register(app: Dash, context: AppContext) -> None:
    @app.callback(Output("an-inputs", "children"), Input("an-pick", "value"), Input("selection", "data"))
    def inputs(name, selection):
        """One field per input the picked analysis takes (e.g. the objectives of another tool's runs)."""
        analysis = ANALYSES.get(name) if isinstance(name, str) else None
        if analysis is None or not analysis.inputs:
            return []
        view = context.view(context.readable_ids((selection or {}).get("experiments") or []))
        fields = [
            dbc.Col(
                dbc.InputGroup(
                    [
                        dbc.InputGroupText(key),
                        dbc.Input(
                            id={"type": "an-input", "name": key},
                            placeholder=HINTS.get(key, ""),
                            debounce=True,
                            maxLength=MAX_INPUT,
                        ),
                    ],
                    size="sm",
                ),
                md=5,
            )
            for key in analysis.inputs
        ]
        metrics = ", ".join(view.table.metrics[:30]) or "none"
        return [dbc.Row(fields, className="g-2"), html.Div(f"metrics here: {metrics}", className="small text-muted")]

    @app.callback(
        Output("an-lines", "children"),
        Output("an-figures", "children"),
        Input("selection", "data"),
        Input("an-pick", "value"),
        Input("data-version", "data"),
        Input({"type": "an-input", "name": ALL}, "value"),
    )
    def show(selection, name, _version, _values):
        analysis = ANALYSES.get(name) if isinstance(name, str) else None
        if analysis is None:
            return "Pick an analysis.", []
        experiments = (selection or {}).get("experiments") or []
        if not experiments:
            return "Pick an experiment (top right).", []
        fields = ctx.inputs_list[3] if len(ctx.inputs_list) > 3 and isinstance(ctx.inputs_list[3], list) else []
        given = {
            item["id"]["name"]: str(item["value"])[:MAX_INPUT]
            for item in fields
            if isinstance(item, dict) and isinstance(item.get("id"), dict)
            and item.get("value") not in (None, "") and item["id"].get("name") in analysis.inputs
        }  # fmt: skip
        data = context.analysis(name, experiments, (selection or {}).get("searches") or None, given)
        lines = [html.Div(line) for line in analysis.lines(data)]
        return lines, [dcc.Graph(figure=f, config=GRAPH_CONFIG) for f in analysis.figures(data)]
