"""Search-space overview page: parallel coordinates (brushable), fANOVA importance, marginals, bounds.

Over 400 lines: its callbacks share the page's report memo and brushing state; its figures live in
``trellis.layouts.space`` and its analysis in ``trellis.search.analysis``.
"""

from __future__ import annotations

import time
from dataclasses import replace

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from trellis.app.context import AppContext
from trellis.app.pages.space_predict import register_prediction
from trellis.app.responses import not_shared, register_shared
from trellis.app.shared_results import Pending
from trellis.app.shell import query_objective, with_objective
from trellis.layouts import space as sp
from trellis.layouts import space_predict as spp
from trellis.layouts import verdicts as lv
from trellis.layouts.choices import (
    best_quantile,
    budget_options,
    budget_value,
    clicked_params,
    direction_of,
    kept,
    kept_params,
    objective_choice,
    r2_trust,
)
from trellis.layouts.live import LOADING_DELAY_MS, detail_click, ended_state, kept_choice
from trellis.layouts.style import GRAPH_CONFIG, empty_figure
from trellis.search.analysis.budgets import budget_levels
from trellis.search.analysis.objective import user_metrics
from trellis.search.analysis.report import SpaceReport
from trellis.tracking.memo import Memo

QUANTILES = [
    {"label": "all runs", "value": 1.0},
    {"label": "best 50%", "value": 0.5},
    {"label": "best 25%", "value": 0.25},
    {"label": "best 10%", "value": 0.1},
]
# The page's display controls keep the user's choice for the browser session: leaving the page and coming
# back shows the same view (Dash stores what the user picked in sessionStorage).
KEEP = {"persistence": True, "persistence_type": "session"}


def layout(context: AppContext) -> html.Div:
    """The page as one declarative component tree, read top to bottom like the page (long by nature)."""
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        [dbc.Label("Metric", className="small mb-0"), dcc.Dropdown(id="sp-metric", clearable=False)],
                        md=2,
                    ),
                    dbc.Col(
                        dbc.RadioItems(
                            id="sp-dir", options=["max", "min"], value="max", inline=True, className="small mt-4"
                        ),
                        md=1,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Parameters (axes and importance)", className="small mb-0"),
                            dcc.Dropdown(id="sp-params", multi=True),
                        ],
                        md=4,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Runs", className="small mb-0"),
                            dcc.Dropdown(id="sp-quantile", options=QUANTILES, value=1.0, clearable=False, **KEEP),
                        ],
                        md=2,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Other metric axes", className="small mb-0"),
                            dcc.Dropdown(id="sp-extra-metrics", multi=True, **KEEP),
                        ],
                        md=3,
                    ),
                ],
                className="g-2 mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Checklist(
                            id="sp-bands",
                            options=[{"label": "suggested bounds as brushes", "value": "on"}],
                            value=[],
                            switch=True,
                            className="small",
                            **KEEP,
                        ),
                        md=3,
                    ),
                    dbc.Col(
                        dbc.InputGroup(
                            [
                                dbc.InputGroupText("Top-K mask"),
                                dbc.Input(id="sp-topk", type="number", min=1, step=1, placeholder="off", **KEEP),
                            ],
                            size="sm",
                        ),
                        md=3,
                    ),
                    dbc.Col(
                        html.Div(
                            dcc.Dropdown(
                                id="sp-budget",
                                options=budget_options({}),
                                value="auto",
                                clearable=False,
                                className="small",
                                **KEEP,
                            ),
                            title="Compare runs at one budget (epochs, steps): runs cut earlier are left out",
                        ),
                        md=3,
                    ),
                    dbc.Col(html.Div(id="sp-notes", className="small text-muted"), md=3),
                ],
                className="g-2 mb-1",
            ),
            # The analysis computed in the background: its progress, polled while it runs.
            html.Div(id="sp-progress"),
            dcc.Interval(id="sp-poll", interval=1000, disabled=True),
            dcc.Store(id="sp-ready"),  # "ready" or "pending": the parallel coordinates follow it
            dcc.Store(id="sp-brushes", data={}),  # the user's brushes by axis label, kept across redraws
            # The user's parameters and direction for these runs, kept for the browser session.
            dcc.Store(id="sp-kept-params", storage_type="session"),
            dcc.Store(id="sp-kept-dir", storage_type="session"),
            dcc.Loading(dcc.Graph(id="sp-parcoords", config=GRAPH_CONFIG), delay_show=LOADING_DELAY_MS),
            html.Div(
                "Brush any axis to select runs (shared with the other pages).",
                id="sp-brushed",
                className="small text-muted mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            html.H6("Importance (fANOVA): click a row for its marginal"),
                            dcc.Loading(
                                dcc.Graph(id="sp-importance", config=GRAPH_CONFIG), delay_show=LOADING_DELAY_MS
                            ),
                        ],
                        md=6,
                    ),
                    dbc.Col(
                        [
                            html.H6(id="sp-detail-title"),
                            dcc.Loading(dcc.Graph(id="sp-detail", config=GRAPH_CONFIG), delay_show=LOADING_DELAY_MS),
                        ],
                        md=6,
                    ),
                ]
            ),
            html.H6(
                "Advice: one verdict per parameter (keep, narrow, widen or fix), and the refined space",
                className="mt-3",
            ),
            html.Div(id="sp-r2", className="mb-1"),
            html.Div(
                [
                    dcc.Clipboard(
                        target_id="sp-yaml",
                        title="copy the refined space",
                        id="sp-copy",
                        style={"float": "right", "fontSize": 20},
                    ),
                    html.Pre(id="sp-yaml", className="small bg-light p-2 border"),
                ],
            ),
            html.Div(id="sp-refined-prediction", className="small text-muted mb-2"),
            dcc.Loading(spp.prediction_panel(), delay_show=LOADING_DELAY_MS),
        ]
    )


def _key(selection) -> list:
    """What a kept control belongs to: the experiments and searches shown."""
    selection = _selection_key(selection)
    return [list(selection["experiments"]), list(selection["searches"])]


def _selection_key(selection):
    return selection or {"experiments": [], "searches": []}


class SteadyReports:
    """The space analysis of a view, reused (per process) while none of its runs ended.

    A running search changes its running runs' metrics at every live refresh, which would redo the fANOVA
    and bounds (most of a second) every few seconds; the analysis follows the runs as they end instead.
    A change of metric, direction, parameters or runs shown is another analysis, computed afresh.
    """

    def __init__(self, context: AppContext, entries: int = 16, wait_s: float | None = None) -> None:
        self.context = context
        self._last: Memo = Memo(entries)
        self.wait_s = wait_s  # None: wait for the analysis; else ``Pending`` past that many seconds

    def __call__(self, selection, metric, direction, params, quantile, budget=None) -> SpaceReport | Pending:
        selection = _selection_key(selection)
        direction, quantile, budget = direction or "max", best_quantile(quantile), budget_value(budget)
        view = self.context.view(selection["experiments"], selection["searches"])
        if f"metrics.{metric}" not in view.trials:  # not a metric of these runs (the picker offers only those)
            raise PreventUpdate
        key = (*map(tuple, _key(selection)), metric, direction, tuple(params or ()), quantile, budget)
        ended = ended_state(view.trials)
        kept_report = self._last.get(key)
        if kept_report is not None and kept_report[0] == ended:
            return kept_report[1]
        if self.wait_s is None:
            report = self.context.space_report(selection, metric, direction, params, quantile, budget=budget)
        else:
            wait = self.wait_s
            report = self.context.space_report(selection, metric, direction, params, quantile, wait, budget)
        if isinstance(report, Pending):  # meanwhile the page shows the analysis before the last run ended
            return replace(report, previous=kept_report[1] if kept_report else None)
        self._last.put(key, (ended, report))
        return report


def register(app: Dash, context: AppContext) -> None:
    # Every callback here is read-only on the selection's runs: users viewing the same runs share answers.
    reports = SteadyReports(context, wait_s=context.analysis_wait_s)
    register_shared(app, _register_choices, context)
    register_shared(app, _register_analysis, reports)
    register_shared(app, _register_parcoords, context, reports)
    register_shared(app, _register_brushed, context, reports)
    register_shared(app, _register_detail, reports)
    register_shared(app, register_prediction, context)


def _register_choices(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("sp-metric", "options"),
        Output("sp-metric", "value"),
        Output("sp-params", "options"),
        Output("sp-params", "value"),
        Output("sp-extra-metrics", "options"),
        Input("selection", "data"),
        Input("data-version", "data"),
        State("url", "search"),
        State("sp-kept-params", "data"),
        State("sp-metric", "options"),
        State("sp-metric", "value"),
        State("sp-params", "options"),
        State("sp-params", "value"),
    )
    def choices(selection, _version, search, kept_params_data, old_metrics, metric_now, old_params, params_now):
        view = context.view(selection["experiments"], selection["searches"])
        metrics = user_metrics(view.table.metrics)
        metric = objective_choice(view.trials, metrics, query_objective(search))
        params = view.table.params
        chosen = kept_params(kept_params_data, _key(selection), params)
        if ctx.triggered_id != "data-version":
            return metrics, metric, params, chosen, metrics
        # The store changed under the page: new metrics and parameters are offered, the user's choices stay.
        metric = kept_choice(metric_now, old_metrics, metrics, metric)
        chosen = kept_choice(params_now, old_params, params, chosen, multi=True)
        new_metrics = no_update if metrics == (old_metrics or []) else metrics
        return (
            new_metrics,
            no_update if metric == metric_now else metric,
            no_update if params == (old_params or []) else params,
            no_update if chosen == params_now else chosen,
            new_metrics,
        )

    @app.callback(
        Output("sp-dir", "value"),
        Input("sp-metric", "value"),
        State("selection", "data"),
        State("sp-kept-dir", "data"),
    )
    def follow_metric(metric, selection, kept_dir):
        """The direction follows the metric (recorded, else its name); the user may then flip it (kept)."""
        recorded = direction_of(context.view(selection["experiments"], selection["searches"]).trials, metric)
        return kept(kept_dir, [*_key(selection), metric], recorded)

    @app.callback(
        Output("sp-budget", "options"),
        Input("sp-metric", "value"),
        Input("selection", "data"),
        Input("data-version", "data"),
    )
    def budgets(metric, selection, _version):
        """The budgets the runs ended at (Hyperband rungs, early-stopping steps, PBT members), to compare at."""
        trials = context.view(selection["experiments"], selection["searches"]).trials
        return budget_options(budget_levels(trials, metric) if metric else {})

    @app.callback(
        Output("sp-kept-params", "data"),
        Input("sp-params", "value"),
        State("selection", "data"),
        prevent_initial_call=True,
    )
    def keep_params(params, selection):
        return {"key": _key(selection), "value": params} if params is not None else no_update

    @app.callback(
        Output("sp-kept-dir", "data"),
        Input("sp-dir", "value"),
        State("sp-metric", "value"),
        State("selection", "data"),
        prevent_initial_call=True,
    )
    def keep_direction(direction, metric, selection):
        return {"key": [*_key(selection), metric], "value": direction} if metric else no_update

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("sp-metric", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def share_objective(metric, search):
        query = with_objective(search, metric)
        return query if query != (search or "") else no_update


def _register_analysis(app: Dash, reports: SteadyReports) -> None:
    @app.callback(
        Output("sp-importance", "figure"),
        Output("sp-r2", "children"),
        Output("sp-yaml", "children"),
        Output("sp-notes", "children"),
        Output("sp-progress", "children"),
        Output("sp-poll", "disabled"),
        Output("sp-ready", "data"),
        Input("selection", "data"),
        Input("sp-metric", "value"),
        Input("sp-dir", "value"),
        Input("sp-params", "value"),
        Input("sp-quantile", "value"),
        Input("sp-budget", "value"),
        Input("data-version", "data"),
        Input("sp-poll", "n_intervals"),
    )
    def analysis(selection, metric, direction, params, quantile, budget, _version, _poll):
        if not metric:
            return empty_figure("No metrics in these runs"), "", "", "", "", True, "ready"
        found = reports(selection, metric, direction, params, quantile, budget)
        polled = ctx.triggered_id == "sp-poll"
        if isinstance(found, Pending):
            not_shared()  # the progress line is stale at once; the finished analysis is kept
            progress = _progress(sp.progress_text(found.runs, time.time() - found.since, found.previous is not None))
            if polled:  # what is drawn stays; only the progress line moves
                return no_update, no_update, no_update, no_update, progress, False, no_update
            if found.previous is None:
                return empty_figure("Computing the analysis…"), "", "", "", progress, False, "pending"
            return (*_analysis_outputs(found.previous, metric, refresh=True), progress, False, "ready")
        # Done (a poll ends only here): "ready" again makes the parallel coordinates redraw with it.
        refresh = ctx.triggered_id in ("data-version", "sp-poll")  # a clicked row stays
        return (*_analysis_outputs(found, metric, refresh=refresh), "", True, "ready")


def _analysis_outputs(report: SpaceReport, metric: str, refresh: bool) -> tuple:
    """The importance figure, the fit's trust line with the verdicts, the refined space and the notes."""
    notes = "; ".join(f"{n} {what}" for what, n in report.data.notes.items())
    verdicts = lv.verdict_table(report.verdicts)
    if report.problem:
        said = [dbc.Alert(report.problem, color="warning"), verdicts]
        return empty_figure(report.problem), said, report.refined_yaml or "", notes
    b = report.bounds
    trust = r2_trust(b.r2, b.r2_std)
    r2 = html.Span(
        [
            dbc.Badge(trust.text, color=trust.level, id="sp-r2-badge", className="me-2"),
            f"10-fold cross-validated fit of the forest on {b.n_runs} runs: how far to trust the "
            "verdicts below (and the importance above).",
        ]
    )
    importance = sp.importance_plot(report.importance)
    # A live refresh of the same analysis: the marginal below keeps the row the user clicked.
    importance["layout"].update(meta={"refresh": refresh}, uirevision=metric)
    return importance, [r2, verdicts], report.refined_yaml, notes


def _register_parcoords(app: Dash, context: AppContext, reports: SteadyReports) -> None:
    @app.callback(
        Output("sp-parcoords", "figure"),
        Input("selection", "data"),
        Input("sp-metric", "value"),
        Input("sp-dir", "value"),
        Input("sp-params", "value"),
        Input("sp-quantile", "value"),
        Input("sp-budget", "value"),
        Input("sp-bands", "value"),
        Input("sp-topk", "value"),
        Input("sp-extra-metrics", "value"),
        Input("selected-runs", "data"),
        Input("data-version", "data"),
        Input("sp-ready", "data"),
        State("sp-brushes", "data"),
    )
    def parcoords(
        selection, metric, direction, params, quantile, budget, bands, top_k, extra, selected, _version, _ready, brushes
    ):
        """Drawing never changes the selection: bands and the top-K mask only show as brushes."""
        analysed = (selection, metric, direction, params, quantile, budget)
        info = _parcoords_info(context, reports, analysed, bands, top_k, extra)
        if info is PENDING:
            return empty_figure("The parallel coordinates follow the analysis (ordered by importance)…")
        if info is None:
            return empty_figure("No runs with a finite value of the chosen metric")
        # No uirevision here: the user's brushes are redrawn by parameter (sp-brushes), also when a refresh
        # reorders the axes; plotly's kept UI state would follow the axis index instead.
        return sp.parcoords_plot(info, selected, sp.screen_constraints(info, brushes))


MAX_SELECTION = 5000  # runs a brush selects at most: the best inside it (the selection is shared by every page)


def _register_brushed(app: Dash, context: AppContext, reports: SteadyReports) -> None:
    @app.callback(
        Output("selected-runs", "data", allow_duplicate=True),
        Output("sp-brushed", "children"),
        Output("sp-brushes", "data"),
        Input("sp-parcoords", "restyleData"),
        State("sp-brushes", "data"),
        State("selection", "data"),
        State("sp-metric", "value"),
        State("sp-dir", "value"),
        State("sp-params", "value"),
        State("sp-quantile", "value"),
        State("sp-budget", "value"),
        State("sp-bands", "value"),
        State("sp-topk", "value"),
        State("sp-extra-metrics", "value"),
        prevent_initial_call=True,
    )
    def brushed(event, brushes, selection, metric, direction, params, quantile, budget, bands, top_k, extra):
        """A user's brush (and only that) makes the runs inside every brush on screen the selection."""
        analysed = (selection, metric, direction, params, quantile, budget)
        info = _parcoords_info(context, reports, analysed, bands, top_k, extra)
        if info is None or info is PENDING:
            return no_update, "", no_update
        brushes, on_screen = sp.apply_brush(info, event, brushes or {})
        if not on_screen:
            return no_update, "Brush any axis to select runs (shared with the other pages).", brushes
        ids, inside = sp.brushed_selection(info, on_screen, MAX_SELECTION)
        note = f"{inside} of {len(info.run_ids)} runs inside the brushed ranges (now the selection)."
        if inside > len(ids):
            note = note[:-2] + f"; the selection holds the best {len(ids)} of them)."
        return ids, note, brushes


def _register_detail(app: Dash, reports: SteadyReports) -> None:
    @app.callback(
        Output("sp-detail", "figure"),
        Output("sp-detail-title", "children"),
        Input("sp-importance", "clickData"),
        Input("sp-importance", "figure"),
        State("selection", "data"),
        State("sp-metric", "value"),
        State("sp-dir", "value"),
        State("sp-params", "value"),
        State("sp-quantile", "value"),
        State("sp-budget", "value"),
        State("sp-detail", "figure"),
    )
    def detail(click, importance_drawn, selection, metric, direction, params, quantile, budget, detail_drawn):
        if not metric:
            return empty_figure(""), ""
        by_click = ctx.triggered_id == "sp-importance" and "clickData" in ctx.triggered[0]["prop_id"]
        refresh = bool(_meta(importance_drawn).get("refresh"))
        # A new analysis shows its most important parameter; a live refresh keeps the row clicked.
        report = _shown(reports(selection, metric, direction, params, quantile, budget))
        if report is None or report.problem or report.marginals is None:
            return empty_figure(report.problem if report else ""), ""
        shown = _meta(detail_drawn).get("params")
        shown = shown if shown and all(p in report.order for p in shown) else None
        click = detail_click(by_click, refresh, click, shown)
        rows = sp.importance_rows(report.importance, max_rows=1)
        chosen = clicked_params(click, rows[0].params if rows else ())
        if chosen is None:
            return empty_figure("No varying parameters to rank"), ""
        a, b = chosen
        kept = report.marginals
        if b is not None:
            if not kept.has_pair(a, b):
                return empty_figure(f"{a} × {b} is not among the pairs whose marginal was kept"), ""
            grid = kept.pair_marginal(a, b)
            fig = sp.pair_plot(report.data.axis(a), report.data.axis(b), kept.pair_points, grid, metric,
                               report.data.direction)  # fmt: skip
            # Zoom kept across refreshes of this marginal; meta: what is shown, kept by a refresh.
            fig["layout"].update(uirevision=f"{metric}|{a}|{b}", meta={"params": [a, b]})
            return fig, f"Marginal of {metric} over {a} and {b}"
        mean, std = kept.marginal(a)
        fig = sp.marginal_plot(report.data.axis(a), kept.points, mean, std, metric)
        fig["layout"].update(uirevision=f"{metric}|{a}", meta={"params": [a]})
        return fig, f"Marginal of {metric} over {a}"


def _progress(text: str) -> dbc.Alert:
    return dbc.Alert(
        [
            html.Div(text, id="sp-progress-text", className="small mb-1"),
            dbc.Progress(value=100, striped=True, animated=True, style={"height": "4px"}),
        ],
        color="info",
        className="py-2 mb-2",
    )


PENDING = object()  # the parallel coordinates wait for the analysis (they are ordered by importance)


def _shown(found: SpaceReport | Pending) -> SpaceReport | None:
    """The report a figure draws: the finished one, or while one is computed the one it replaces (that answer
    is not kept for other users: the finished analysis replaces it in the same run state)."""
    if isinstance(found, Pending):
        not_shared()
        return found.previous
    return found


def _meta(figure: dict | None) -> dict:
    """What a page recorded in a drawn figure's ``layout.meta`` ({} when nothing)."""
    meta = ((figure or {}).get("layout") or {}).get("meta")
    return meta if isinstance(meta, dict) else {}


def _parcoords_info(context, reports, analysed, bands, top_k, extra):
    """``analysed``: (selection, metric, direction, params, quantile, budget), as the analysis was asked."""
    selection, metric, direction, params, quantile, _ = analysed
    if not metric:
        return None
    report = _shown(reports(*analysed))
    if report is None:
        return PENDING
    view = context.view(selection["experiments"], selection["searches"])
    trials = view.trials[view.trials["run_id"].isin(report.run_ids or report.data.run_ids)]
    if trials.empty:
        return None
    order = report.order
    axes = [report.data.axis(n) for n in order]
    unit_bands = report.bounds.unit_ranges if (report.bounds and bands and "on" in bands) else None
    metrics = [metric] + [m for m in (extra or []) if m != metric]
    return sp.parcoords_info(trials, axes, metrics, direction or "max", unit_bands, int(top_k) if top_k else None)
