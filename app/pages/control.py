"""The control page: the searches of the chosen experiments, stop / resume / edit, and the relaunch form."""

from __future__ import annotations

from dash import Dash, html

from app.context import AppContext


def layout(context: AppContext) -> html.Div:
    return html.Div("Control page: coming", id="control-page")


def register(app: Dash, context: AppContext) -> None:
    return None
