"""The relaunch form's prior view (``trellis.search.control.prior_view``): per parameter, the prior's density
over its range with the parent's runs beneath, and how strongly it pulls. Pure: curves in, a figure out."""

from __future__ import annotations

import math

from plotly.graph_objects import Figure
from plotly.subplots import make_subplots

from trellis.search.control.prior_view import PriorCurve

COLUMNS = 3
ROW_PX, GAP_PX = 150, 45  # a row of small plots, and the room between rows for the next titles
PRIOR, FLAT, RUNS = "#d9480f", "#adb5bd", "#1c7ed6"


def _same_number(value: object, level: object) -> bool:
    try:
        return float(value) == float(level)  # a run's 2.0 is level 2
    except (TypeError, ValueError):
        return False


def prior_title(curve: PriorCurve) -> str:
    if curve.region is None:
        return f"{curve.name}: no pull (uniform)"
    return f"{curve.name}: pull {curve.pull:.2f} (weight {curve.weight:.2f})"


def prior_figure(curves: list[PriorCurve]) -> Figure:
    rows = max(1, math.ceil(len(curves) / COLUMNS))
    height = ROW_PX * rows + 50
    fig = make_subplots(
        rows=rows,
        cols=COLUMNS,
        subplot_titles=[prior_title(c) for c in curves],
        vertical_spacing=min(0.3, GAP_PX / height),
        horizontal_spacing=0.06,
    )
    for i, curve in enumerate(curves):
        row, col = i // COLUMNS + 1, i % COLUMNS + 1
        colour = PRIOR if curve.region is not None else FLAT
        if curve.kind in ("categorical", "levels"):
            labels = [str(c) for c in curve.x]
            counts = [
                sum(str(v) == label or _same_number(v, c) for v in curve.runs) for label, c in zip(labels, curve.x)
            ]
            fig.add_bar(
                x=labels, y=curve.density, marker_color=colour, name=curve.name, row=row, col=col,
                text=[f"{n} run{'' if n == 1 else 's'}" for n in counts], textposition="inside",
                hovertemplate="%{x}: prior %{y:.2f}× uniform, %{text}<extra></extra>",
            )  # fmt: skip
        else:
            fig.add_scatter(
                x=curve.x, y=curve.density, mode="lines", line={"color": colour}, fill="tozeroy", name=curve.name,
                row=row, col=col, hovertemplate="%{x:.4g}: prior %{y:.2f}× uniform<extra></extra>",
            )  # fmt: skip
            fig.add_scatter(
                x=curve.runs, y=[0.0] * len(curve.runs), mode="markers", name=f"{curve.name}: parent's runs",
                marker={"symbol": "line-ns-open", "size": 12, "color": RUNS}, row=row, col=col,
                hovertemplate="parent run at %{x:.4g}<extra></extra>",
            )  # fmt: skip
            if curve.log:
                fig.update_xaxes(type="log", row=row, col=col)
    fig.update_layout(
        height=height, showlegend=False, margin={"l": 30, "r": 10, "t": 40, "b": 20}, template="plotly_white"
    )
    fig.update_annotations(font_size=11)
    return fig
