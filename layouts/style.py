"""Shared look and the figure format: plain plotly.js dicts (no plotly.py object layer).

Plotly's Python objects validate every element and merge templates per figure: ~0.4 s for a 10k-point
overview. Figures here are the JSON plotly.js reads, float arrays as its base64 typed arrays.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

Figure = dict[str, Any]

# The modebar of every graph (each dcc.Graph's ``config``): no Plotly logo, nothing that sends the data to
# Plotly's cloud (Chart Studio), and the camera button downloads an SVG a paper can use.
GRAPH_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "scrollZoom": False,
    "toImageButtonOptions": {"format": "svg", "filename": "trellis-plot"},
}

# Okabe-Ito, then Plotly's: distinguishable for colour-blind readers first.
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#636EFA",
    "#EF553B",
    "#00CC96",
    "#AB63FA",
    "#FFA15A",
    "#19D3F3",
]
COLORS = {"front": "#D55E00"}
_AXIS = {"gridcolor": "#EBEBEB", "zerolinecolor": "#D0D0D0", "linecolor": "#BBBBBB", "automargin": True}
BASE_LAYOUT = {
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "font": {"size": 12},
    "colorway": PALETTE,
    "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
    "legend": {"orientation": "h", "y": -0.2},
    "hovermode": "closest",
    "xaxis": dict(_AXIS),
    "yaxis": dict(_AXIS),
}


def typed(values: Any) -> Any:
    """A float array as plotly.js' typed-array spec (base64 float64); non-numeric data as a list."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiu":
        return {"dtype": "f8", "bdata": base64.b64encode(arr.astype("<f8").tobytes()).decode("ascii")}
    return arr.tolist()


def decode(spec: Any) -> np.ndarray:
    """The inverse of ``typed`` (for tests and checks)."""
    if isinstance(spec, dict) and "bdata" in spec:
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype="<f8")
    return np.asarray(spec)


def figure(data: list[dict], **layout: Any) -> Figure:
    merged = {**BASE_LAYOUT, **layout}
    for axis in ("xaxis", "yaxis"):
        if axis in layout:
            merged[axis] = {**_AXIS, **layout[axis]}
    return {"data": data, "layout": merged}


def search_colors(search_ids: list[str]) -> dict[str, str]:
    """A colour per search, stable for a given set (sorted ids), so pages agree."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(sorted(search_ids))}


def empty_figure(message: str) -> Figure:
    return figure(
        [],
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "font": {"size": 14, "color": "#666"},
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
            }
        ],
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
