"""The model overview's drawer: candidates a user keeps while exploring (in the browser's local storage, per
browser), each shown with its glyph and score; choosing one picks it again."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from trellis.layouts.models import glyph

MAX_KEPT = 50


def section() -> html.Div:
    return html.Div(
        [
            html.H6("Drawer", className="mt-3 mb-0"),
            html.Div(
                "Models you keep (this browser remembers them). Choose one to pick it again.",
                className="small text-muted",
            ),
            dcc.RadioItems(id="md-drawer-list", options=[], labelStyle={"display": "block"}, className="small"),
            dcc.Store(id="md-drawer", storage_type="local", data=[]),
        ]
    )


def buttons() -> dbc.Col:
    return dbc.Col(
        [
            dbc.Button("Keep in drawer", id="md-keep", size="sm", outline=True, color="secondary", className="me-1"),
            dbc.Button("Drop", id="md-drop", size="sm", outline=True, color="secondary"),
        ],
        md=3,
        className="mt-3",
    )


def kept(drawer, selected, action: str) -> list[str]:
    """The drawer after keeping or dropping the picked model (order kept; bounded)."""
    items = [r for r in drawer or [] if isinstance(r, str)][:MAX_KEPT]
    if not isinstance(selected, str):
        return items
    if action == "md-keep" and selected not in items:
        return [*items, selected][-MAX_KEPT:]
    if action == "md-drop":
        return [r for r in items if r != selected]
    return items


def drawer_options(info, drawer) -> list[dict]:
    """One option per kept model of this view: its glyph, score and size (others are not shown here)."""
    if isinstance(info, str):
        return []
    out = []
    for run_id in drawer or []:
        if run_id not in info.run_ids:
            continue
        i = info.run_ids.index(run_id)
        label = html.Span(
            [
                glyph(info.archs[i], info.input_shape),
                f"  {run_id[:8]} · {info.objective} {info.score[i]:.4g} · {info.n_params[i]:,.0f} parameters",
            ]
        )
        out.append({"label": label, "value": run_id})
    return out


def register(app: Dash, info_of) -> None:
    """``info_of(selection, objective, direction)``: the page's memoised models info."""

    @app.callback(
        Output("md-drawer", "data"),
        Input("md-keep", "n_clicks"),
        Input("md-drop", "n_clicks"),
        State("md-selected", "data"),
        State("md-drawer", "data"),
        prevent_initial_call=True,
    )
    def keep_or_drop(_keep, _drop, selected, drawer):
        return kept(drawer, selected, str(ctx.triggered_id))

    @app.callback(
        Output("md-drawer-list", "options"),
        Output("md-drawer-list", "value"),
        Input("md-drawer", "data"),
        Input("selection", "data"),
        Input("md-objective", "value"),
        Input("md-direction", "value"),
        Input("data-version", "data"),
        State("md-selected", "data"),
    )
    def show(drawer, selection, objective, direction, _version, selected):
        if not isinstance(objective, str):
            return [], None
        options = drawer_options(info_of(selection, objective, direction), drawer)
        value = selected if any(o["value"] == selected for o in options) else None
        return options, value if ctx.triggered_id == "md-drawer" else no_update
