"""The search-space page's prediction form: the predicted objective ± its calibrated std for a configuration
the user types, and the refined space's predicted objective against the original's (``trellis.layouts.space_predict``
draws them, ``AppContext.space_surrogate`` fits the surrogate once per run state)."""

from __future__ import annotations

from dash import ALL, Dash, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate

from trellis.app.context import AppContext
from trellis.layouts import space_predict as spp
from trellis.layouts.choices import best_quantile, budget_value
from trellis.search.analysis.surrogate import Surrogate, predict


def _surrogate(context: AppContext, selection, metric, direction, params, quantile, budget) -> Surrogate | None:
    """The report's surrogate (``AppContext.space_surrogate``); no update for a metric the runs lack."""
    selection = selection or {"experiments": [], "searches": []}
    view = context.view(selection["experiments"], selection["searches"])
    if not metric or f"metrics.{metric}" not in view.trials:
        raise PreventUpdate
    analysed = (selection, metric, direction or "max", params or None, best_quantile(quantile), budget_value(budget))
    return context.space_surrogate(*analysed)


def register_prediction(app: Dash, context: AppContext) -> None:
    analysed = [
        State("selection", "data"),
        State("sp-metric", "value"),
        State("sp-dir", "value"),
        State("sp-params", "value"),
        State("sp-quantile", "value"),
        State("sp-budget", "value"),
    ]

    @app.callback(
        Output("sp-predict-inputs", "children"),
        Output("sp-refined-prediction", "children"),
        Input("sp-yaml", "children"),
        *analysed,
    )
    def prediction_form(refined_yaml, selection, metric, direction, params, quantile, budget):
        """Once an analysis is shown: the form prefilled with the best run, the refined space's prediction."""
        if not refined_yaml:
            return [], ""
        surrogate = _surrogate(context, selection, metric, direction, params, quantile, budget)
        if surrogate is None:
            return [], "No predictions: too few runs for a surrogate."
        compared = spp.refined_comparison(surrogate, refined_yaml if isinstance(refined_yaml, str) else None)
        return spp.form_rows(surrogate), spp.comparison_text(compared, surrogate) if compared else ""

    @app.callback(
        Output("sp-predict-out", "children"),
        Input("sp-predict-go", "n_clicks"),
        State({"type": spp.INPUT_TYPE, "name": ALL}, "value"),
        *analysed,
        prevent_initial_call=True,
    )
    def predicted(_clicks, values, selection, metric, direction, params, quantile, budget):
        surrogate = _surrogate(context, selection, metric, direction, params, quantile, budget)
        if surrogate is None:
            return "No predictions: too few runs for a surrogate."
        ids = [item.get("id") for item in ctx.states_list[0]] if ctx.states_list else []
        try:
            return spp.prediction_text(predict(surrogate, spp.config_of(ids, values or [])), surrogate)
        except ValueError as exc:
            return html.Span(str(exc), className="text-danger")
