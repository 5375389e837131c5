"""Model overview page (``/models``): the trained architectures by score and size, their Pareto front and a map
by structure; pick a model to see its layers (glyphs), its children and to launch its ablation or variations
(a search an agent runs, as from the control panel: the same sign-in, permission and allow-list checks).

Callbacks look up their inputs, call ``trellis.search.analysis.models`` (memoised per store state) and
``trellis.layouts.models``.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import numpy as np
from dash import Dash, Input, Output, State, ctx, dcc, html

from trellis.app.context import AppContext
from trellis.app.page_parts import StateMemo, register_objective_choices
from trellis.app.pages import models_card, models_drawer
from trellis.app.responses import register_shared
from trellis.layouts.curves import curves_info, curves_plot
from trellis.layouts.live import LOADING_DELAY_MS
from trellis.layouts.models import (
    _get_class_accuracy_plot,
    _get_confusion_plot,
    _get_map_plot,
    _get_overview_plot,
    glyph_legend,
)
from trellis.layouts.style import GRAPH_CONFIG, empty_figure
from trellis.search.analysis.model_inspection import _get_inspection_info, class_accuracy, prediction_map
from trellis.search.analysis.models import ModelsInfo, _get_models_info, active_children_searches, children_queue
from trellis.search.control.model_children import CHANGES, MAX_VARIATIONS
from trellis.tracking import schema
from trellis.tracking.predictions import PredictionsReader

MEMO_ENTRIES = 4
SCORE_OPTION = [{"label": "the score", "value": "score"}]
CURVE_METRICS = ("train_loss", "val_loss")


def _graph(id_: str) -> dcc.Loading:
    return dcc.Loading(dcc.Graph(id=id_, config=GRAPH_CONFIG), delay_show=LOADING_DELAY_MS)


def _plot_column(title: str, help_text: str, graph_id: str, width: int) -> dbc.Col:
    return dbc.Col(
        [html.H6(title, className="mt-3 mb-0"), html.Div(help_text, className="small text-muted"), _graph(graph_id)],
        md=width,
    )


def layout(context: AppContext) -> html.Div:
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        [dbc.Label("Score", className="small mb-0"), dcc.Dropdown(id="md-objective", clearable=False)],
                        md=3,
                    ),
                    dbc.Col(
                        dbc.RadioItems(
                            id="md-direction",
                            options=[{"label": "max", "value": "max"}, {"label": "min", "value": "min"}],
                            value="max",
                            inline=True,
                            className="small mt-4",
                        ),
                        md=2,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Darkness", className="small mb-0"),
                            dcc.Dropdown(id="md-colour", value="score", clearable=False, options=SCORE_OPTION),
                        ],
                        md=2,
                    ),
                    dbc.Col(
                        dbc.RadioItems(
                            id="md-map-kind",
                            options=[
                                {"label": "map by structure", "value": "structure"},
                                {"label": "by predictions", "value": "predictions"},
                            ],
                            value="structure",
                            inline=True,
                            className="small mt-4",
                        ),
                        md=4,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id="md-info", className="small text-muted"),
            glyph_legend(),
            dbc.Row(
                [
                    _plot_column(
                        "Score against size",
                        "Darker: better; larger: more parameters; the line is the Pareto front. "
                        "Diamonds are children of an ablation or variation. Click a model to pick it.",
                        "md-overview",
                        7,
                    ),
                    _plot_column(
                        "Architectures in 2-D",
                        "By structure: close when few layer edits apart (an edit distance of the layer "
                        "sequences). By predictions: close when they label the held-out examples alike.",
                        "md-map",
                        5,
                    ),
                ]
            ),
            html.Div(id="md-card", className="mt-2"),
            html.Div(id="md-queue-msg", className="mt-1"),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.RadioItems(
                            id="md-kind",
                            options=[
                                {"label": "ablation (each layer removed in turn)", "value": "ablation"},
                                {"label": "variations (one random change each)", "value": "variation"},
                            ],
                            value="ablation",
                            className="small",
                        ),
                        md=4,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Variations", className="small mb-0"),
                            dbc.Input(id="md-n", type="number", min=1, max=MAX_VARIATIONS, step=1, value=6, size="sm"),
                            dbc.Checklist(
                                id="md-changes",
                                options=[{"label": c, "value": c} for c in CHANGES],
                                value=list(CHANGES),
                                inline=True,
                                className="small",
                            ),
                            dbc.Input(
                                id="md-layers",
                                placeholder="layers that may change, e.g. 0,2 (empty: all)",
                                size="sm",
                                debounce=True,
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        dbc.Button("Train the children", id="md-launch", size="sm", color="primary", disabled=True),
                        md=2,
                        className="mt-3",
                    ),
                    models_drawer.buttons(),
                ],
                className="g-2 mt-2",
            ),
            html.Div(id="md-launch-msg", className="mt-2"),
            html.Div(
                [
                    html.H6("The picked model on the held-out examples", className="mt-3 mb-0"),
                    html.Div(id="md-inspect-note", className="small text-muted"),
                    dbc.Row(
                        [
                            dbc.Col(_graph("md-confusion"), md=4),
                            dbc.Col(_graph("md-classes"), md=4),
                            dbc.Col(_graph("md-curves"), md=4),
                        ]
                    ),
                ]
            ),
            models_drawer.section(),
            dcc.Store(id="md-selected"),
        ]
    )


def _models_info(view, _searches, objective: str, direction: str) -> ModelsInfo | str:
    runs = view.table.runs
    configs = runs.loc[runs["kind"] == "search", "trellis_config"]
    return _get_models_info(view.trials, view.table.params, objective, direction, configs)


def register(app: Dash, context: AppContext) -> None:
    memo = StateMemo(_models_info, MEMO_ENTRIES)
    reader = PredictionsReader(lambda: context.client)
    register_shared(app, register_objective_choices, context, "md-objective", "md-direction")
    register_shared(app, _register_render, context, memo, reader)
    register_shared(app, _register_inspection, context, reader)
    models_drawer.register(
        app, lambda selection, objective, direction: memo.get(context, selection, objective, _direction(direction))
    )
    models_card.register_launch(app, context)
    models_card.register_queue(app, context)


def _queue(context: AppContext, runs, selected: str) -> list:
    """The picked model's children searches; the queue of those still to run read fresh from the store (a
    reorder changes only a tag, which the run cache does not see)."""
    queues = {}
    for search_id in active_children_searches(runs, selected):
        try:
            queues[search_id] = context.client.get_run(search_id).data.tags.get(schema.ORIGIN_QUEUE, "")
        except Exception:  # a store hiccup: the cached order is shown
            continue
    return children_queue(runs, selected, queues)


def _direction(value) -> str:
    return value if value in ("max", "min") else "max"


def _picked(click, current):
    """The run id a click on either graph names (a point of the models traces), else the current one."""
    points = (click or {}).get("points") or []
    run_id = points[0].get("customdata") if points else None
    return run_id if isinstance(run_id, str) else current


def _register_render(app: Dash, context: AppContext, memo: StateMemo, reader: PredictionsReader) -> None:
    @app.callback(
        Output("md-overview", "figure"),
        Output("md-map", "figure"),
        Output("md-info", "children"),
        Output("md-card", "children"),
        Output("md-launch", "disabled"),
        Output("md-colour", "options"),
        Input("selection", "data"),
        Input("md-objective", "value"),
        Input("md-direction", "value"),
        Input("md-selected", "data"),
        Input("md-colour", "value"),
        Input("md-map-kind", "value"),
        Input("data-version", "data"),
        Input("md-queue-msg", "children"),  # a reorder or cancel: the card shows the new queue at once
        Input("md-launch-msg", "children"),  # a launch: its queue at once
    )
    def render(selection, objective, direction, selected, colour, map_kind, _version, _queued, _launched):
        if not isinstance(objective, str):
            empty = empty_figure("No metrics in these runs")
            return empty, empty, "No metrics in these runs", None, True, SCORE_OPTION
        info = memo.get(context, selection, objective, _direction(direction))
        if isinstance(info, str):
            empty = empty_figure(info)
            return empty, empty, info, None, True, SCORE_OPTION
        selected = selected if selected in info.run_ids else None
        runs = context.view(selection["experiments"], selection["searches"]).table.runs
        best = info.run_ids[int(np.nanargmax(info.score if info.direction == "max" else -info.score))]
        sample = reader.get(selected or best)
        classes = [] if sample is None else sorted(set(sample[1].tolist()))
        options = SCORE_OPTION + [{"label": f"accuracy on class {c}", "value": str(c)} for c in classes]
        overview = _get_overview_plot(info, selected)
        if isinstance(colour, str) and colour.isdigit() and int(colour) in classes:
            predictions = reader.get_many(info.run_ids)
            by_class = class_accuracy(predictions, info.run_ids, int(colour))
            overview = _get_overview_plot(info, selected, by_class, f"class {colour}")
        if map_kind == "predictions":
            predictions = reader.get_many(info.run_ids)
            children = np.array([bool(o) for o in info.origin_model])
            coords, drawn = prediction_map(predictions, info.run_ids, children)
            map_figure = _get_map_plot(info, selected, coords, drawn, "predictions")
        else:
            map_figure = _get_map_plot(info, selected)
        return (
            overview,
            map_figure,
            info_line(info),
            models_card.model_card(info, selected, _queue(context, runs, selected) if selected else []),
            selected is None,
            options,
        )

    @app.callback(
        Output("md-selected", "data"),
        Input("md-overview", "clickData"),
        Input("md-map", "clickData"),
        Input("md-drawer-list", "value"),
        State("md-selected", "data"),
    )
    def pick(overview_click, map_click, drawer_choice, current):
        if ctx.triggered_id == "md-drawer-list":
            return drawer_choice if isinstance(drawer_choice, str) else current
        return _picked(overview_click if ctx.triggered_id == "md-overview" else map_click, current)


def _register_inspection(app: Dash, context: AppContext, reader: PredictionsReader) -> None:
    @app.callback(
        Output("md-confusion", "figure"),
        Output("md-classes", "figure"),
        Output("md-curves", "figure"),
        Output("md-inspect-note", "children"),
        Input("md-selected", "data"),
        Input("md-objective", "value"),
        State("selection", "data"),
    )
    def inspect(selected, objective, selection):
        view = context.view(selection["experiments"], selection["searches"])
        rows = view.trials[view.trials["run_id"] == selected] if isinstance(selected, str) else view.trials.iloc[:0]
        if rows.empty:  # nothing picked, or not a run of this view: nothing is read
            empty = empty_figure("Pick a model")
            return empty, empty, empty, ""
        found = reader.get(selected)
        metrics = [m for m in (objective, *CURVE_METRICS) if isinstance(m, str) and m in view.table.metrics]
        curves = curves_plot(
            curves_info(context.histories([selected], metrics), rows, metrics, search_labels=view.labels)
        )
        if found is None:
            none = empty_figure("This run kept no held-out predictions (artifact trial/predictions.json)")
            return none, none, curves, ""
        info = _get_inspection_info(*found)
        note = f"{info.n} held-out examples, accuracy {info.accuracy:.1%}; curves: {', '.join(metrics)}"
        return _get_confusion_plot(info), _get_class_accuracy_plot(info), curves, note


def info_line(info: ModelsInfo) -> str:
    children = sum(1 for o in info.origin_model if o)
    parts = [f"{len(info.run_ids)} models ({children} children)", f"{int(info.pareto.sum())} on the Pareto front"]
    if info.note:
        parts.append(info.note)
    return " · ".join(parts)
