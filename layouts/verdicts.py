"""The one verdict per parameter (``trellis.search.analysis.verdicts``) as the space page shows it: a table of
the parameter, the verdict in a few words and why, most important first. Pure: plain rows, then components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import dash_bootstrap_components as dbc
from dash import html

from trellis.search.analysis.verdicts import Verdict

COLORS = {"fix": "info", "widen": "warning", "narrow": "primary", "keep": "secondary"}


class VerdictRow(NamedTuple):
    name: str
    action: str
    headline: str
    why: str
    color: str


def verdict_rows(verdicts: Mapping[str, Verdict]) -> list[VerdictRow]:
    """Rows, the parameters with the largest total share first (unranked ones after, by name)."""
    ordered = sorted(verdicts.values(), key=lambda v: (-(v.share if v.share is not None else -1.0), v.name))
    return [
        VerdictRow(v.name, v.action, v.headline, v.why.split(": ", 1)[-1], COLORS.get(v.action, "secondary"))
        for v in ordered
    ]


def verdict_table(verdicts: Mapping[str, Verdict] | None) -> html.Div | str:
    if not verdicts:
        return ""
    body = [
        html.Tr(
            [
                html.Td(row.name, className="fw-bold"),
                html.Td(dbc.Badge(row.headline, color=row.color, className="verdict", title=row.action)),
                html.Td(row.why, className="small text-muted"),
            ],
            className=f"verdict-{row.action}",
        )
        for row in verdict_rows(verdicts)
    ]
    head = html.Thead(html.Tr([html.Th("parameter"), html.Th("verdict"), html.Th("why")]))
    return html.Div(
        dbc.Table([head, html.Tbody(body)], size="sm", className="mb-2", id="sp-verdicts"),
        className="mt-2",
    )
