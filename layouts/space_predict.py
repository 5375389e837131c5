"""The search-space page's prediction form and the refined space's predicted objective: pure pieces.

``form_rows(surrogate)``: one input per parameter, prefilled with the best run's value (a dropdown for a
categorical); ``config_of(ids, values)``: the typed configuration back from the inputs;
``prediction_text`` and ``comparison_text``: the lines the page shows.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import yaml
from dash import dcc, html

from trellis.search.analysis.surrogate import Prediction, SpaceComparison, Surrogate, compare_spaces

INPUT_TYPE = "sp-predict-input"  # pattern-matching id type of the form's inputs


def form_rows(surrogate: Surrogate) -> list:
    """One labelled input per parameter, prefilled with the best run's configuration."""
    rows = []
    for axis in surrogate.axes:
        value = surrogate.best.get(axis.name)
        ident = {"type": INPUT_TYPE, "name": axis.name}
        span = ""
        if axis.kind == "categorical":
            options = [{"label": str(c), "value": str(c)} for c in axis.categories]
            field = dcc.Dropdown(id=ident, options=options, value=str(value), clearable=False, className="small")
        else:
            span = f" {axis.low:.4g} – {axis.high:.4g}{' log' if axis.log else ''}"
            field = dbc.Input(id=ident, type="text", value=str(value), size="sm", placeholder=span.strip())
        label = dbc.Label([axis.name, html.Span(span, className="text-muted")], className="small mb-0")
        rows.append(dbc.Col([label, field], md=2))
    return rows


def config_of(ids: list[dict], values: list[Any]) -> dict[str, Any]:
    """The configuration the inputs hold (text as typed: ``predict`` checks and converts it)."""
    return {i["name"]: v for i, v in zip(ids, values) if isinstance(i, dict) and "name" in i}


def _number(x: float) -> str:
    return f"{x:.4g}"


def prediction_text(p: Prediction, surrogate: Surrogate) -> str:
    return (
        f"predicted {surrogate.metric}: {_number(p.mean)} ± {_number(p.std)} (1 std; on held-out runs "
        f"{surrogate.coverage:.0%} of true values fell within it; {surrogate.n_runs} runs)"
    )


def refined_comparison(surrogate: Surrogate, refined_yaml: str | None) -> SpaceComparison | None:
    """The predicted objective inside the refined space (its YAML as the page shows it) and the analysed one;
    None when no refined space is offered."""
    try:
        parsed = yaml.safe_load(refined_yaml or "")
    except yaml.YAMLError:
        return None
    space = parsed.get("space") if isinstance(parsed, dict) else None
    if not isinstance(space, dict) or not space:
        return None
    return compare_spaces(surrogate, space)


def comparison_text(c: SpaceComparison, surrogate: Surrogate) -> str:
    def spread(q):
        return f"{_number(q[1])} (IQR {_number(q[0])} – {_number(q[2])})"

    return (
        f"refined space: predicted {surrogate.metric} median {spread(c.refined)} vs original {spread(c.original)} "
        f"({c.n_samples} configurations drawn from each, as a search samples them)"
    )


def prediction_panel() -> html.Div:
    """The form's frame: the inputs are filled in once the analysis is ready."""
    return html.Div(
        [
            html.H6("Predict the objective of a configuration (surrogate forest, calibrated std)", className="mt-3"),
            dbc.Row(id="sp-predict-inputs", className="g-2 mb-1"),
            dbc.Button("predict", id="sp-predict-go", size="sm", color="secondary", className="me-2"),
            html.Span(id="sp-predict-out", className="small"),
        ]
    )
