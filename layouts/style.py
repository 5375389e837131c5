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
    """A colour per search, chosen by its id (a hash), so a search keeps its colour on every page and as other
    searches appear live. Two searches whose ids want the same colour: the one with the smaller id keeps it,
    the other takes the next free one (only then can a newcomer move a colour)."""
    out: dict[str, str] = {}
    taken: set[int] = set()
    later: list[str] = []
    for search in sorted(set(search_ids)):  # first, each colour to the smallest id that wants it
        slot = _slot(search)
        if slot in taken:
            later.append(search)
        else:
            taken.add(slot)
            out[search] = PALETTE[slot]
    for search in later:  # then the others, each to the next free colour after the one it wanted
        if len(taken) >= len(PALETTE):
            taken = set()  # more searches than colours: colours repeat
        slot = _slot(search)
        free = next((slot + k) % len(PALETTE) for k in range(len(PALETTE)) if (slot + k) % len(PALETTE) not in taken)
        taken.add(free)
        out[search] = PALETTE[free]
    return out


def _slot(search_id: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(str(search_id).encode()).digest()[:4], "big") % len(PALETTE)


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
