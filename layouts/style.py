"""Shared look: colours per search (stable across pages), empty-state figures, figure defaults."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

# Okabe-Ito, then Plotly's: distinguishable for colour-blind readers first.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3"]  # fmt: skip
COLORS = {"front": "#D55E00", "selected": "#000000", "muted": "#B0B0B0"}

pio.templates["trellis"] = go.layout.Template(
    layout={
        "template": "plotly_white",
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "font": {"size": 12},
        "legend": {"orientation": "h", "y": -0.2},
    }  # fmt: skip
)
pio.templates.default = "plotly_white+trellis"


def search_colors(search_ids: list[str]) -> dict[str, str]:
    """A colour per search, stable for a given set (sorted ids), so pages agree."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(sorted(search_ids))}


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "#666"}, x=0.5, y=0.5,
                       xref="paper", yref="paper")  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig
