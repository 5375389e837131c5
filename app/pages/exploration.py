"""Exploration page (``/exploration``): how each search explored each hyperparameter (HyperTendril's exploration
overview), why trials ended, the hierarchy, a 2-D map of the configurations and the rung correlation.

Callbacks look up their inputs, call ``trellis.search.analysis.exploration_load.load_page`` (memoised per store state:
two reads of the store per new state) and the ``trellis.layouts.exploration*`` figure builders. The colour range and the
hover highlight run in the browser (clientside callbacks restyling the drawn figures): no round trip.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from trellis.app.context import AppContext
from trellis.app.diagnosis import register_panel
from trellis.app.page_parts import StateMemo, register_objective_choices
from trellis.app.responses import register_shared
from trellis.layouts.exploration import _get_history_plot, _get_monitor_plot
from trellis.layouts.exploration_views import (
    _get_correlation_plot,
    _get_durations_plot,
    _get_hierarchy_plot,
    _get_projection_plot,
)
from trellis.layouts.live import LOADING_DELAY_MS
from trellis.layouts.style import GRAPH_CONFIG
from trellis.search.analysis.exploration_info import PageInfo
from trellis.search.analysis.exploration_load import load_page

GRAPHS = ["ex-monitor", "ex-history", "ex-durations", "ex-hierarchy", "ex-projection", "ex-correlation"]
MEMO_ENTRIES = 4


def _graph(id_: str) -> dcc.Loading:
    return dcc.Loading(dcc.Graph(id=id_, config=GRAPH_CONFIG), delay_show=LOADING_DELAY_MS)


def _section(title: str, help_text: str) -> html.Div:
    return html.Div([html.H6(title, className="mt-3 mb-0"), html.Div(help_text, className="small text-muted")])


def layout(context: AppContext) -> html.Div:
    return html.Div(
        [
            html.Div(id="ex-findings"),  # the search diagnosis' findings go here
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("Objective", className="small mb-0"),
                            dcc.Dropdown(id="ex-objective", clearable=False),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        dbc.RadioItems(
                            id="ex-direction",
                            options=[{"label": "max", "value": "max"}, {"label": "min", "value": "min"}],
                            value="max",
                            inline=True,
                            className="small mt-4",
                        ),
                        md=1,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Colour range (drag, or type the ends)", className="small mb-0"),
                            dcc.RangeSlider(id="ex-range", min=0, max=1, value=[0, 1], marks=None, allowCross=False),
                        ],
                        md=7,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id="ex-info", className="small text-muted"),
            _section("Performance monitor", "The best value so far, by sampling order; its colour is the score."),
            _graph("ex-monitor"),
            _section(
                "Exploration history",
                "One plot per hyperparameter (rows) and search (columns). Small points: evaluations at a rung or "
                "generation; larger: a trial's last one. Dashed: a trial's rungs (promotions); solid curves: a PBT "
                "member copied from its parent. Shaded bands: brackets or generations. Hover a point to follow "
                "its trial and lineage.",
            ),
            _graph("ex-history"),
            _section("Training durations", "The last step each trial reached, coloured by why it ended."),
            _graph("ex-durations"),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            _section("Hierarchy", "PBT: members under their parents. Hyperband: brackets and rungs."),
                            _graph("ex-hierarchy"),
                        ],
                        md=6,
                    ),
                    dbc.Col(
                        [
                            _section("Configurations in 2-D", "Similar configurations lie close; colour = score."),
                            _graph("ex-projection"),
                        ],
                        md=6,
                    ),
                ]
            ),
            _section(
                "Rung correlation",
                "Spearman's rank correlation between the objective at each rung or stopping step and at the final "
                "step, over the trials that reached it: low values mean early decisions were close to guesses.",
            ),
            _graph("ex-correlation"),
            dcc.Store(id="ex-colour-done"),
            dcc.Store(id="ex-hovered"),
        ]
    )


def info_loader(context: AppContext):
    def compute(view, searches, objective, direction) -> PageInfo:
        return load_page(context.tracking_uri, view.table, view.trials, view.labels, searches, objective, direction)

    return compute


def render_exploration(info: PageInfo, score_range: list[float] | None = None) -> list:
    """Every figure of the page for one info (a plain function: the benchmark times it)."""
    return [
        _get_monitor_plot(info, score_range),
        _get_history_plot(info, score_range),
        _get_durations_plot(info),
        _get_hierarchy_plot(info, score_range),
        _get_projection_plot(info, score_range),
        _get_correlation_plot(info),
    ]


def info_line(info: PageInfo) -> str:
    parts = [f"{s.label}: {len(s.order.run_ids)} trials ({s.kind})" for s in info.searches]
    if info.projection.note:
        parts.append(info.projection.note)
    if info.note:
        parts.append(info.note)
    if any(s.order.foreign for s in info.searches):
        parts.append("runs without Trellis' trial numbers are in start-time order, with no lineage")
    return " · ".join(parts)


def register(app: Dash, context: AppContext) -> None:
    memo = StateMemo(info_loader(context), MEMO_ENTRIES)
    register_shared(app, register_objective_choices, context, "ex-objective", "ex-direction")
    register_shared(app, _register_render, context, memo)
    register_shared(app, register_panel, context, "ex-findings")  # the search diagnosis (app.diagnosis)
    _register_clientside(app)


def _register_render(app: Dash, context: AppContext, memo: StateMemo) -> None:
    @app.callback(
        *[Output(g, "figure") for g in GRAPHS],
        Output("ex-info", "children"),
        Output("ex-range", "min"),
        Output("ex-range", "max"),
        Output("ex-range", "step"),
        Output("ex-range", "value"),
        Input("selection", "data"),
        Input("ex-objective", "value"),
        Input("ex-direction", "value"),
        Input("data-version", "data"),
        State("ex-range", "value"),
        State("ex-range", "min"),
        State("ex-range", "max"),
    )
    def render(selection, objective, direction, _version, current, old_lo, old_hi):
        view = context.view(selection["experiments"], selection["searches"])
        if not isinstance(objective, str) or objective not in view.table.metrics:
            return [no_update] * len(GRAPHS) + ["No metrics in these runs", no_update, no_update, no_update, no_update]
        info = memo.get(context, selection, objective, direction if direction in ("max", "min") else "max")
        lo, hi = info.score_range or (0.0, 1.0)
        hi = hi if hi > lo else lo + 1.0
        valid = isinstance(current, list) and len(current) == 2 and all(isinstance(v, int | float) for v in current)
        keep = ctx.triggered_id == "data-version" and valid and old_lo == lo and old_hi == hi
        value = list(current) if keep else [lo, hi]
        figures = render_exploration(info, value)
        return [*figures, info_line(info), lo, hi, (hi - lo) / 200, value]


# In the browser: the drawn figures are restyled in place (Plotly.restyle), nothing is sent to the server.
# The range slider has its own input boxes for typing the ends (Dash 4).
_COLOUR_JS = """
function(r) {
    const nu = window.dash_clientside.no_update;
    if (!r || r.length !== 2 || !window.Plotly) { return nu; }
    for (const id of ["ex-monitor", "ex-history", "ex-durations", "ex-hierarchy", "ex-projection"]) {
        const gd = document.querySelector("#" + id + " .js-plotly-plot");
        if (!gd || !gd.data) { continue; }
        const heat = [], marked = [];
        gd.data.forEach((t, i) => {
            if (t.type === "heatmap") { heat.push(i); }
            else if (t.marker && t.marker.cmin !== undefined) { marked.push(i); }
        });
        if (heat.length) { window.Plotly.restyle(gd, {zmin: r[0], zmax: r[1]}, heat); }
        if (marked.length) { window.Plotly.restyle(gd, {"marker.cmin": r[0], "marker.cmax": r[1]}, marked); }
    }
    return r;
}
"""

_HOVER_JS = """
function(hist, dur, proj) {
    const nu = window.dash_clientside.no_update;
    const trig = window.dash_clientside.callback_context.triggered[0];
    if (!trig || !trig.value || !trig.value.points || !trig.value.points.length || !window.Plotly) { return nu; }
    const decode = (v) => {
        if (!v || Array.isArray(v) || ArrayBuffer.isView(v)) { return v || []; }
        if (!v.bdata) { return []; }
        const bin = atob(v.bdata), bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
        const T = {f4: Float32Array, f8: Float64Array, i4: Int32Array, u1: Uint8Array}[v.dtype] || Float64Array;
        return new T(bytes.buffer);
    };
    const src = document.querySelector("#" + trig.prop_id.split(".")[0] + " .js-plotly-plot");
    const gd = document.querySelector("#ex-history .js-plotly-plot");
    const p = trig.value.points[0];
    if (!src || !gd || !gd.data || !src.data[p.curveNumber]) { return nu; }
    const meta = src.data[p.curveNumber].meta || {};
    // Dash's hoverData leaves typed-array customdata out: read the trial from the trace itself
    const ids = decode(src.data[p.curveNumber].customdata);
    const idx = Number(p.customdata !== undefined ? p.customdata : ids[p.pointNumber]);
    if (meta.role !== "eval" || !Number.isFinite(idx)) { return nu; }
    const col = meta.col;
    const parents = (((gd.layout.meta || {}).parents) || [])[col] || [];
    const keep = new Set([idx]);
    let t = idx;
    while (parents[t] >= 0 && !keep.has(parents[t])) { t = parents[t]; keep.add(t); }
    const xs = [], ys = [], which = [];
    gd.data.forEach((h, i) => {
        if (!h.meta || h.meta.role !== "highlight" || h.meta.col !== col) { return; }
        const ev = gd.data.find((e) => e.meta && e.meta.role === "eval" && e.meta.col === col && e.xaxis === h.xaxis);
        const pts = [];
        if (ev) {
            const ex = decode(ev.x), ey = decode(ev.y), ec = decode(ev.customdata);
            for (let k = 0; k < ec.length; k++) { if (keep.has(ec[k])) { pts.push([ex[k], ey[k]]); } }
        }
        pts.sort((a, b) => a[0] - b[0]);
        xs.push(pts.map((q) => q[0]));
        ys.push(pts.map((q) => q[1]));
        which.push(i);
    });
    if (which.length) { window.Plotly.restyle(gd, {x: xs, y: ys}, which); }
    return {col: col, trial: idx, lineage: Array.from(keep)};
}
"""


def _register_clientside(app: Dash) -> None:
    app.clientside_callback(
        _COLOUR_JS,
        Output("ex-colour-done", "data"),
        Input("ex-range", "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        _HOVER_JS,
        Output("ex-hovered", "data"),
        Input("ex-history", "hoverData"),
        Input("ex-durations", "hoverData"),
        Input("ex-projection", "hoverData"),
        prevent_initial_call=True,
    )
