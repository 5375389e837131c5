"""The relaunch form's prior view: per parameter, what the prior a prior-guided relaunch takes will do
(``trellis.search.control.prior_view``, drawn by ``trellis.layouts.prior_view``)."""

from __future__ import annotations

from dash import Dash, Input, Output, State, dcc, html

from trellis.app.context import AppContext
from trellis.layouts import control as lc
from trellis.layouts.prior_view import prior_figure
from trellis.search.control.prior_view import prior_view_info
from trellis.search.control.relaunch import spec_uses_prior


def register_prior_view(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("ctl-prior-view", "children"),
        Input("ctl-prior", "data"),
        Input("ctl-params", "data"),
        Input("ctl-guide", "value"),
        Input("ctl-algo", "value"),
        State("ctl-pick", "value"),
        State("selection", "data"),
    )
    def prior_view(prior, table, guidance, algorithm, search_id, selection):
        if not search_id or guidance != "prior" or not isinstance(prior, dict):
            return ""
        if not spec_uses_prior(algorithm):
            return html.Div(f"{algorithm} does not draw from a prior: the relaunch ignores it.", className="small")
        trials = context.view((selection or {}).get("experiments", []), [search_id]).trials
        runs = {c[len("params.") :]: trials[c].tolist() for c in trials.columns if c.startswith("params.")}
        curves = prior_view_info(lc.rows_from_table(table), prior, runs)
        if not curves:
            return ""
        pulled = sum(c.region is not None for c in curves)
        note = (
            f"What the prior does: on {pulled} of {len(curves)} parameters it pulls towards the region the analysis"
            " found (orange: its density over the range, 1 = uniform; ticks or counts: the parent's runs). Pull: the"
            " extra share of draws the region gets over a uniform draw (0 none, 1 all). It fades as the relaunch's"
            " own trials come in; every value keeps some chance."
        )
        graph = dcc.Graph(id="ctl-prior-graph", figure=prior_figure(curves), config={"displaylogo": False})
        return html.Div([html.Div(note, className="small text-muted mt-2"), graph])
